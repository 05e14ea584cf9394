// The runtime's deadline queue: an intrusive binary min-heap of
// deadline_entry, fed through an arrival list.
//
// Most deadlines never fire: a cancel scope is usually left long before its
// deadline, a sleep often ends early by cancellation. So push() only links
// the entry into an arrival list, and remove() of an entry still there only
// unlinks it, both O(1) and without touching the heap. The arrivals move
// into the heap when the queue is asked what is due or what comes next
// (next(), pop_due()), which the loop does on its passes. A scope entered
// and left between two passes never reaches the heap.
#pragma once

#include <weft/detail/core.hpp>

#include <vector>

namespace weft::detail {

class deadline_queue {
 public:
  bool empty() const noexcept { return heap_.empty() && arrivals_ == nullptr; }
  std::size_t size() const noexcept { return heap_.size() + arrived_; }

  /// The earliest deadline (inf_time when empty).
  time_point next() noexcept {
    settle();
    return heap_.empty() ? inf_time : heap_.front()->when;
  }

  /// Makes room for one more entry, so that the next push cannot fail.
  /// @throws std::bad_alloc.
  void reserve_one() {
    if (room_ == 0) [[unlikely]]
      grow();
  }

  /// Adds an entry. @throws std::bad_alloc.
  void push(deadline_entry& e) {
    reserve_one();
    push_reserved(e);
  }
  /// Adds an entry after reserve_one().
  void push_reserved(deadline_entry& e) noexcept {
    e.heap_index = deadline_entry::pending;
    e.prev = nullptr;
    e.next = arrivals_;
    if (arrivals_ != nullptr) arrivals_->prev = &e;
    arrivals_ = &e;
    ++arrived_;
    --room_;
  }

  void remove(deadline_entry& e) noexcept {
    if (e.heap_index != deadline_entry::pending) [[unlikely]] {
      remove_from_heap(e);
      return;
    }
    if (e.prev != nullptr)
      e.prev->next = e.next;
    else
      arrivals_ = e.next;
    if (e.next != nullptr) e.next->prev = e.prev;
    --arrived_;
    ++room_;
    e.heap_index = deadline_entry::npos;
  }

  /// Removes and returns the earliest entry if it is due at `now`.
  deadline_entry* pop_due(time_point now) noexcept {
    settle();
    if (heap_.empty() || heap_.front()->when > now) return nullptr;
    deadline_entry* e = heap_.front();
    remove(*e);
    return e;
  }

 private:
  // Moves the arrivals into the heap; reserve_one() made room for them.
  void settle() noexcept {
    while (deadline_entry* e = arrivals_) {
      arrivals_ = e->next;
      heap_.push_back(e);
      sift_up(heap_.size() - 1);
    }
    arrived_ = 0;
    WEFT_DEBUG_ASSERT(room_ == heap_.capacity() - heap_.size());
  }
  [[gnu::noinline]] void grow() {
    const std::size_t need = heap_.size() + arrived_ + 1;
    heap_.reserve(need < 16 ? 16 : 2 * need);
    room_ = heap_.capacity() - heap_.size() - arrived_;
  }
  [[gnu::noinline]] void remove_from_heap(deadline_entry& e) noexcept {
    ++room_;
    const std::size_t i = e.heap_index;
    e.heap_index = deadline_entry::npos;
    deadline_entry* last = heap_.back();
    heap_.pop_back();
    if (last == &e) return;
    heap_[i] = last;
    last->heap_index = i;
    sift_down(i);
    sift_up(last->heap_index);
  }
  void place(std::size_t i, deadline_entry* e) noexcept {
    heap_[i] = e;
    e->heap_index = i;
  }
  void sift_up(std::size_t i) noexcept {
    deadline_entry* e = heap_[i];
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!(e->when < heap_[parent]->when)) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, e);
  }
  void sift_down(std::size_t i) noexcept {
    deadline_entry* e = heap_[i];
    const std::size_t n = heap_.size();
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap_[child + 1]->when < heap_[child]->when) ++child;
      if (!(heap_[child]->when < e->when)) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, e);
  }
  std::vector<deadline_entry*> heap_;
  deadline_entry* arrivals_ = nullptr;
  std::size_t arrived_ = 0;
  std::size_t room_ = 0;  // heap_.capacity() - heap_.size() - arrived_: entries that can come without allocating
};

}  // namespace weft::detail

// The runtime's deadline queue: an intrusive binary min-heap of deadline_entry.
#pragma once

#include <weft/detail/core.hpp>

#include <vector>

namespace weft::detail {

class deadline_queue {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  time_point next() const noexcept { return heap_.empty() ? inf_time : heap_.front()->when; }

  /// Makes room for one more entry, so that the next push cannot fail.
  /// @throws std::bad_alloc.
  void reserve_one() {
    if (heap_.size() == heap_.capacity()) heap_.reserve(heap_.capacity() < 16 ? 16 : 2 * heap_.capacity());
  }

  /// Adds an entry; never fails after reserve_one(). @throws std::bad_alloc otherwise.
  void push(deadline_entry& e) {
    heap_.push_back(&e);
    e.heap_index = heap_.size() - 1;
    sift_up(e.heap_index);
  }

  void remove(deadline_entry& e) noexcept {
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

  /// Removes and returns the earliest entry if it is due at `now`.
  deadline_entry* pop_due(time_point now) noexcept {
    if (heap_.empty() || heap_.front()->when > now) return nullptr;
    deadline_entry* e = heap_.front();
    remove(*e);
    return e;
  }

 private:
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
};

}  // namespace weft::detail

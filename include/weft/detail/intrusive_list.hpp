// A minimal intrusive doubly-linked list used by the runtime's queues.
#pragma once

#include <cstddef>

namespace weft::detail {

struct default_list_tag;

/// A node embedded (as a base class) in an object that can sit in one
/// intrusive_list<T, Tag> at a time. Derive from several with different tags
/// to sit in several lists.
template <class Tag = default_list_tag>
struct list_hook {
  list_hook* prev = nullptr;
  list_hook* next = nullptr;
  bool linked() const noexcept { return next != nullptr; }
  void unlink() noexcept {
    prev->next = next;
    next->prev = prev;
    prev = next = nullptr;
  }
};

/// FIFO of T (which derives from list_hook<Tag>). Does not own its elements.
template <class T, class Tag = default_list_tag>
class intrusive_list {
  using hook = list_hook<Tag>;

 public:
  intrusive_list() noexcept { head_.prev = head_.next = &head_; }
  intrusive_list(const intrusive_list&) = delete;
  intrusive_list& operator=(const intrusive_list&) = delete;

  bool empty() const noexcept { return head_.next == &head_; }
  T& front() noexcept { return static_cast<T&>(*head_.next); }
  const T& front() const noexcept { return static_cast<const T&>(*head_.next); }

  void push_back(T& item) noexcept {
    hook& h = item;
    h.prev = head_.prev;
    h.next = &head_;
    head_.prev->next = &h;
    head_.prev = &h;
  }
  T& pop_front() noexcept {
    T& item = front();
    static_cast<hook&>(item).unlink();
    return item;
  }
  static void erase(T& item) noexcept { static_cast<hook&>(item).unlink(); }

  /// Calls f(T&) for each element; f may unlink the element it is given.
  template <class F>
  void for_each(F&& f) {
    for (hook* h = head_.next; h != &head_;) {
      hook* next = h->next;
      f(static_cast<T&>(*h));
      h = next;
    }
  }

  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const hook* h = head_.next; h != &head_; h = h->next) ++n;
    return n;
  }

 private:
  hook head_;
};

}  // namespace weft::detail

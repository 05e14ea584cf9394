// The runtime's inbox; see inbox.hpp.

#include "core/inbox.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <exception>
#include <new>
#include <utility>

namespace weft::detail {

namespace {

// The memory of the posted drain: the inbox's own slot (at most one drain
// is posted at a time, and Asio frees a handler's memory before it calls
// the handler), or the heap if an Asio version ever asks for more.
template <class T>
struct slot_allocator {
  using value_type = T;
  inbox* owner;
  explicit slot_allocator(inbox* o) noexcept : owner(o) {}
  template <class U>
  slot_allocator(const slot_allocator<U>& o) noexcept : owner(o.owner) {}
  T* allocate(std::size_t n) {
    if (void* p = owner->take_slot(n * sizeof(T))) return static_cast<T*>(p);
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t) noexcept {
    if (!owner->give_back_slot(p)) ::operator delete(p);
  }
  template <class U>
  friend bool operator==(const slot_allocator& a, const slot_allocator<U>& b) noexcept {
    return a.owner == b.owner;
  }
};

// The posted drain. The inbox outlives it: the runtime releases its
// reference only after its io_context (and any drain still queued there)
// is gone.
class drain_handler {
 public:
  explicit drain_handler(inbox* in) noexcept : in_(in) {}
  using allocator_type = slot_allocator<void>;
  allocator_type get_allocator() const noexcept { return allocator_type(in_); }
  void operator()() noexcept { in_->drain(); }

 private:
  inbox* in_;
};

}  // namespace

void* inbox::take_slot(std::size_t size) noexcept {
  if (size > slot_size || slot_used_.exchange(true, std::memory_order_relaxed)) return nullptr;
  return slot_;
}

bool inbox::give_back_slot(void* p) noexcept {
  if (p != slot_) return false;
  slot_used_.store(false, std::memory_order_relaxed);
  return true;
}

void inbox::submit(remote_call& call) noexcept {
  remote_call* head = head_.load(std::memory_order_relaxed);
  do {
    call.next = head;
  } while (!head_.compare_exchange_weak(head, &call, std::memory_order_acq_rel, std::memory_order_relaxed));
  if (head != nullptr) return;  // a drain is posted already and takes this call too
  // The inbox was empty: this submit posts the drain. Until it has, no one
  // can run `call`, so a runtime whose task waits for `call` is running.
  // close() takes the mutex too: the runtime cannot end (and release the
  // inbox) before we have left it.
  bool posted = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (io_ != nullptr) {
      try {
        boost::asio::post(*io_, drain_handler(this));
        posted = true;
      } catch (const std::exception&) {  // no memory for the post (never weft::cancelled):
                                         // fall through, run the calls here as dropped
      }
    }
  }
  if (!posted) run_all(head_.exchange(nullptr, std::memory_order_acq_rel), false);
}

void inbox::drain() noexcept { run_all(head_.exchange(nullptr, std::memory_order_acq_rel), !closed_); }

void inbox::close() noexcept {
  {
    std::lock_guard<std::mutex> lock(mu_);
    io_ = nullptr;
  }
  closed_ = true;
  run_all(head_.exchange(nullptr, std::memory_order_acq_rel), false);
}

void inbox::run_all(remote_call* list, bool open) noexcept {
  remote_call* fifo = nullptr;  // the list is newest first: reverse it
  while (list != nullptr) {
    remote_call* next = list->next;
    list->next = fifo;
    fifo = list;
    list = next;
  }
  while (fifo != nullptr) {
    remote_call* next = fifo->next;  // fn may end the call's lifetime
    fifo->fn(fifo, open);
    fifo = next;
  }
}

}  // namespace weft::detail

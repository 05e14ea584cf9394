// weft::condition_variable: wait for a notification while holding a weft lock.
//
// Single-runtime by design: no locks on the hot path. Use it from the tasks
// (and Asio handlers) of one runtime. A call from another thread that would
// wake a task ends the program with a message naming the misuse, instead of
// corrupting the runtime; other threads hand work to the runtime with
// weft::use_fiber / greenback::await_ (operations on any executor),
// weft::lowlevel::completion, or asio::post to its io_context.
#pragma once

#include <weft/detail/core.hpp>
#include <weft/sync/lock.hpp>

#include <cstddef>
#include <type_traits>

namespace weft {

class condition_variable {
 public:
  /// A condition variable with its own weft::lock.
  condition_variable() noexcept : lock_(&own_) {}
  /// A condition variable over an existing weft::lock or weft::fair_lock.
  explicit condition_variable(basic_lock& l) noexcept : lock_(&l) {}
  /// Any other lock type is rejected at compile time.
  template <class L>
    requires(!std::is_base_of_v<basic_lock, L>)
  explicit condition_variable(L&) {
    static_assert(std::is_base_of_v<basic_lock, L>,
                  "weft::condition_variable works only with weft::lock or weft::fair_lock");
  }
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  // The lock API, forwarded to the underlying lock.
  void acquire() { lock_->acquire(); }
  bool try_acquire() { return lock_->try_acquire(); }
  void release() { lock_->release(); }
  bool locked() const noexcept { return lock_->locked(); }
  void lock() { acquire(); }
  bool try_lock() { return try_acquire(); }
  void unlock() { release(); }

  /// Releases the lock, blocks until notified, re-acquires the lock (even
  /// when cancelled: the lock is always held again when wait returns or
  /// throws). Checkpoint.
  /// @throws weft::cancelled; std::logic_error if the calling task does not
  /// hold the lock.
  void wait();
  /// Waits until pred() is true (checked with the lock held).
  template <class Pred>
  void wait(Pred pred) {
    while (!pred()) wait();
  }
  /// Wakes up to n waiters (in FIFO order). Not a checkpoint.
  /// @throws std::logic_error if the waiters are tasks of another runtime
  /// than the calling thread's (notify_all too).
  void notify(std::size_t n = 1);
  void notify_all();

  async_backend& backend() const noexcept;

 private:
  weft::lock own_;
  basic_lock* lock_;
  detail::parking_lot waiters_;
};

}  // namespace weft

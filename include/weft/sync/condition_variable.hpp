// weft::condition_variable: wait for a notification while holding a weft lock.
//
// Single-runtime by design: no locks on the hot path. Use it from the tasks
// (and Asio handlers) of one runtime. A notify or wait from another thread
// that would have to wake or queue the runtime's tasks throws
// std::logic_error naming the misuse (a wake from the wrong thread that got
// past that would end the program), instead of corrupting the runtime;
// other threads hand work to the runtime with
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
  /// throws). A notified waiter is not woken to compete for the lock: it
  /// waits in the lock's queue and runs again only once the lock is its
  /// own. Blocks on the notification, then on the lock. Checkpoint (a
  /// cancellation while waiting in either queue ends the wait).
  /// @throws weft::cancelled, with the lock held; std::logic_error if the
  /// calling task does not hold the lock, or outside a task.
  void wait();
  /// Waits until pred() is true (checked with the lock held). Checkpoint
  /// when pred() is false. @throws what wait() and pred() throw.
  template <class Pred>
  void wait(Pred pred) {
    while (!pred()) wait();
  }
  /// Notifies up to n waiters, in the order they started waiting. They are
  /// moved, in that order, to the back of the lock's wait queue and return
  /// from wait one at a time as the lock comes free (from a weft::lock the
  /// released lock may still be taken first by a task that finds nobody
  /// waiting for it). If nobody holds the lock, the first task waiting for
  /// it is woken at once, as by a release. Does not need the lock; never
  /// blocks; not a checkpoint.
  /// @throws std::logic_error if the waiters are tasks of another runtime
  /// than the calling thread's (notify_all too).
  void notify(std::size_t n = 1);
  /// Notifies every waiter (as notify).
  void notify_all();

  async_backend& backend() const noexcept;

 private:
  weft::lock own_;
  basic_lock* lock_;
  detail::parking_lot waiters_;
};

}  // namespace weft

// Condition variables.

#include <weft/backend.hpp>
#include <weft/sync/condition_variable.hpp>

#include <exception>
#include <stdexcept>

namespace weft {

void condition_variable::wait() {
  detail::task_base& me = detail::require_task("weft::condition_variable::wait");
  if (!lock_->owned_by_current())
    throw std::logic_error("weft::condition_variable::wait: the calling task must hold the lock");
  // notify usually does not wake the entry but moves it to the lock's
  // queue (basic_lock::take_waiters, which marks it with the lock): then
  // the lock's release wakes us, and there is no second wait for the lock.
  detail::lot_entry entry;
  lock_->release();
  std::exception_ptr interrupted;
  try {
    waiters_.park(entry, "condition variable");
    if (entry.data == lock_) {
      lock_->acquire_as_woken(me);
      return;
    }
  } catch (...) {
    // Cancelled in either queue (the entry has left it), or cancelled while
    // waiting for the lock again after a woken plain lock was taken by
    // another task: rethrown below, once the lock is held again.
    interrupted = std::current_exception();
  }
  ignore_cancellation([&] { lock_->acquire(); });
  if (interrupted) std::rethrow_exception(interrupted);
}

void condition_variable::notify(std::size_t n) {
  waiters_.check_waker("weft::condition_variable::notify");
  if (n == 0 || waiters_.empty()) return;
  // The waiters would only wake to wait for the lock: move them to its
  // queue instead, where each is woken in turn as the lock comes free.
  if (lock_->take_waiters(waiters_, n, *waiters_.front().task->rt_)) return;
  while (n-- > 0 && waiters_.unpark_one() != nullptr) {
  }
}

void condition_variable::notify_all() {
  waiters_.check_waker("weft::condition_variable::notify_all");
  notify(static_cast<std::size_t>(-1));
}

async_backend& condition_variable::backend() const noexcept { return builtin_backend(); }

}  // namespace weft

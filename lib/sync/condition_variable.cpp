// Condition variables.

#include <weft/backend.hpp>
#include <weft/sync/condition_variable.hpp>

#include <stdexcept>

namespace weft {

void condition_variable::wait() {
  detail::require_task("weft::condition_variable::wait");
  if (!lock_->owned_by_current())
    throw std::logic_error("weft::condition_variable::wait: the calling task must hold the lock");
  detail::lot_entry entry;
  lock_->release();
  std::exception_ptr interrupted;
  try {
    waiters_.park(entry, "condition variable");
  } catch (...) {
    interrupted = std::current_exception();  // rethrown below, once the lock is held again
  }
  ignore_cancellation([&] { lock_->acquire(); });
  if (interrupted) std::rethrow_exception(interrupted);
}

void condition_variable::notify(std::size_t n) {
  waiters_.check_waker("weft::condition_variable::notify");
  while (n-- > 0 && waiters_.unpark_one() != nullptr) {
  }
}

void condition_variable::notify_all() {
  waiters_.check_waker("weft::condition_variable::notify_all");
  waiters_.unpark_all();
}

async_backend& condition_variable::backend() const noexcept { return builtin_backend(); }

}  // namespace weft

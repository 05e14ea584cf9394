// Locks.

#include <weft/backend.hpp>
#include <weft/sync/lock.hpp>

#include <stdexcept>

namespace weft {

basic_lock::~basic_lock() { WEFT_INVARIANT(waiters_.empty()); }

bool basic_lock::owned_by_current() const noexcept { return owner_ != nullptr && owner_ == detail::current_task(); }

void basic_lock::acquire() {
  detail::task_base& me = detail::require_task("weft::lock::acquire");
  if (owner_ == &me) throw std::logic_error("weft::lock::acquire: the lock is already held by this task (weft locks are not reentrant)");
  detail::raise_if_cancelled_at_entry();  // a checkpoint even when free
  if (owner_ == nullptr && waiters_.empty()) {
    owner_ = &me;
    return;
  }
  if (fair_) {
    detail::lot_entry entry;
    waiters_.park(entry, "lock");  // on wake-up the releaser has made us the owner
    WEFT_INVARIANT(owner_ == &me);
    return;
  }
  for (;;) {
    detail::lot_entry entry;
    waiters_.park(entry, "lock");
    if (owner_ == nullptr) {
      owner_ = &me;
      return;
    }
  }
}

bool basic_lock::try_acquire() {
  detail::task_base& me = detail::require_task("weft::lock::try_acquire");
  if (owner_ == nullptr && waiters_.empty()) {
    owner_ = &me;
    return true;
  }
  return false;
}

void basic_lock::release() {
  detail::task_base* me = detail::current_task();
  if (owner_ == nullptr) throw std::logic_error("weft::lock::release: the lock is not locked");
  if (owner_ != me) throw std::logic_error("weft::lock::release: the lock is held by another task");
  if (fair_) {
    detail::lot_entry* next = waiters_.unpark_one();
    owner_ = next != nullptr ? next->task : nullptr;
  } else {
    owner_ = nullptr;
    waiters_.unpark_one();
  }
}

async_backend& basic_lock::backend() const noexcept { return builtin_backend(); }

}  // namespace weft

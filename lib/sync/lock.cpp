// Locks.

#include "core/runtime.hpp"

#include <weft/backend.hpp>
#include <weft/sync/lock.hpp>

#include <stdexcept>
#include <string>

namespace weft {

basic_lock::~basic_lock() { WEFT_INVARIANT(waiters_.empty()); }

basic_lock::owner_id basic_lock::id_of(const detail::task_base& t) noexcept { return {t.rt_->serial(), t.id_}; }

bool basic_lock::owned_by_current() const noexcept {
  const detail::task_base* me = detail::current_task();
  return me != nullptr && owner_.task != 0 && owner_ == id_of(*me);
}

void basic_lock::check_runtime(const detail::task_base& me, const char* what) const {
  const bool foreign_owner = owner_.task != 0 && owner_.runtime != me.rt_->serial();
  const bool foreign_waiters = !waiters_.empty() && waiters_.front().task->rt_ != me.rt_;
  if (foreign_owner || foreign_waiters) [[unlikely]]
    throw std::logic_error(std::string(what) +
                           ": the lock is held or awaited by a task of another runtime; a weft lock belongs to the "
                           "runtime whose tasks use it (one thread). Between threads, use a std::mutex held without "
                           "parking, or hand the work to the other runtime");
}

void basic_lock::acquire() {
  detail::task_base& me = detail::require_task("weft::lock::acquire");
  const owner_id self = id_of(me);
  if (owner_ == self) throw std::logic_error("weft::lock::acquire: the lock is already held by this task (weft locks are not reentrant)");
  check_runtime(me, "weft::lock::acquire");
  detail::raise_if_cancelled_at_entry();  // a checkpoint even when free
  if (owner_.task == 0 && waiters_.empty()) {
    owner_ = self;
    return;
  }
  if (fair_) {
    detail::lot_entry entry;
    waiters_.park(entry, "lock");  // on wake-up the releaser has made us the owner
    WEFT_INVARIANT(owner_ == self);
    return;
  }
  for (;;) {
    detail::lot_entry entry;
    waiters_.park(entry, "lock");
    if (owner_.task == 0) {
      owner_ = self;
      return;
    }
  }
}

bool basic_lock::try_acquire() {
  detail::task_base& me = detail::require_task("weft::lock::try_acquire");
  check_runtime(me, "weft::lock::try_acquire");
  if (owner_.task == 0 && waiters_.empty()) {
    owner_ = id_of(me);
    return true;
  }
  return false;
}

void basic_lock::release() {
  if (owner_.task == 0) throw std::logic_error("weft::lock::release: the lock is not locked");
  if (!owned_by_current())
    throw std::logic_error("weft::lock::release: the lock is held by another task (or by a task that has ended)");
  if (fair_) {
    detail::lot_entry* next = waiters_.unpark_one();
    owner_ = next != nullptr ? id_of(*next->task) : owner_id{};
  } else {
    owner_ = {};
    waiters_.unpark_one();
  }
}

async_backend& basic_lock::backend() const noexcept { return builtin_backend(); }

}  // namespace weft

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
  owner_ = {};
  wake_next();
}

void basic_lock::wake_next() noexcept {
  // A plain lock's woken waiter takes the lock if it is free when it runs
  // (acquire's loop, acquire_as_woken), whether or not others still queue:
  // while the lock is free and its queue is not empty, some woken waiter is
  // on its way to take it. So a waiter in the queue is never stranded.
  detail::lot_entry* next = waiters_.unpark_one();
  if (fair_ && next != nullptr) owner_ = id_of(*next->task);
}

bool basic_lock::take_waiters(detail::parking_lot& from, std::size_t n, const detail::runtime& rt) noexcept {
  const bool foreign_owner = owner_.task != 0 && owner_.runtime != rt.serial();
  const bool foreign_waiters = !waiters_.empty() && waiters_.front().task->rt_ != &rt;
  if (foreign_owner || foreign_waiters) return false;
  if (from.repark(waiters_, n, this, "lock") != 0 && owner_.task == 0) {
    // Nobody holds the lock, so no release may come to wake the moved
    // waiters: wake the first of the queue now, as a release would. (A free
    // fair lock has an empty queue, so that is the first moved waiter. A
    // free plain lock may already have a woken waiter on its way; one more
    // costs a wait at the back of the queue, never a lost wake-up.)
    wake_next();
  }
  return true;
}

void basic_lock::acquire_as_woken(detail::task_base& me) {
  const owner_id self = id_of(me);
  for (;;) {
    if (owner_ == self) return;  // handed over by a fair lock
    if (owner_.task == 0) {
      owner_ = self;
      return;
    }
    // A plain lock, taken since the release that woke us by a task that
    // found nobody queued: wait again, like acquire's loop.
    detail::lot_entry entry;
    waiters_.park(entry, "lock");
  }
}

async_backend& basic_lock::backend() const noexcept { return builtin_backend(); }

}  // namespace weft

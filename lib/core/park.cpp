// Parking and waking tasks: the runtime's park/reschedule, the parking lot
// every weft primitive queues its waiters in, and the lowlevel API on top.

#include "core/runtime.hpp"

#include <weft/lowlevel/park.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace weft::detail {

void used_from_another_thread(const char* what) noexcept {
  std::fprintf(stderr,
               "weft: %s was called from a thread that does not run the runtime it belongs to (%s).\n"
               "weft: A runtime's tasks, cancel scopes and synchronization primitives (event, lock, semaphore,\n"
               "weft: condition_variable, channels) belong to the thread that runs it. From other threads, hand\n"
               "weft: work to it with weft::use_fiber or greenback::await_ (an operation on any executor),\n"
               "weft: weft::lowlevel::completion, or asio::post to its io_context.\n",
               what, t_runtime != nullptr ? "from another runtime's thread" : "from a thread without a weft runtime");
  std::abort();
}

WEFT_HOT void runtime::reschedule(task_base& t) noexcept {
  if (t_runtime != this) [[unlikely]]
    used_from_another_thread("waking a task (an event, lock, semaphore, channel or lowlevel::reschedule)");
  WEFT_INVARIANT(t.state_ == task_base::state::parked);
  t.state_ = task_base::state::scheduled;
  core_of(t).abort_ = nullptr;
  algo_->awakened(core_of(t).ctx_);
}

WEFT_HOT void runtime::park(task_base& t, const abort_fn& abort) {
  WEFT_INVARIANT(t_current_task == &t);
  check_stack_on_leave(t);  // stack guard hook
  if (t.status_->effectively_cancelled) {
    if (abort() == abort_result::succeeded) {
      t.wait_what_ = nullptr;  // the wait never began: dumps must not show it
      throw_cancelled(t);
    }
    // The wait cannot be withdrawn: wait for its completion uninterrupted;
    // the cancellation is delivered at the next checkpoint.
  } else {
    core_of(t).abort_ = &abort;
  }
  t.state_ = task_base::state::parked;
  if (!run_handlers_before_suspend(t)) {
    core_of(t).ctx_->suspend();
    after_switch();
  }
  t.state_ = task_base::state::running;
  t.wait_what_ = nullptr;
  if (core_of(t).wake_cancelled_) {
    core_of(t).wake_cancelled_ = false;
    throw_cancelled(t);
  }
}

void runtime::yield(task_base& t) noexcept {
  check_stack_on_leave(t);  // stack guard hook
  t.state_ = task_base::state::scheduled;
  core_of(t).ctx_->yield();
  after_switch();
  t.state_ = task_base::state::running;
}

void parking_lot::check_same_runtime(const char* what) const {
  const task_base* waiter = waiters_.front().task;
  if (waiter == nullptr || waiter->rt_ == t_runtime) return;
  throw std::logic_error(
      std::string(what) + ": its waiters are tasks of another runtime than this thread's. weft's synchronization "
                          "objects (event, lock, semaphore, condition_variable, channels) and task handles belong to "
                          "the runtime whose tasks use them, on its thread; from other threads, hand work to that "
                          "runtime (weft::use_fiber, greenback::await_, lowlevel::completion, or asio::post to its "
                          "io_context)");
}

void parking_lot::park(lot_entry& entry, const char* what, long long arg) {
  task_base& me = require_task("weft: a blocking call");
  if (!waiters_.empty()) check_same_runtime(what);
  describe_wait(me, what, arg);
  entry.task = &me;
  waiters_.push_back(entry);
  auto abort = [&]() noexcept {
    intrusive_list<lot_entry, lot_tag>::erase(entry);
    return abort_result::succeeded;
  };
  me.rt_->park(me, abort);
}

lot_entry* parking_lot::unpark_one() noexcept {
  if (waiters_.empty()) return nullptr;
  lot_entry& e = waiters_.pop_front();
  if (e.wake != nullptr)
    e.wake(e);
  else
    e.task->rt_->reschedule(*e.task);
  return &e;
}

std::size_t parking_lot::unpark_all() noexcept {
  std::size_t n = 0;
  while (unpark_one() != nullptr) ++n;
  return n;
}

std::size_t parking_lot::repark(parking_lot& to, std::size_t n, void* data, const char* what) noexcept {
  std::size_t moved = 0;
  for (; moved < n && !waiters_.empty(); ++moved) {
    lot_entry& e = waiters_.pop_front();
    // The waiter's abort callback (park above) unlinks the entry from
    // whatever list holds it, so it stays valid in `to`.
    to.waiters_.push_back(e);
    if (data != nullptr) e.data = data;
    if (what != nullptr && e.task != nullptr) describe_wait(*e.task, what);
  }
  return moved;
}

}  // namespace weft::detail

// --- lowlevel API -----------------------------------------------------------------

namespace weft::lowlevel {

task_ref current_task() { return task_ref(&detail::require_task("weft::lowlevel::current_task")); }

WEFT_HOT void park(function_ref<abort_result()> abort) {
  detail::task_base& me = detail::require_task("weft::lowlevel::park");
  me.rt_->park(me, abort);
}

WEFT_HOT void reschedule(task_ref t) noexcept {
  // Misuse of the contract, not a bug in weft: say which rule was broken.
  if (!t) [[unlikely]] {
    std::fprintf(stderr, "weft: weft::lowlevel::reschedule was given an empty task_ref\n");
    std::abort();
  }
  detail::task_base& task = *t.get();
  if (task.rt_ == detail::runtime::current() && task.state_ != detail::task_base::state::parked) [[unlikely]] {
    std::fprintf(stderr,
                 "weft: weft::lowlevel::reschedule: task %llu is not parked (rescheduled twice for one park, or "
                 "without a park)\n",
                 static_cast<unsigned long long>(task.id_));
    std::abort();
  }
  task.rt_->reschedule(task);  // from another thread: ends the program with a message
}

bool cancellation_pending() noexcept {
  detail::task_base* t = detail::current_task();
  return t != nullptr && t->status_->effectively_cancelled;
}

void raise_if_cancelled() {
  detail::task_base& t = detail::require_task("weft::lowlevel::raise_if_cancelled");
  if (t.status_->effectively_cancelled) detail::throw_cancelled(t);
}

void call_soon(soon_call& call) {
  detail::runtime* rt = detail::runtime::current();
  if (rt == nullptr) throw std::logic_error("weft::lowlevel::call_soon: no weft runtime runs on this thread");
  rt->call_soon(call);
}

boost::asio::io_context& io_context() {
  detail::runtime* rt = detail::runtime::current();
  if (rt == nullptr) throw std::logic_error("weft::lowlevel::io_context: no weft runtime runs on this thread");
  return rt->io();
}

}  // namespace weft::lowlevel

// The loop: what the dispatcher runs between task switches (see
// reactor_pass below).

#include "core/runtime.hpp"

#include <weft/lowlevel/park.hpp>

#include <cstddef>
#include <optional>
#include <utility>

namespace weft::detail {

// This is the loop. One pass:
//  1. run every Asio handler that is ready, without blocking (completions
//     reschedule parked tasks);
//  2. fire every deadline that is due (sleepers wake, scopes get cancelled);
//  3. if a task is ready, return: the dispatcher picks it;
//  4. otherwise the runtime is idle: wake wait_all_tasks_blocked() waiters,
//     or let an autojumping clock advance to the next deadline, or block in
//     the reactor (epoll) until I/O, the wake timer (armed for the earliest
//     deadline) or a post from another thread arrives.
// Step 1 costs an epoll_wait, and when it finds nothing step 4 makes
// another: so it is skipped when the task that parked last polled and
// found nothing at this same instant (loop_.found_nothing); the run_one of
// step 4 runs whatever became ready since without blocking. Only what
// needs "no I/O is ready" (idle waiters, an autojump) polls first.
void runtime::reactor_pass() noexcept {
  const bool busy = loop_.poll_due;  // tasks kept the loop away for poll_interval picks
  loop_.poll_due = false;
  loop_.ticks = 0;
  bool skip_poll = std::exchange(loop_.found_nothing, false);
  t_current_task = nullptr;
  if (run_soon_calls()) skip_poll = false;  // they may have posted handlers
  if (busy) {
    // Someone may have stopped the io_context (io_context().stop()); checked
    // here and before blocking, not on every pass (it takes a lock).
    if (io_.stopped()) io_.restart();
    asio_.poll_turn();  // a pass that interrupts busy tasks: give all of I/O its turn
  } else if (!skip_poll) {
    run_ready_handlers();
  }
  bool polled = busy || !skip_poll;  // so "no I/O is ready" is known
  fire_expired();
  for (;;) {
    if (algo_->has_ready_tasks()) return;
    if (run_soon_calls()) continue;  // queued by a handler of this pass
    if (!polled && (!idle_waiters_.empty() || (clock_may_autojump_ && !deadlines_.empty()))) {
      polled = true;
      run_ready_handlers();
      continue;
    }
    if (!idle_waiters_.empty()) {
      idle_waiters_.unpark_all();
      return;
    }
    // A deadline that fires may wake nobody (a scope around shielded work):
    // keep jumping until a task is ready or nothing is left to jump to.
    if (deadlines_.empty() || !clock_->try_autojump(deadlines_.next())) break;
    fire_expired();
    // A fired deadline may have aborted I/O: let those completions wake
    // their tasks before time jumps any further.
    run_ready_handlers();
  }
  arm_wake_timer();
  probe_.idle.store(true, std::memory_order_relaxed);
  const std::size_t ran = asio_.run_one();
  probe_.idle.store(false, std::memory_order_relaxed);
  if (ran == 0) {
    // Only a stopped io_context (io_context().stop()) runs nothing: the
    // work guard keeps it from running out of work. Asking stopped() before
    // blocking instead would take the scheduler's lock on every idle pass.
    io_.restart();
    return;  // the next pass runs what the stop held back
  }
  run_ready_handlers();
  fire_expired();
}

WEFT_HOT bool runtime::run_soon_calls() noexcept {
  if (soon_.empty()) return false;
  // One batch: calls queued by these calls wait for the next pass.
  intrusive_list<lowlevel::soon_call, lowlevel::soon_call_tag> batch;
  while (!soon_.empty()) batch.push_back(soon_.pop_front());
  while (!batch.empty()) {
    lowlevel::soon_call& c = batch.pop_front();
    c.fn(&c);
  }
  return true;
}

WEFT_HOT bool runtime::run_ready_handlers() noexcept {
  // Handlers one at a time until a task is ready. io_context::poll() would
  // end every call with one more epoll_wait, which finds nothing when the
  // handlers were all that was ready (request/response traffic).
  bool ran = false;
  while (!algo_->has_ready_tasks()) {
    if (asio_.poll_one() == 0) return ran;
    ran = true;
  }
  // Under load one epoll_wait reports many sockets: the handlers it queued
  // run now, so that the tasks they wake run back to back, without a pass
  // between each, and the reactor is polled again only after them (one
  // epoll_wait per turn of the queue, as in io_context::run).
  asio_.run_rest_of_turn(loop_state::max_handler_batch);
  return true;
}

// A task parks and no other task is ready: the dispatcher would run a pass
// and then switch to the task the pass woke, two switches per wake in
// request/response traffic. Instead the parking task runs the ready
// handlers itself (the non-blocking first step of a pass; the rest stays
// with the dispatcher, which still gets a full pass every poll_interval
// picks and whenever this finds nothing). A task the handlers wake is then
// switched to directly; if they woke the parking task itself, first in
// line, it goes on without a switch (returns true). Handlers run outside
// any task, with the dispatcher's per-thread state, as in a pass, and only
// where the task's stack has `handler_stack` bytes left.
WEFT_HOT bool runtime::run_handlers_before_suspend(task_base& t) noexcept {
  loop_.found_nothing = false;
  if (algo_->has_ready_tasks() || loop_.poll_due || !soon_.empty() || !loop_.dispatcher_may_stay()) return false;
  const char* sp = static_cast<const char*>(__builtin_frame_address(0));
  if (sp - static_cast<const char*>(core_of(t).stack_bottom_) < static_cast<std::ptrdiff_t>(loop_state::handler_stack))
    return false;
  if (++loop_.ticks >= loop_state::poll_interval) {  // a pick, for the pass's due time
    loop_.poll_due = true;
    return false;
  }
  probe_.count_switch();  // the task has parked: progress, for the stall monitor
  thread_state& own = *state_current_;
  own.eh = *eh_globals_;
  own.errno_value = *errno_;
  *eh_globals_ = dispatcher_state_.eh;
  *errno_ = dispatcher_state_.errno_value;
  state_current_ = &dispatcher_state_;
  t_current_task = nullptr;
  const bool ran = run_ready_handlers();
  const bool ran_soon = run_soon_calls();  // queued by those handlers
  loop_.found_nothing = !ran && !ran_soon;
  t_current_task = &t;
  dispatcher_state_.eh = *eh_globals_;
  dispatcher_state_.errno_value = *errno_;
  *eh_globals_ = own.eh;
  *errno_ = own.errno_value;
  state_current_ = &own;
  return t.state_ == task_base::state::scheduled && algo_->take_if_first(core_of(t).ctx_);
}

void runtime::arm_wake_timer() noexcept {
  std::optional<std::chrono::steady_clock::time_point> when;
  if (!deadlines_.empty()) when = clock_->wake_time(deadlines_.next());
  if (loop_.fiber_deadline != std::chrono::steady_clock::time_point::max() && (!when || loop_.fiber_deadline < *when))
    when = loop_.fiber_deadline;
  if (!when) return;
  if (wake_pending_ && wake_armed_for_ <= *when) return;
  wake_armed_for_ = *when;
  wake_pending_ = true;
  const std::uint64_t generation = ++wake_generation_;
  wake_timer_.expires_at(*when);
  wake_timer_.async_wait([this, generation](const boost::system::error_code&) {
    if (generation == wake_generation_) wake_pending_ = false;
  });
}

void runtime::fire_expired() noexcept {
  if (deadlines_.empty()) return;
  const time_point now = this->now();
  while (deadline_entry* e = deadlines_.pop_due(now)) e->fire(e);
}

}  // namespace weft::detail

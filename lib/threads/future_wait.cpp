// Waiting for a weft::future: who waits how (a task parks, a plain thread
// sleeps on a futex, a runtime's thread outside any task is refused), and
// what the waiter's cancellation and timeout do to the future.

#include "core/runtime.hpp"
#include "threads/race_point.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>
#include <weft/detail/future_state.hpp>
#include <weft/lowlevel/completion.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

namespace weft::detail {

namespace {

inbox* home_of_this_thread() noexcept {
  runtime* rt = t_runtime;
  return rt != nullptr ? &rt->remote_inbox() : nullptr;
}

// A task parked on a future. The completer takes it out of the list and
// calls complete(), which reaches the task through its runtime's inbox
// when the completer runs on another thread.
struct task_waiter : future_waiter {
  lowlevel::completion done;
  task_waiter() {
    wake = [](future_waiter* w) noexcept { static_cast<task_waiter*>(w)->done.complete(); };
  }
};

}  // namespace

future_state_base::future_state_base() : future_state_base(home_of_this_thread()) {}

void future_state_base::wait_in_task(task_base&, const wait_options& options) {
  if (done()) {
    // A value or an exception is there: no yield and no cancel point, so
    // collecting finished results works even in a cancelled scope. A
    // cancellation by someone else is a checkpoint first.
    if (current() == phase::cancelled) coro_yield();
    return;
  }
  if (!std::isfinite(options.timeout.count())) {
    if (options.shield)
      wait_shielded();
    else
      wait_withdrawable(nullptr, true);
    return;
  }
  cancel_scope scope(deadline_after(options.timeout), options.shield);
  scope.run([&] { wait_withdrawable(&scope, !options.shield); });
  if (scope.cancelled_caught()) throw timeout_error("weft::future::wait: the future was not done within the timeout");
}

// Parks until the future is done; a cancellation withdraws the waiter. Then,
// with `may_cancel`, the future is cancelled: if it accepts (or the
// cancellation is the deadline of `scope`, a timeout), the cancellation
// propagates; if it refuses (a job that cannot be cancelled is running),
// the wait goes on shielded and the task's cancellation comes at its next
// checkpoint.
void future_state_base::wait_withdrawable(const cancel_scope* scope, bool may_cancel) {
  task_waiter w;
  if (!enlist(w)) return;
  bool withdrawn = false;
  try {
    w.done.wait(
        [&]() noexcept {
          withdrawn = withdraw(w);
          return withdrawn ? abort_result::succeeded : abort_result::failed;
        },
        "a weft::future");
    return;
  } catch (const cancelled& c) {
    if (!withdrawn || !may_cancel) throw;
    const bool timed_out = scope != nullptr && scope->cancel_called();
    race_point("future: a withdrawn waiter cancels the future");
    const bool accepted =
        cancel(timed_out ? std::string("the waiter's timeout expired")
                         : std::string("the waiting task was cancelled (") + c.what() + ")");
    // Refused because the outcome arrived after the waiter withdrew: a
    // timed wait returns it (as on a plain thread) rather than losing it
    // behind a timeout_error.
    if (accepted || (timed_out && !done())) throw;
  }
  wait_shielded();
}

void future_state_base::wait_shielded() {
  task_waiter w;
  if (!enlist(w)) return;
  w.done.wait([]() noexcept { return abort_result::failed; }, "a weft::future (shielded)");
}

}  // namespace weft::detail

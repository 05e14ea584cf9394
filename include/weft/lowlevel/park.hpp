// The one way a weft task suspends: park with an abort callback, rescheduled exactly once.
//
// Everything in weft that blocks (sleep, locks, events, channels, joins, I/O,
// greenback::await_) is built on `park` and `reschedule`, so cancellation
// and deadlines behave the same everywhere. This is the extension interface
// for building new blocking primitives; ordinary code never needs it.
//
// Contract (trio's wait_task_rescheduled):
//  1. Register the current task (from `current_task()`) with whatever will
//     wake it, then call `park(abort)`.
//  2. Exactly one of these happens:
//     - someone calls `reschedule(task)` (once); `park` returns normally;
//     - the task is cancelled while parked, or was already cancelled when
//       `park` was called: the runtime calls `abort()` exactly once, on the
//       runtime's thread — from some other context (the one that cancelled)
//       in the first case, from inside `park` itself, before the task
//       suspends, in the second. `abort` must be quick and must not block. If it withdraws the registration it returns
//       `abort_result::succeeded`; the runtime then wakes the task and `park`
//       throws `weft::cancelled`. If the operation can no longer be withdrawn
//       it returns `abort_result::failed`; the task stays parked until the
//       operation's completer calls `reschedule(task)`, and the cancellation
//       is delivered at the task's next checkpoint.
//  3. `reschedule` on a task that is not parked is a bug (checked always),
//     and so is `reschedule` from a thread other than the task's runtime's
//     (checked always). For wakers on other threads (an operation completed
//     by a thread pool, another runtime, a plain thread) use
//     lowlevel::completion, which hands the wake to the task's runtime.
#pragma once

#include <weft/detail/core.hpp>

namespace boost::asio {
class io_context;
}

namespace weft::lowlevel {

using abort_result = detail::abort_result;

/// A non-owning reference to a task, for wakers. Cheap to copy.
class task_ref {
 public:
  task_ref() noexcept = default;
  explicit task_ref(detail::task_base* t) noexcept : t_(t) {}
  detail::task_base* get() const noexcept { return t_; }
  explicit operator bool() const noexcept { return t_ != nullptr; }
  friend bool operator==(task_ref, task_ref) noexcept = default;

 private:
  detail::task_base* t_ = nullptr;
};

/// The running task. @throws std::logic_error outside a weft task.
task_ref current_task();

/// True in weft task code; false in Asio handlers and soon_calls of the
/// runtime, and on threads without a weft runtime. Never throws.
inline bool in_task() noexcept { return detail::current_task() != nullptr; }

/// Parks the current task until `reschedule` is called for it.
/// A checkpoint. @throws weft::cancelled as described above.
/// @throws std::logic_error outside a weft task.
void park(function_ref<abort_result()> abort);

/// Describes the wait the current task is about to park in, for
/// dump_tasks: `what` must be a string that outlives the wait (a literal);
/// `arg`, when not -1, is shown after it (a file descriptor, a task id).
/// The description is cleared when the task wakes. Not a checkpoint; does
/// nothing outside a task.
inline void describe_wait(const char* what, long long arg = -1) noexcept {
  if (detail::task_base* t = detail::current_task()) detail::describe_wait(*t, what, arg);
}

/// Makes a parked task runnable again. Must be called exactly once per park,
/// on the runtime's thread: from another thread, for a task that is not
/// parked, or with an empty task_ref it ends the program with a message
/// naming the broken rule (never a silent corruption). A waker on another thread uses
/// lowlevel::completion (lowlevel/completion.hpp) instead.
void reschedule(task_ref t) noexcept;

/// True if a checkpoint in the current task would throw `cancelled` now.
/// Not a checkpoint. False outside a task.
bool cancellation_pending() noexcept;

/// Throws `cancelled` if the current task is cancelled; does not yield.
/// @throws weft::cancelled, std::logic_error outside a weft task.
void raise_if_cancelled();

/// A function to run soon on the runtime's thread, outside any task.
struct soon_call : detail::list_hook<struct soon_call_tag> {
  void (*fn)(soon_call* self) noexcept = nullptr;
};

/// Queues `call` to run (call.fn(&call)) at the next pass of this thread's
/// runtime loop, outside any task, after the calls queued before it (first
/// in, first out; a call queued by a running call waits for the next pass) — like an Asio handler, but without a trip
/// through the io_context. For code on the runtime's own thread only (from
/// other threads use lowlevel::completion or asio::post). `call` must stay alive until it has run.
/// @throws std::logic_error when no runtime runs on this thread.
void call_soon(soon_call& call);

/// The runtime's Asio reactor. Handlers posted to it run on the runtime's
/// thread between task switches and must not block or park.
/// @throws std::logic_error when no runtime runs on this thread.
boost::asio::io_context& io_context();

}  // namespace weft::lowlevel

// Checkpoints and sleeping: the points where a task may switch and be cancelled.
#pragma once

#include <weft/time.hpp>

namespace weft {

/// A schedule point and a cancel point: lets other ready tasks run, then
/// throws `cancelled` if the task is in a cancelled scope.
/// @throws weft::cancelled; std::logic_error outside a weft task.
void coro_yield();

/// Same as coro_yield(); the name reads better in loops.
inline void checkpoint() { coro_yield(); }

/// A schedule point that is never a cancel point: a cancellation that is
/// pending stays pending and fires at the next real checkpoint.
/// @throws std::logic_error outside a weft task.
void cancel_shielded_coro_yield();

/// Blocks the task for `d` of runtime-clock time (at least d; from one
/// second on, up to one kernel clock tick more: see cancel_scope.hpp).
/// `sleep(0s)` is one plain checkpoint. Checkpoint.
/// @throws std::invalid_argument if d is negative or NaN; weft::cancelled.
void sleep(duration d);

/// Blocks the task until the runtime clock reaches `t`; a time in the past
/// means one checkpoint. Checkpoint.
/// @throws std::invalid_argument if t is NaN; weft::cancelled.
void sleep_until(time_point t);

/// Blocks until cancelled. Checkpoint. @throws weft::cancelled (always).
[[noreturn]] void sleep_forever();

/// The runtime clock's current time (monotonic). Not a checkpoint.
/// @throws std::logic_error when no runtime runs on this thread.
time_point current_time();

}  // namespace weft

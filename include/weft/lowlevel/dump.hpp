// A task dump: every task of a runtime, what it waits for, and the cancel scopes around it.
#pragma once

#include <chrono>
#include <iosfwd>

namespace boost::asio {
class io_context;
}

namespace weft::lowlevel {

/// Writes the task tree of this thread's runtime to `out`, one line per task,
/// task group and entered cancel scope, indented by nesting:
///
///     weft tasks at t=12 (3 tasks)
///     task 1 "main" running
///       task group
///         task 2 "sleeper" parked: sleep until t=15 (in 3 s)
///           cancel scope, deadline t=20 (in 8 s)
///         task 3 "worker" parked: lock [cancelled]
///
/// Tasks started for coroutines outside any task (greenback portal
/// workers) appear under a last line `system tasks`.
///
/// A task's state is starting, running, ready or parked; a parked task says
/// what it waits for (sleep, lock, event, semaphore, condition variable,
/// channel send/receive, join of task N, start of task N, task group exit,
/// await_, an Asio operation, I/O on fd N, ...). `[cancelled]` marks a task,
/// group or scope whose cancellation is in effect (its own or an outer
/// one's); `[cancel called]` one that was cancelled itself; `[shield]` a
/// shielded scope. Times are on the runtime's clock. Not a checkpoint; for
/// the runtime's own thread (a task, or an Asio handler of the runtime).
/// @throws std::logic_error when no runtime runs on this thread; what `out` throws.
void dump_tasks(std::ostream& out);

/// The same, from any thread: the dump is taken on the loop of the runtime
/// whose io_context is `runtime_io` (lowlevel::io_context() of that runtime)
/// and written to `out` on the calling thread. Waits at most `timeout` for
/// the loop to take it (a loop stalled by a task that never reaches a
/// checkpoint cannot); returns false then, and nothing is written. On the
/// runtime's own thread it dumps directly. `runtime_io` must belong to a
/// runtime that is still running. Blocks the calling thread: do not call it
/// from a task of another runtime with a long timeout.
/// @throws what `out` throws.
bool dump_tasks(boost::asio::io_context& runtime_io, std::ostream& out,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace weft::lowlevel

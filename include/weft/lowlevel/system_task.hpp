// System tasks: tasks that belong to the runtime rather than to a task
// group, for services that run on behalf of code outside any task (portal
// workers, for instance).
//
// Contract: spawn_system_task(fn) starts fn() as a task of this thread's
// runtime, outside every task group, at the next scheduling point (the
// caller does not yield). The task runs under the runtime's system scope:
// it is cancelled (cancel_reason::shutdown) once the root task has ended,
// and weft::run returns only after it has ended. weft::cancelled ending it
// is its normal end; any other exception escaping fn has nobody to go to
// and is written to stderr with the task's name. Callable from a task, an
// Asio handler or a soon_call of the runtime's thread.
#pragma once

#include <weft/task.hpp>

#include <utility>

namespace weft::lowlevel {

/// See the header comment. @throws std::logic_error when no weft runtime
/// runs on this thread; std::bad_alloc (then fn was not started).
template <class F>
void spawn_system_task(F&& fn) {
  detail::spawn_system_task(detail::make_task(std::forward<F>(fn)));
}

}  // namespace weft::lowlevel

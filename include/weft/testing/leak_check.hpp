// weft::testing leak checks: counts of runtime objects still alive.
#pragma once

#include <cstddef>

namespace weft::testing {

/// Task objects alive in the process (running tasks and task handles).
std::size_t live_task_objects() noexcept;
/// Task stacks handed out and not yet returned, in the process.
std::size_t live_stacks() noexcept;

}  // namespace weft::testing

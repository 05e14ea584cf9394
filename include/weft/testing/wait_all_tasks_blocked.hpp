// weft::testing::wait_all_tasks_blocked: wait until nothing else can run.
#pragma once

namespace weft::testing {

/// Blocks until every other task of the runtime is blocked and no I/O or
/// timer is ready to wake one; then returns (before an autojumping clock
/// advances). Checkpoint. @throws weft::cancelled, std::logic_error outside a task.
void wait_all_tasks_blocked();

}  // namespace weft::testing

// weft::testing leak checks: counts of runtime objects still alive.
#pragma once

#include <cstddef>

namespace weft::testing {

/// Task objects alive in the process (running tasks and task handles).
std::size_t live_task_objects() noexcept;
/// Task stacks handed out and not yet returned, in the process.
std::size_t live_stacks() noexcept;
/// Bytes of address space mapped for pooled task stacks (with their guards),
/// in the process.
std::size_t mapped_stack_bytes() noexcept;
/// Stack slabs (mappings of pooled stacks) mapped so far, in the process.
std::size_t stack_slabs_mapped() noexcept;

/// The running task's stack, for tests of stack guards and pooling.
struct stack_info {
  void* bottom = nullptr;  ///< its lowest usable address
  std::size_t size = 0;    ///< bytes, guard not included
  bool canary = false;     ///< a canary at `bottom` instead of a guard below it
};
/// @throws std::logic_error outside a weft task.
stack_info current_stack();

}  // namespace weft::testing

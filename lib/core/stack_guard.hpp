// Stack overflow detection: guards below task stacks, the SIGSEGV handler
// that reports a fault in one, and the canary used where no guard can be.
#pragma once

#include "core/task_core.hpp"

#include <weft/detail/core.hpp>
#include <weft/run.hpp>

#include <cstddef>
#include <cstdint>

namespace weft::detail {

/// Bytes of address space kept below every stack for its guard (4 KiB,
/// whole pages); none with stack_guard::none.
std::size_t stack_guard_size() noexcept;

/// The mode a pool uses: `automatic` becomes `madvise` or `mprotect`.
/// @throws std::system_error for `madvise` if the kernel lacks MADV_GUARD_INSTALL.
stack_guard resolve_stack_guard(stack_guard requested);

/// Installs guards on `count` regions of stack_guard_size() bytes, `stride`
/// bytes apart from `first`, as `mode` (madvise or mprotect) says. Returns
/// what was done: madvise, mprotect, or canary when no guard was installed
/// (mprotect's mapping budget is spent, or the kernel refused: then nothing
/// is left installed). `forced`: mprotect even beyond the budget (for
/// stack_kind::guarded); then a failure returns none.
stack_guard install_stack_guards(char* first, std::size_t stride, std::size_t count, stack_guard mode,
                                 bool forced = false) noexcept;
/// madvise(first + i * stride, len, advice) for every i < count: one
/// process_madvise() per 64 ranges where the kernel takes it for the
/// process itself (Linux 6.15), else one madvise() per range. Returns false
/// at the first range refused.
bool madvise_strided(char* first, std::size_t stride, std::size_t len, std::size_t count, int advice) noexcept;
/// Gives back to the budget the mappings of `count` mprotect guards that
/// were just unmapped.
void release_mprotect_guards(std::size_t count) noexcept;

/// Writes the canary at `bottom`, the lowest usable address of a stack.
void write_stack_canary(void* bottom) noexcept;
/// Checks the canary of `t`'s stack; reports the overflow and aborts if it
/// was overwritten. Call only for a stack that has a canary.
void check_stack_canary(const task_base& t) noexcept;

/// Where a task leaves its stack (park, yield, end): checks its canary if it
/// has one. Tasks with a guard pay one predictable branch.
inline void check_stack_on_leave(const task_base& t) noexcept {
  if (core_of(t).stack_canary_) [[unlikely]]
    check_stack_canary(t);
}

/// Stack overflow reporting on the calling thread, for the lifetime of a
/// runtime: installs weft's SIGSEGV handler (once per process, never
/// removed), and gives the thread an alternate signal stack if it has none
/// (freed again by the destructor), so that the handler can run when the
/// faulting stack is full.
class stack_guard_thread {
 public:
  stack_guard_thread() noexcept;
  ~stack_guard_thread();
  stack_guard_thread(const stack_guard_thread&) = delete;
  stack_guard_thread& operator=(const stack_guard_thread&) = delete;

 private:
  void* alt_stack_ = nullptr;  // ours, or nullptr if the thread had one
};

}  // namespace weft::detail

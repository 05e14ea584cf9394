// Running a weft runtime: run()/bootstrap() and their options.
#pragma once

#include <weft/detail/core.hpp>
#include <weft/task.hpp>
#include <weft/time.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

namespace weft {

/// How task stacks are allocated.
enum class stack_kind {
  /// Fixed-size stacks from a per-runtime pool, one per stack size
  /// (mmap'ed in slabs of up to 64, reused; a slab whose stacks are all
  /// free and trimmed is unmapped), each with a guard below it as
  /// `run_options::stack_guard` says. The default.
  pooled,
  /// Each stack is its own mapping, unmapped as soon as its task ends, with
  /// a real guard below it whatever `run_options::stack_guard` says
  /// (MADV_GUARD_INSTALL, else mprotect: then each stack costs two of the
  /// ~65k memory mappings Linux allows a process, and the runtime cannot
  /// create more such stacks once they are used up). For debugging.
  guarded,
};

/// How an overflow of a task's stack is caught. With a guard (one page, 4
/// KiB, of inaccessible address space below every stack), the first access
/// past the stack's end faults; weft's SIGSEGV handler (installed when the
/// first runtime of the process starts, and passing every other fault on to
/// the handler that was there before) prints
/// `weft: stack overflow in task <name> (stack <N> KiB)` to stderr and
/// aborts. The handler runs on an alternate signal stack, which the runtime
/// sets up for its thread if the thread has none. <name> is the task's
/// name if it was given one (task_options::name), else the mangled name of
/// its function's type, or a plain function's address (the handler cannot
/// demangle: that allocates).
///
/// A frame bigger than the guard (a local array or alloca of over 4 KiB)
/// can jump over it into the neighbouring stack, unless the code is
/// compiled with `-fstack-clash-protection` (GCC >= 8, Clang >= 11), which
/// touches every page of a large frame in order, so that the guard catches
/// it: recommended for code that runs on tasks.
///
/// The handler is installed once and never removed; a program (or a test
/// framework: doctest and Catch2 do so around every test case) that later
/// restores an earlier SIGSEGV handler removes it, and overflows then die
/// of a plain SIGSEGV.
enum class stack_guard {
  /// The best the kernel offers: `madvise` where available (Linux >= 6.13),
  /// else what `mprotect` says. The default.
  automatic,
  /// Guard markers installed with madvise(MADV_GUARD_INSTALL), all of a
  /// slab's at once when it is mapped: no memory, no extra mapping, kept
  /// while stacks are reused and their memory given back.
  /// @throws std::system_error from run() if the kernel lacks it.
  madvise,
  /// What a kernel without MADV_GUARD_INSTALL gets: guard pages made with
  /// mprotect(PROT_NONE), each costing two memory mappings, while the
  /// process's guards use less than half of vm.max_map_count (read once);
  /// beyond that, stacks get a canary instead.
  mprotect,
  /// No guard: a canary word at the lowest address of each stack, checked
  /// whenever its task parks, yields or ends. An overflow is then reported
  /// (`... (stack <N> KiB, canary overwritten)`) after the fact, and only if
  /// it reached the canary without crashing first; a page of unused address
  /// space below each stack keeps small overflows off the neighbouring
  /// stack. Touches one page of every stack (4 KiB of memory each).
  canary,
  /// Nothing: stacks are adjacent, an overflow silently corrupts the
  /// neighbouring stack. For measurements.
  none,
};

/// Options of one runtime.
struct run_options {
  /// The runtime's clock; nullptr means a weft::real_clock.
  std::shared_ptr<weft::clock> clock;
  /// Stack size of every task that does not ask for its own, in bytes
  /// (rounded up to whole pages; at least 16 KiB). The guard comes on top.
  std::size_t stack_size = 128 * 1024;
  stack_kind stacks = stack_kind::pooled;
  /// How a stack overflow is caught, for pooled stacks and for tasks that
  /// ask for their own stack size (see stack_guard).
  weft::stack_guard stack_guard = weft::stack_guard::automatic;
  /// How many free stacks the pool keeps ready, per stack size; memory of
  /// stacks freed beyond that is returned to the system (in batches of
  /// 256), and so is the address space of a slab (up to 64 stacks, at most
  /// 16 MiB) whose stacks are all free and trimmed. When the runtime ends,
  /// up to 4 of its slabs with warm stacks stay mapped (with the top 32 KiB
  /// of each warm stack) for the next runtime of the process with the same
  /// stack size and guard, which then need not fault its stacks in again;
  /// weft::release_cached_stacks() unmaps them.
  std::size_t stack_pool_size = 1024;
  /// The stall watchdog: when > 0, a monitor thread reports (on stderr,
  /// once per stall) a task that has run this long without a checkpoint —
  /// legacy code calling a blocking system call, a busy loop —
  /// `weft: task <name> has run <N> ms without a checkpoint`. It samples a
  /// counter of the runtime's switches and reads no clock on the switch
  /// path; an idle runtime (waiting for I/O or timers) is never reported.
  /// 0 (the default) starts no monitor.
  std::chrono::milliseconds stall_warning{0};
};

/// Unmaps the task stacks that ended runtimes left mapped for later ones
/// (see run_options::stack_pool_size); runtimes still running keep theirs.
/// Any thread. Never throws.
void release_cached_stacks() noexcept;

namespace detail {
/// Runs `root` (one reference transferred) as the root task of a fresh
/// runtime on this thread, until it and everything it started is done.
void run_root(const run_options& options, task_base* root);
}  // namespace detail

/// Runs fn(args...) as the root task of a fresh runtime on the calling
/// thread; returns its value or rethrows its exception. Blocks the thread
/// until the root task is done.
/// @throws std::logic_error if this thread is already running a runtime.
template <class F, class... Args>
  requires(!std::same_as<std::remove_cvref_t<F>, run_options>)
auto run(F&& fn, Args&&... args) {
  return run(run_options{}, std::forward<F>(fn), std::forward<Args>(args)...);
}

template <class F, class... Args>
auto run(const run_options& options, F&& fn, Args&&... args) {
  auto* root = detail::make_task(std::forward<F>(fn), std::forward<Args>(args)...);
  using T = detail::task_result_t<F, Args...>;
  task<T> handle(root);  // keeps the outcome alive past the runtime
  detail::run_root(options, root);
  if (root->exception_) std::rethrow_exception(root->exception_);
  if constexpr (!std::is_void_v<T>) return std::move(*root->value_);
}

/// The seed's name for run().
template <class... A>
auto bootstrap(A&&... a) {
  return run(std::forward<A>(a)...);
}

}  // namespace weft

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
  /// Fixed-size stacks from a per-runtime pool (mmap'ed, reused). The default.
  pooled,
  /// Each stack is its own mapping with a guard page below it, so an
  /// overflow faults at once. For debugging: each costs two memory mappings,
  /// and Linux allows ~65k mappings per process.
  guarded,
};

/// Options of one runtime.
struct run_options {
  /// The runtime's clock; nullptr means a weft::real_clock.
  std::shared_ptr<weft::clock> clock;
  /// Stack size of every task that does not ask for its own, in bytes
  /// (rounded up to whole pages; at least 16 KiB).
  std::size_t stack_size = 128 * 1024;
  stack_kind stacks = stack_kind::pooled;
  /// How many free stacks the pool keeps ready; memory of stacks freed
  /// beyond that is returned to the system (the address space is kept).
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

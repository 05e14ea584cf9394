// The stall watchdog (run_options::stall_warning): a thread that watches a
// runtime's switch counter and reports a task that runs too long without a
// checkpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace weft::detail {

class task_base;

/// What the runtime shares with its monitor. Written by the runtime thread
/// only; read by the monitor.
struct stall_probe {
  /// Bumped at every switch (a plain load and store: one writer).
  std::atomic<std::uint64_t> switches{0};
  /// The runtime is blocked in the reactor (idle, not stalled).
  std::atomic<bool> idle{false};
  /// The task whose name the monitor is reading; the runtime does not free
  /// the task it finishes while the monitor holds it here (see
  /// runtime::finish_task).
  std::atomic<task_base*> inspecting{nullptr};
  /// The runtime thread's `t_current_task`.
  task_base* const* current = nullptr;

  void count_switch() noexcept { switches.store(switches.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
  /// Before the running task is freed: no monitor may still be reading it.
  void retire_current(task_base* t) noexcept;
};

class stall_monitor {
 public:
  stall_monitor(stall_probe& probe, std::chrono::milliseconds threshold);
  ~stall_monitor();
  stall_monitor(const stall_monitor&) = delete;
  stall_monitor& operator=(const stall_monitor&) = delete;

 private:
  void watch();
  void report(std::uint64_t stalled_at, std::chrono::steady_clock::duration stalled_for);

  stall_probe& probe_;
  std::chrono::milliseconds threshold_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace weft::detail

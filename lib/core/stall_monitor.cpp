#include "core/stall_monitor.hpp"

#include <weft/detail/core.hpp>

#include <cstdio>
#include <new>
#include <string>

namespace weft::detail {

void stall_probe::retire_current(task_base* t) noexcept {
  // Dekker with stall_monitor::report: we publish a switch, then look for a
  // reader; the reader publishes itself, then looks for a switch. At least
  // one of us sees the other.
  switches.store(switches.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  while (inspecting.load(std::memory_order_acquire) == t) std::this_thread::yield();
}

stall_monitor::stall_monitor(stall_probe& probe, std::chrono::milliseconds threshold)
    : probe_(probe), threshold_(threshold), thread_([this] { watch(); }) {}

stall_monitor::~stall_monitor() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void stall_monitor::watch() {
  using clock = std::chrono::steady_clock;
  const auto period = std::max<clock::duration>(threshold_ / 4, std::chrono::milliseconds(1));
  std::uint64_t last = probe_.switches.load(std::memory_order_acquire);
  auto last_change = clock::now();
  bool reported = false;
  std::unique_lock lock(mutex_);
  while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
    const std::uint64_t now_switches = probe_.switches.load(std::memory_order_acquire);
    const auto now = clock::now();
    if (now_switches != last || probe_.idle.load(std::memory_order_relaxed)) {
      last = now_switches;
      last_change = now;
      reported = false;
      continue;
    }
    if (!reported && now - last_change >= threshold_) {
      reported = true;
      report(last, now - last_change);
    }
  }
}

void stall_monitor::report(std::uint64_t stalled_at, std::chrono::steady_clock::duration stalled_for) {
  const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(stalled_for).count();
  task_base* t = __atomic_load_n(probe_.current, __ATOMIC_ACQUIRE);
  std::string what;
  std::string suffix;
  if (t != nullptr) {
    probe_.inspecting.store(t, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (probe_.switches.load(std::memory_order_relaxed) == stalled_at) {
      // No switch since the stall began: t is still running, so alive, and
      // its name fields do not change while it lives.
      try {
        what = "task " + t->name();
        suffix = " (task id " + std::to_string(t->id_) + ")";
      } catch (const std::bad_alloc&) {  // out of memory while reporting: report without the name
        what = "a task";
      }
    }
    probe_.inspecting.store(nullptr, std::memory_order_release);
    if (what.empty()) return;  // the stall ended while we looked
  } else {
    what = "the loop (an Asio handler or a call outside any task)";
  }
  std::fprintf(stderr, "weft: %s has run %lld ms without a checkpoint%s\n", what.c_str(), ms, suffix.c_str());
  std::fflush(stderr);
}

}  // namespace weft::detail

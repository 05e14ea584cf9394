// The process-wide cache of worker threads behind run_in_thread (trio's
// _thread_cache): elastic, no queue, direct hand-off.
//
// - A job goes to the most recently idle worker (LIFO: its stack and
//   caches are warm), or to a new thread when none is idle: jobs never
//   wait for one another, so jobs that wait on each other cannot deadlock
//   the cache (a fixed-size pool can).
// - Each idle worker sleeps on a futex word of its own; the submitter
//   takes it out of the idle list, stores the job and wakes exactly that
//   worker, all under the cache's mutex (so the worker, which only leaves
//   under that mutex, cannot be gone when it is woken).
// - A worker idle for `idle_timeout` (10 s) ends. A hand-off that races
//   the timeout is decided under the mutex: a worker that is no longer in
//   the idle list has a job coming, and takes it.
// - The cache is never destroyed (it is leaked on purpose): at exit,
//   static destructors must not race workers that still run a job.
#pragma once

#include <weft/detail/offload.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>

namespace weft::detail {

class thread_cache {
 public:
  static thread_cache& instance() noexcept;

  /// See start_in_worker. @throws std::system_error.
  void start(thread_job& job);

  std::size_t threads() const noexcept { return threads_.load(std::memory_order_relaxed); }
  std::size_t idle() const noexcept { return idle_count_.load(std::memory_order_relaxed); }
  void set_idle_timeout(std::chrono::nanoseconds t) noexcept { idle_timeout_ns_.store(t.count()); }
  std::chrono::nanoseconds idle_timeout() const noexcept { return std::chrono::nanoseconds(idle_timeout_ns_.load()); }

 private:
  struct worker {
    std::atomic<std::uint32_t> word{0};  // 1: `job` is set
    thread_job* job = nullptr;
    worker* prev = nullptr;  // the idle list, most recently idle at `idle_`
    worker* next = nullptr;
  };
  thread_cache() = default;
  void worker_main(thread_job* first) noexcept;
  thread_job* wait_for_job(worker& w) noexcept;
  void unlink_idle(worker& w) noexcept;

  std::mutex mutex_;
  worker* idle_ = nullptr;
  std::atomic<std::size_t> threads_{0};
  std::atomic<std::size_t> idle_count_{0};
  std::atomic<long long> idle_timeout_ns_{10'000'000'000};
};

}  // namespace weft::detail

// The process-wide cache of worker threads behind run_in_thread: elastic
// like trio's _thread_cache (a job never waits for a worker stuck in a
// long call), but with a short queue, so that many short jobs share a few
// busy threads instead of waking a thread each.
//
// - A job that starts while fewer than `concurrency` workers are *running*
//   goes to the most recently idle worker (LIFO: its stack and caches are
//   warm), or to a new thread when none is idle. A worker counts as running
//   while its current job started less than `blocking_after` (500 µs) ago:
//   one that has been in the same job longer is taken to be blocked (in a
//   system call, a lock, a wait for another job) and holds no place.
// - Otherwise the job joins a FIFO queue. A worker that finishes a job
//   takes the next queued one without sleeping; that is the throughput
//   path (one mutex round per job, no thread wake-up while the queue has
//   work).
// - A monitor thread, started at the first queued job, watches the queue
//   while it is not empty: when running workers are fewer than
//   `concurrency`, because some turned out to be blocked, it hands queued
//   jobs to idle or new workers. So jobs that wait for one another cannot
//   deadlock the cache (a fixed-size pool can); a queued job waits at
//   most about `blocking_after` longer than it would with a thread of its
//   own, and threads are added at most `concurrency` per `blocking_after`.
// - Each worker sleeps on a futex word of its own; a hand-off moves it
//   from the idle list to the busy list, stores the job and wakes exactly
//   that worker, under the cache's mutex (so the worker, which only leaves
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
#include <cstdint>
#include <exception>
#include <mutex>

namespace weft::detail {

class thread_cache {
 public:
  static thread_cache& instance() noexcept;

  /// See start_in_worker. @throws std::system_error, std::bad_alloc.
  void start(thread_job& job);

  std::size_t threads() const noexcept { return threads_.load(std::memory_order_relaxed); }
  std::size_t idle() const noexcept { return idle_count_.load(std::memory_order_relaxed); }
  std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }
  std::size_t concurrency() const noexcept { return concurrency_; }
  void set_idle_timeout(std::chrono::nanoseconds t) noexcept { idle_timeout_ns_.store(t.count()); }
  std::chrono::nanoseconds idle_timeout() const noexcept { return std::chrono::nanoseconds(idle_timeout_ns_.load()); }
  /// Also wakes the monitor, which may be waiting for the old value.
  void set_blocking_after(std::chrono::nanoseconds t) noexcept;
  std::chrono::nanoseconds blocking_after() const noexcept {
    return std::chrono::nanoseconds(blocking_after_ns_.load());
  }

 private:
  // A worker's record, on the heap: the thread that starts a worker links
  // it into the busy list before the thread exists.
  struct worker {
    std::atomic<std::uint32_t> word{0};  // 1: `job` is set (for an idle worker)
    thread_job* job = nullptr;
    worker* prev = nullptr;  // the idle list (most recently idle first) or the busy list
    worker* next = nullptr;
    // When its current job started (steady clock, ns), or `just_handed`.
    std::atomic<std::int64_t> started{0};
  };
  static constexpr std::int64_t just_handed = INT64_MAX;

  thread_cache();
  void worker_main(worker* self) noexcept;
  // The worker's next job: a queued one, or one handed to it after it
  // slept (then `handed` is set), or none once it idled out.
  thread_job* next_job(worker& w, bool& handed) noexcept;
  void monitor_main() noexcept;
  // All under mutex_:
  static void link(worker*& list, worker& w) noexcept;
  static void unlink(worker*& list, worker& w) noexcept;
  // Busy workers whose job started less than `blocking_after` ago (up to
  // `concurrency`).
  std::size_t running(std::int64_t now) const noexcept;
  worker* hand_to_idle(thread_job& job) noexcept;
  worker* new_busy_worker(thread_job& job);
  void push_queue(thread_job& job) noexcept;
  void push_queue_front(thread_job& job) noexcept;
  thread_job* pop_queue() noexcept;
  bool ensure_monitor() noexcept;
  void wake_monitor() noexcept;
  // Moves queued jobs to idle or new workers while fewer than
  // `concurrency` run; unlocks around starting a thread. A job that cannot
  // get a thread goes back to the front of the queue.
  void dispatch(std::unique_lock<std::mutex>& lock, std::size_t most) noexcept;
  // Dispatches one queued job unless a worker is waking up already.
  void wake_another(std::unique_lock<std::mutex>& lock) noexcept;
  // Not under mutex_: starts the worker's thread, or undoes
  // new_busy_worker and returns the error.
  std::exception_ptr spawn(worker* w) noexcept;
  // Reports the first of a run of failures to start a thread for a queued
  // job (not under mutex_: the reporter is the user's).
  void note_spawn_outcome(const std::exception_ptr& error) noexcept;

  std::mutex mutex_;
  worker* idle_ = nullptr;
  worker* busy_ = nullptr;
  std::size_t busy_count_ = 0;
  thread_job* queue_head_ = nullptr;
  thread_job* queue_tail_ = nullptr;
  // The monitor: not started yet, watching a queue (the queue is not empty
  // only while it watches), or parked on monitor_word_.
  enum class monitor_state : std::uint8_t { none, watching, parked } monitor_ = monitor_state::none;
  bool queued_since_look_ = false;  // a job was queued since the monitor last looked
  std::atomic<std::uint32_t> monitor_word_{0};  // bumped to wake the monitor
  const std::size_t concurrency_;
  std::atomic<std::size_t> threads_{0};
  std::atomic<std::size_t> idle_count_{0};
  std::atomic<std::size_t> queued_{0};
  // Workers handed a job that have not started it yet (waking up, or a
  // thread being created).
  std::atomic<std::size_t> waking_{0};
  std::atomic<bool> spawn_failing_{false};
  std::atomic<long long> idle_timeout_ns_{10'000'000'000};
  std::atomic<long long> blocking_after_ns_{500'000};
};

}  // namespace weft::detail

// The worker threads of run_in_thread; see thread_cache.hpp.

#include "threads/thread_cache.hpp"

#include "threads/futex.hpp"
#include "threads/race_point.hpp"

#include <weft/report_error.hpp>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <exception>
#include <thread>

namespace weft::detail {

std::atomic<race_point_hook> g_race_point_hook{nullptr};

namespace {

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The CPUs this process may run on, at least two: with one, a job that
// spins waiting for another would hold the only place.
std::size_t usable_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  int n = 0;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return static_cast<std::size_t>(std::max(n, 2));
}

}  // namespace

thread_cache::thread_cache() : concurrency_(usable_cpus()) {}

thread_cache& thread_cache::instance() noexcept {
  static thread_cache* cache = new thread_cache;  // never destroyed: see thread_cache.hpp
  return *cache;
}

void thread_cache::set_blocking_after(std::chrono::nanoseconds t) noexcept {
  blocking_after_ns_.store(t.count());
  monitor_word_.fetch_add(1, std::memory_order_release);
  futex_wake(monitor_word_, 1);
}

void start_in_worker(thread_job& job) { thread_cache::instance().start(job); }

void thread_cache::link(worker*& list, worker& w) noexcept {
  w.prev = nullptr;
  w.next = list;
  if (list != nullptr) list->prev = &w;
  list = &w;
}

void thread_cache::unlink(worker*& list, worker& w) noexcept {
  if (w.prev != nullptr)
    w.prev->next = w.next;
  else
    list = w.next;
  if (w.next != nullptr) w.next->prev = w.prev;
  w.prev = w.next = nullptr;
}

std::size_t thread_cache::running(std::int64_t now) const noexcept {
  const std::int64_t limit = blocking_after_ns_.load(std::memory_order_relaxed);
  std::size_t n = 0;
  for (const worker* w = busy_; w != nullptr && n < concurrency_; w = w->next) {
    const std::int64_t started = w->started.load(std::memory_order_relaxed);
    if (started == just_handed || now - started < limit) ++n;
  }
  return n;
}

thread_cache::worker* thread_cache::hand_to_idle(thread_job& job) noexcept {
  worker* w = idle_;
  if (w == nullptr) return nullptr;
  unlink(idle_, *w);
  idle_count_.fetch_sub(1, std::memory_order_relaxed);
  link(busy_, *w);
  ++busy_count_;
  w->started.store(just_handed, std::memory_order_relaxed);
  waking_.fetch_add(1, std::memory_order_relaxed);
  w->job = &job;
  w->word.store(1, std::memory_order_release);
  futex_wake(w->word, 1);
  return w;
}

thread_cache::worker* thread_cache::new_busy_worker(thread_job& job) {
  auto* w = new worker;
  w->job = &job;
  w->started.store(just_handed, std::memory_order_relaxed);
  waking_.fetch_add(1, std::memory_order_relaxed);
  link(busy_, *w);
  ++busy_count_;
  threads_.fetch_add(1, std::memory_order_relaxed);
  return w;
}

std::exception_ptr thread_cache::spawn(worker* w) noexcept {
  try {
    std::thread([this, w] { worker_main(w); }).detach();
    return nullptr;
  } catch (const std::exception&) {  // std::system_error or std::bad_alloc: handed to the caller
    std::exception_ptr error = std::current_exception();
    std::lock_guard<std::mutex> lock(mutex_);
    unlink(busy_, *w);
    --busy_count_;
    waking_.fetch_sub(1, std::memory_order_relaxed);
    threads_.fetch_sub(1, std::memory_order_relaxed);
    delete w;
    return error;
  }
}

void thread_cache::push_queue(thread_job& job) noexcept {
  job.next_queued = nullptr;
  if (queue_tail_ != nullptr)
    queue_tail_->next_queued = &job;
  else
    queue_head_ = &job;
  queue_tail_ = &job;
  queued_.fetch_add(1, std::memory_order_relaxed);
  queued_since_look_ = true;
}

void thread_cache::push_queue_front(thread_job& job) noexcept {
  job.next_queued = queue_head_;
  queue_head_ = &job;
  if (queue_tail_ == nullptr) queue_tail_ = &job;
  queued_.fetch_add(1, std::memory_order_relaxed);
}

thread_job* thread_cache::pop_queue() noexcept {
  thread_job* job = queue_head_;
  if (job == nullptr) return nullptr;
  queue_head_ = job->next_queued;
  if (queue_head_ == nullptr) queue_tail_ = nullptr;
  job->next_queued = nullptr;
  queued_.fetch_sub(1, std::memory_order_relaxed);
  return job;
}

bool thread_cache::ensure_monitor() noexcept {
  if (monitor_ != monitor_state::none) return true;
  try {
    // Under the mutex: this happens once per process, and the monitor's
    // first act is to take the mutex.
    std::thread([this] { monitor_main(); }).detach();
  } catch (const std::exception&) {  // std::system_error or std::bad_alloc
    return false;  // then jobs go to threads directly, as if none ran
  }
  monitor_ = monitor_state::watching;
  return true;
}

void thread_cache::wake_monitor() noexcept {
  if (monitor_ != monitor_state::parked) return;
  monitor_ = monitor_state::watching;
  monitor_word_.fetch_add(1, std::memory_order_release);
  futex_wake(monitor_word_, 1);
}

void thread_cache::dispatch(std::unique_lock<std::mutex>& lock, std::size_t most) noexcept {
  const std::int64_t now = now_ns();
  for (; most > 0 && queue_head_ != nullptr && (busy_count_ < concurrency_ || running(now) < concurrency_); --most) {
    thread_job& job = *pop_queue();
    if (hand_to_idle(job) != nullptr) continue;
    worker* w = nullptr;
    std::exception_ptr error;
    try {
      w = new_busy_worker(job);
    } catch (const std::bad_alloc&) {
      error = std::current_exception();
    }
    lock.unlock();
    if (w != nullptr) error = spawn(w);
    note_spawn_outcome(error);
    lock.lock();
    if (error) {
      push_queue_front(job);  // it waits for a worker, or the monitor's next look
      return;
    }
  }
}

void thread_cache::note_spawn_outcome(const std::exception_ptr& error) noexcept {
  // Once per run of failures: the monitor retries every blocking_after.
  if (!error) {
    spawn_failing_.store(false, std::memory_order_relaxed);
  } else if (!spawn_failing_.exchange(true, std::memory_order_relaxed)) {
    report_error(error, "weft thread cache: no thread could be started for a queued job; it waits for a worker");
  }
}

void thread_cache::wake_another(std::unique_lock<std::mutex>& lock) noexcept {
  if (queue_head_ != nullptr && waking_.load(std::memory_order_relaxed) == 0) dispatch(lock, 1);
}

void thread_cache::start(thread_job& job) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (queue_head_ != nullptr) {
    // The monitor watches a queue that is not empty: join it.
    push_queue(job);
    return;
  }
  // Queue the job when enough workers run, or when a worker is waking up
  // already: that one wakes another if the queue still holds work once it
  // runs (wake_another), so a burst of jobs costs the submitting thread
  // one wake-up, not one per job.
  if ((waking_.load(std::memory_order_relaxed) > 0 ||
       (busy_count_ >= concurrency_ && running(now_ns()) >= concurrency_)) &&
      ensure_monitor()) {
    push_queue(job);
    wake_monitor();
    return;
  }
  if (hand_to_idle(job) != nullptr) return;
  worker* w = new_busy_worker(job);
  lock.unlock();
  if (std::exception_ptr error = spawn(w)) std::rethrow_exception(error);
}

void thread_cache::worker_main(worker* self) noexcept {
  ::pthread_setname_np(::pthread_self(), "weft-worker");
  thread_job* job = self->job;
  bool handed = true;  // by start() or the monitor: this worker was waking up
  while (job != nullptr) {
    if (handed) {
      self->started.store(now_ns(), std::memory_order_relaxed);  // next_job sets it for a queued job
      waking_.fetch_sub(1, std::memory_order_seq_cst);
      if (queued_.load(std::memory_order_seq_cst) != 0) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_another(lock);
      }
    }
    job->run(job);
    job = next_job(*self, handed);
  }
  delete self;  // no longer in any list
}

thread_job* thread_cache::next_job(worker& w, bool& handed) noexcept {
  using clock = std::chrono::steady_clock;
  handed = false;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (thread_job* job = pop_queue()) {
      w.started.store(now_ns(), std::memory_order_relaxed);
      // Here only an idle worker is woken (no thread started, no scan of
      // the busy list while none is idle): the monitor starts threads for
      // a queue that waits.
      if (idle_ != nullptr) wake_another(lock);
      return w.job = job;
    }
    unlink(busy_, w);
    --busy_count_;
    w.job = nullptr;
    w.word.store(0, std::memory_order_relaxed);
    link(idle_, w);
    idle_count_.fetch_add(1, std::memory_order_relaxed);
  }
  const clock::time_point deadline = clock::now() + idle_timeout();
  handed = true;
  for (;;) {
    if (w.word.load(std::memory_order_acquire) != 0) return w.job;
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
    if (left.count() <= 0) {
      race_point("thread_cache: an idle worker timed out");
      std::lock_guard<std::mutex> lock(mutex_);
      if (w.word.load(std::memory_order_relaxed) != 0) return w.job;  // handed a job while timing out
      unlink(idle_, w);
      idle_count_.fetch_sub(1, std::memory_order_relaxed);
      threads_.fetch_sub(1, std::memory_order_relaxed);
      handed = false;
      return nullptr;
    }
    futex_wait(w.word, 0, left);
  }
}

void thread_cache::monitor_main() noexcept {
  ::pthread_setname_np(::pthread_self(), "weft-monitor");
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (queue_head_ == nullptr && !queued_since_look_) {
      monitor_ = monitor_state::parked;
      const std::uint32_t seen = monitor_word_.load(std::memory_order_relaxed);
      lock.unlock();
      futex_wait(monitor_word_, seen);
      lock.lock();
      continue;
    }
    // Look every `blocking_after` while jobs are being queued: parking as
    // soon as the queue is empty would have every burst of jobs wake the
    // monitor.
    monitor_ = monitor_state::watching;
    queued_since_look_ = false;
    race_point("thread_cache: the monitor looks at the queue");
    dispatch(lock, SIZE_MAX);
    const std::uint32_t seen = monitor_word_.load(std::memory_order_relaxed);
    lock.unlock();
    futex_wait(monitor_word_, seen, blocking_after());
    lock.lock();
  }
}

}  // namespace weft::detail

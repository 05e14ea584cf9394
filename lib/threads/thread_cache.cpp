// The worker threads of run_in_thread; see thread_cache.hpp.

#include "threads/thread_cache.hpp"

#include "threads/futex.hpp"
#include "threads/race_point.hpp"

#include <pthread.h>

#include <thread>

namespace weft::detail {

std::atomic<race_point_hook> g_race_point_hook{nullptr};

thread_cache& thread_cache::instance() noexcept {
  static thread_cache* cache = new thread_cache;  // never destroyed: see thread_cache.hpp
  return *cache;
}

void start_in_worker(thread_job& job) { thread_cache::instance().start(job); }

void thread_cache::unlink_idle(worker& w) noexcept {
  if (w.prev != nullptr)
    w.prev->next = w.next;
  else
    idle_ = w.next;
  if (w.next != nullptr) w.next->prev = w.prev;
  w.prev = w.next = nullptr;
  idle_count_.fetch_sub(1, std::memory_order_relaxed);
}

void thread_cache::start(thread_job& job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (worker* w = idle_) {
      unlink_idle(*w);
      w->job = &job;
      w->word.store(1, std::memory_order_release);
      futex_wake(w->word, 1);
      return;
    }
    threads_.fetch_add(1, std::memory_order_relaxed);
  }
  try {
    std::thread([this, &job] { worker_main(&job); }).detach();
  } catch (...) {
    threads_.fetch_sub(1, std::memory_order_relaxed);
    throw;
  }
}

void thread_cache::worker_main(thread_job* job) noexcept {
  ::pthread_setname_np(::pthread_self(), "weft-worker");
  worker self;
  while (job != nullptr) {
    job->run(job);
    job = wait_for_job(self);
  }
}

thread_job* thread_cache::wait_for_job(worker& w) noexcept {
  using clock = std::chrono::steady_clock;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    w.job = nullptr;
    w.word.store(0, std::memory_order_relaxed);
    w.prev = nullptr;
    w.next = idle_;
    if (idle_ != nullptr) idle_->prev = &w;
    idle_ = &w;
    idle_count_.fetch_add(1, std::memory_order_relaxed);
  }
  const clock::time_point deadline = clock::now() + idle_timeout();
  for (;;) {
    if (w.word.load(std::memory_order_acquire) != 0) return w.job;
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
    if (left.count() <= 0) {
      race_point("thread_cache: an idle worker timed out");
      std::lock_guard<std::mutex> lock(mutex_);
      if (w.word.load(std::memory_order_relaxed) != 0) return w.job;  // handed a job while timing out
      unlink_idle(w);
      threads_.fetch_sub(1, std::memory_order_relaxed);
      return nullptr;
    }
    futex_wait(w.word, 0, left);
  }
}

}  // namespace weft::detail

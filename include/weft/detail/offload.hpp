// Internal: what run_in_thread hands to a worker thread, and how the worker
// hands the outcome back. See lib/threads/run_in_thread.cpp.
#pragma once

#include <weft/detail/core.hpp>
#include <weft/lowlevel/completion.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <stop_token>

namespace weft::detail {

class inbox;
struct limiter_state;

/// Work for a worker of the process-wide thread cache. `run` is called once,
/// on the worker, and must not throw.
struct thread_job {
  void (*run)(thread_job* self) noexcept = nullptr;
  thread_job* next_queued = nullptr;  // the thread cache's queue
};

/// Hands `job` to an idle worker (the most recently idle one) or a new
/// thread, or queues it for the next worker that finishes a job when
/// enough workers are running already (see lib/threads/thread_cache.hpp).
/// Thread-safe. @throws std::system_error or std::bad_alloc if the job can
/// neither be queued nor given a thread (then it will not run).
void start_in_worker(thread_job& job);

/// The part of a run_in_thread job that does not depend on its function.
///
/// `status` decides, once, who finishes the job: the worker's exchange to
/// `finished` and the waiting task's compare-exchange to `abandoned` (in
/// its abort callback) race, and exactly one wins. If the worker wins it
/// wakes the task (`done->complete()`), after which it touches nothing of
/// the job but its own reference. If the task wins, it has left: the
/// worker drops the result, reports the exception, and gives the limiter's
/// token back through the runtime's inbox (or not at all if the runtime
/// has ended).
struct offload_base : thread_job {
  enum : std::uint8_t { running, finished, abandoned };
  std::atomic<std::uint8_t> status{running};
  lowlevel::completion* done = nullptr;  // the task's; valid while status is `running`
  std::exception_ptr error;
  std::stop_source* stop = nullptr;  // when the function takes a std::stop_token
  // A job the task may abandon lives on the heap, referenced by the task
  // and by the worker; one the task always waits for lives on its stack.
  bool on_heap = false;
  std::atomic<std::uint32_t> refs{2};
  void (*destroy)(offload_base* self) noexcept = nullptr;
  // Set by the task when it abandons the job, before it publishes that.
  inbox* home = nullptr;
  limiter_state* limiter = nullptr;
  struct owned_call : remote_call {
    offload_base* owner = nullptr;
  } give_back;

  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(this);
  }
};

/// The worker's last step, after the function has run (or thrown).
void finish_offload(offload_base& job) noexcept;
/// The task's wait for a job it does not abandon: a cancellation requests
/// a stop and is delivered at the next checkpoint after the job finished.
void wait_offload(offload_base& job, lowlevel::completion& done) noexcept;
/// The task's wait for a job it abandons when cancelled: returns once the
/// job finished, or throws weft::cancelled after setting `abandoned` (the
/// limiter's token then went to the job, which the worker finishes alone).
void wait_offload_or_abandon(offload_base& job, lowlevel::completion& done, limiter_state& limiter,
                             bool& abandoned);
/// Rethrows the job's exception, if any (the same object).
inline void rethrow_offload_error(const offload_base& job) {
  if (job.error) std::rethrow_exception(job.error);
}

/// run_in_thread job records alive in the process (testing::live_thread_jobs).
std::size_t offload_jobs_alive() noexcept;
void count_offload_job(int delta) noexcept;

}  // namespace weft::detail

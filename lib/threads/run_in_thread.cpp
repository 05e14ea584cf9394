// run_in_thread: the waiting task's side and the worker's last step.
//
// The job and the task agree through one atomic status (see
// offload_base): the worker's exchange to `finished` and the task's
// compare-exchange to `abandoned` race, and exactly one wins, so the task
// is woken exactly once (or not at all, if it left), and a job the task
// abandoned is finished by the worker alone.

#include "core/runtime.hpp"
#include "threads/race_point.hpp"

#include <weft/detail/offload.hpp>
#include <weft/errors.hpp>
#include <weft/report_error.hpp>
#include <weft/threads/capacity_limiter.hpp>
#include <weft/threads/errors.hpp>

#include <atomic>

namespace weft::detail {

namespace {

std::atomic<std::size_t> g_live_jobs{0};

// Runs on the abandoning runtime's thread (open) or, once that runtime has
// ended, wherever the inbox finds out (then the limiter is nobody's).
void give_back_token(remote_call* c, bool open) noexcept {
  offload_base* job = static_cast<offload_base::owned_call*>(c)->owner;
  if (open) job->limiter->give_back();
  job->limiter->release();
  job->release();  // the worker's reference
}

}  // namespace

std::size_t offload_jobs_alive() noexcept { return g_live_jobs.load(std::memory_order_relaxed); }
void count_offload_job(int delta) noexcept {
  g_live_jobs.fetch_add(static_cast<std::size_t>(delta), std::memory_order_relaxed);
}

void finish_offload(offload_base& job) noexcept {
  if (job.error && is_cancelled(job.error)) {
    // weft::cancelled never crosses a thread (a job has no weft
    // cancellation of its own: this one was caught elsewhere and rethrown).
    try {
      job.error = std::make_exception_ptr(
          future_cancelled_error("a run_in_thread job ended by throwing weft::cancelled, which does not cross threads"));
    } catch (const std::bad_alloc&) {
      job.error = std::make_exception_ptr(std::bad_alloc());
    }
  }
  const bool on_heap = job.on_heap;          // a job on the task's stack may be gone
  lowlevel::completion* done = job.done;     // once the task has been woken
  race_point("run_in_thread: the job ended, its task not yet told");
  const std::uint8_t before = job.status.exchange(offload_base::finished, std::memory_order_acq_rel);
  if (before == offload_base::running) {
    // The task holds its reference until it has been woken and has read the
    // outcome, so this release is never the last; done first, the job is
    // gone as soon as the task returns.
    if (on_heap) job.release();
    done->complete();
    return;
  }
  // Abandoned: the task has left with its cancellation; the job is ours.
  if (job.error) report_error(job.error, "the exception of a run_in_thread job whose task was cancelled and left it");
  inbox* home = job.home;
  job.give_back.owner = &job;
  job.give_back.fn = &give_back_token;
  home->submit(job.give_back);  // may run (and free the job) at once
  home->release();
}

void wait_offload(offload_base& job, lowlevel::completion& done) noexcept {
  // A cancellation cannot withdraw the job: it asks it to stop, if it can
  // hear that, and comes at the task's next checkpoint.
  done.wait(
      [&job]() noexcept {
        if (job.stop != nullptr) job.stop->request_stop();
        return abort_result::failed;
      },
      "run_in_thread");
}

void wait_offload_or_abandon(offload_base& job, lowlevel::completion& done, limiter_state& limiter,
                             bool& abandoned) {
  done.wait(
      [&]() noexcept {
        if (job.stop != nullptr) job.stop->request_stop();
        // What the worker needs to finish alone, set before the status
        // tells it so.
        job.home = &t_runtime->remote_inbox();
        job.home->add_ref();
        job.limiter = &limiter;
        limiter.add_ref();
        std::uint8_t expected = offload_base::running;
        if (job.status.compare_exchange_strong(expected, offload_base::abandoned, std::memory_order_acq_rel)) {
          abandoned = true;
          return abort_result::succeeded;  // park throws the cancellation
        }
        // The worker finished first: its wake is on the way.
        job.home->release();
        job.home = nullptr;
        job.limiter = nullptr;
        limiter.release();
        return abort_result::failed;
      },
      "run_in_thread (abandoned on cancellation)");
}

}  // namespace weft::detail

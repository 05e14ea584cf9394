// Portal workers (with_portal_run.hpp): system tasks of the runtime that run
// functions for coroutines without a fiber. Idle ones park and are reused,
// so a call costs a wake-up and a park rather than a fiber's creation and
// teardown.

#include <weft/cancel_scope.hpp>
#include <weft/greenback/with_portal_run.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/lowlevel/system_task.hpp>

#include <algorithm>
#include <utility>
#include <vector>

namespace greenback::detail {

namespace {

constexpr std::size_t max_idle_workers = 16;

struct worker {
  weft::lowlevel::task_ref task;
  portal_job* job = nullptr;
};

// One runtime per thread. Room for every idle worker is reserved up front:
// parking a worker and withdrawing it never allocate.
struct worker_pool {
  std::vector<worker*> idle;
  worker_pool() { idle.reserve(max_idle_workers); }
};

thread_local worker_pool t_pool;

void run_job(portal_job* job) {
  weft::cancel_scope scope;
  job->call(job, scope);
}

void worker_main(portal_job* first) {
  worker self;
  self.task = weft::lowlevel::current_task();
  run_job(first);
  while (t_pool.idle.size() < max_idle_workers) {
    t_pool.idle.push_back(&self);
    // Parked until submit_portal_job hands us a job; cancelled (and gone)
    // when the runtime shuts down.
    auto abort = [&]() noexcept {
      t_pool.idle.erase(std::find(t_pool.idle.begin(), t_pool.idle.end(), &self));
      return weft::lowlevel::abort_result::succeeded;
    };
    weft::lowlevel::park(abort);
    run_job(std::exchange(self.job, nullptr));
  }
}

}  // namespace

void submit_portal_job(portal_job* job) {
  if (!t_pool.idle.empty()) {
    worker* w = t_pool.idle.back();  // the most recently parked: its stack is warm
    t_pool.idle.pop_back();
    w->job = job;
    weft::lowlevel::reschedule(w->task);
    return;
  }
  try {
    weft::lowlevel::spawn_system_task([job] { worker_main(job); });
  } catch (...) {
    // No runtime, or no memory: the job never runs; complete nothing, free it.
    delete job;
    throw;
  }
}

}  // namespace greenback::detail

// greenback portals.

#include <weft/checkpoint.hpp>
#include <weft/greenback/greenback.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/task.hpp>

#include <boost/asio/detail/call_stack.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/detail/scheduler_thread_info.hpp>
#include <boost/asio/detail/thread_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/version.hpp>

#include <exception>
#include <string>
#include <utility>

namespace greenback {

no_portal_error::no_portal_error(const char* where)
    : std::logic_error(std::string(where) +
                       ": no greenback portal here (this code is not running on a weft task: an Asio handler, a "
                       "coroutine outside any fiber, or a thread without a weft runtime); call it from a task, or "
                       "reach one first with co_await greenback::with_portal_run_sync(fn) / "
                       "greenback::with_portal_run(async_fn) (greenback::ensure_portal() only works in a task)") {}

void ensure_portal() {
  if (!has_portal()) throw no_portal_error("greenback::ensure_portal");
  weft::coro_yield();
}

namespace detail {

void throw_no_portal(const char* where) { throw no_portal_error(where); }

namespace {
// No task is current while this lives: code run meanwhile has no portal.
struct task_hidden {
  weft::detail::task_base* task = std::exchange(weft::detail::t_current_task, nullptr);
  task_hidden() = default;
  task_hidden(const task_hidden&) = delete;
  task_hidden& operator=(const task_hidden&) = delete;
  ~task_hidden() { weft::detail::t_current_task = task; }
};
}  // namespace

// Relies on the io_context internals of Boost 1.81 (the version weft is
// built against, see CMakeLists.txt): io_context::run pushes the scheduler
// and a thread_info onto the thread's call stack before it runs a handler,
// and moves the handler's privately queued operations to the scheduler's
// queue after it. This does the same around `start`.
void start_as_handler(boost::asio::io_context& io, weft::detail::function_ref<void()> start) {
  task_hidden hidden;
#if BOOST_VERSION / 100 != 1081
  // Other Boost versions: not checked against their internals; co_spawn
  // posts the first step (slower, same results).
  (void)io;
  start();
#else
  namespace ad = boost::asio::detail;
  using call_stack = ad::call_stack<ad::thread_context, ad::thread_info_base>;
  ad::scheduler& sched = boost::asio::use_service<ad::scheduler>(io);  // io_context's own, no lookup
  if (call_stack::contains(&sched) != nullptr) {  // already in a handler of io
    start();
    return;
  }
  ad::scheduler_thread_info info;
  info.private_outstanding_work = 0;
  struct flush {
    ad::scheduler& sched;
    ad::scheduler_thread_info& info;
    ~flush() {
      for (; info.private_outstanding_work > 0; --info.private_outstanding_work) sched.work_started();
      sched.post_deferred_completions(info.private_op_queue);
    }
  } on_exit{sched, info};
  {
    call_stack::context in_handler(&sched, info);
    start();
  }
  // A handler run inline that threw: fatal, as from io_context::run.
  [&info]() noexcept { info.rethrow_pending_exception(); }();
#endif
}

namespace {

// Portal workers: system tasks of the runtime that run functions for
// coroutines without a fiber. Idle ones park here and are reused, so a call
// costs a wake-up and a park rather than a fiber's creation and teardown.
struct worker : weft::detail::list_hook<> {
  weft::lowlevel::task_ref task;
  portal_job* job = nullptr;
};

struct worker_pool {
  weft::detail::intrusive_list<worker> idle;
  std::size_t idle_count = 0;
};

thread_local worker_pool t_pool;  // one runtime per thread
constexpr std::size_t max_idle_workers = 16;

void run_job(portal_job* job) {
  weft::cancel_scope scope;
  job->run(job, scope);
}

void worker_main(portal_job* first) {
  worker self;
  self.task = weft::lowlevel::current_task();
  run_job(first);
  while (t_pool.idle_count < max_idle_workers) {
    t_pool.idle.push_back(self);
    ++t_pool.idle_count;
    // Parked until submit_portal_job hands us a job; cancelled (and gone)
    // when the runtime shuts down.
    auto abort = [&]() noexcept {
      weft::detail::intrusive_list<worker>::erase(self);
      --t_pool.idle_count;
      return weft::detail::abort_result::succeeded;
    };
    weft::lowlevel::park(abort);
    run_job(std::exchange(self.job, nullptr));
  }
}

}  // namespace

void submit_portal_job(portal_job* job) {
  if (!t_pool.idle.empty()) {
    worker& w = t_pool.idle.pop_front();
    --t_pool.idle_count;
    w.job = job;
    weft::lowlevel::reschedule(w.task);
    return;
  }
  try {
    weft::detail::spawn_system_task(weft::detail::make_task([job] { worker_main(job); }));
  } catch (...) {
    // No runtime, or no memory: the job never runs; complete nothing, free it.
    delete job;
    throw;
  }
}

}  // namespace detail

}  // namespace greenback

// lowlevel::run_as_asio_handler: running code as if inside one of an
// io_context's handlers (see lowlevel/asio.hpp).

#include "core/boost_pin.hpp"

#include <weft/detail/core.hpp>
#include <weft/lowlevel/asio.hpp>

#include <boost/asio/io_context.hpp>

#if defined(WEFT_PORTABLE_ASIO)
#include <boost/asio/post.hpp>
#else
#include <boost/asio/detail/call_stack.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/detail/scheduler_thread_info.hpp>
#include <boost/asio/detail/thread_context.hpp>
#endif

#include <exception>
#include <utility>

namespace weft::lowlevel {

namespace {
// No task is current while this lives: code run meanwhile has no portal.
struct task_hidden {
  detail::task_base* task = std::exchange(detail::t_current_task, nullptr);
  task_hidden() = default;
  task_hidden(const task_hidden&) = delete;
  task_hidden& operator=(const task_hidden&) = delete;
  ~task_hidden() { detail::t_current_task = task; }
};
}  // namespace

#if defined(WEFT_PORTABLE_ASIO)

// Public API only: fn runs inside a real handler of io, posted and then run
// from here at once, with whatever handlers were ready before it (they
// would have run at the loop's next pass; no task runs in between).
void run_as_asio_handler(boost::asio::io_context& io, function_ref<void()> fn) {
  task_hidden hidden;
  if (io.get_executor().running_in_this_thread()) {  // already in a handler of io
    fn();
    return;
  }
  bool ran = false;
  std::exception_ptr error;
  boost::asio::post(io, [&] {
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
    ran = true;
  });
  while (!ran) {
    if (io.poll_one() == 0 && io.stopped()) io.restart();  // io_context().stop() called meanwhile
  }
  if (error) std::rethrow_exception(error);
}

#else

// io_context::run pushes the scheduler and a thread_info onto the thread's
// call stack before it runs a handler, and moves the handler's privately
// queued operations to the scheduler's queue after it. This does the same
// around fn.
void run_as_asio_handler(boost::asio::io_context& io, function_ref<void()> fn) {
  task_hidden hidden;
  namespace ad = boost::asio::detail;
  using call_stack = ad::call_stack<ad::thread_context, ad::thread_info_base>;
  ad::scheduler& sched = boost::asio::use_service<ad::scheduler>(io);  // io_context's own, no lookup
  if (call_stack::contains(&sched) != nullptr) {  // already in a handler of io
    fn();
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
    fn();
  }
  // A handler run inline that threw: fatal, as from io_context::run.
  [&info]() noexcept { info.rethrow_pending_exception(); }();
}

#endif

}  // namespace weft::lowlevel

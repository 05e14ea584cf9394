// lowlevel::run_as_asio_handler: running code as if inside one of an
// io_context's handlers (see lowlevel/asio.hpp); asio_thread, the runtime
// thread's standing in its io_context (see asio_thread.hpp).

#include "core/asio_thread.hpp"
#include "core/boost_pin.hpp"
#include "core/runtime.hpp"

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

#include <cstddef>
#include <exception>
#include <memory>
#include <utility>

namespace weft::detail {

namespace {
// No task is current while this lives: code run meanwhile has no portal.
struct task_hidden {
  task_base* task = std::exchange(t_current_task, nullptr);
  task_hidden() = default;
  task_hidden(const task_hidden&) = delete;
  task_hidden& operator=(const task_hidden&) = delete;
  ~task_hidden() { t_current_task = task; }
};
}  // namespace

#if defined(WEFT_PORTABLE_ASIO)

namespace {
// Public API only: fn runs inside a real handler of io, posted and then run
// from here at once, with whatever handlers were ready before it (they
// would have run at the loop's next pass; no task runs in between).
void run_as_handler_of(boost::asio::io_context& io, function_ref<void()> fn) {
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
}  // namespace

struct asio_thread::state {};

asio_thread::asio_thread(boost::asio::io_context& io) : io_(io) {}
asio_thread::~asio_thread() = default;
WEFT_HOT std::size_t asio_thread::poll_one() { return io_.poll_one(); }
std::size_t asio_thread::run_rest_of_turn(std::size_t) { return 0; }
std::size_t asio_thread::poll_turn() { return io_.poll(); }
std::size_t asio_thread::run_one() { return io_.run_one(); }
void asio_thread::run_as_handler(function_ref<void()> fn) { run_as_handler_of(io_, fn); }

#else

namespace {

namespace ad = boost::asio::detail;
using call_stack = ad::call_stack<ad::thread_context, ad::thread_info_base>;

// io_context::run pushes the scheduler and a thread_info onto the thread's
// call stack before it runs a handler, and moves the handler's privately
// queued operations to the scheduler's queue after it. This does the same
// around fn, with `info` (holding no queued work between calls).
void run_with(ad::scheduler& sched, ad::scheduler_thread_info& info, function_ref<void()> fn) {
  task_hidden hidden;
  if (call_stack::contains(&sched) != nullptr) {  // already in a handler of io
    fn();
    return;
  }
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

void run_as_handler_of(boost::asio::io_context& io, function_ref<void()> fn) {
  ad::scheduler_thread_info info;
  run_with(boost::asio::use_service<ad::scheduler>(io), info, fn);  // io_context's own scheduler, no lookup
}

// The scheduler's private members that asio_thread uses (an explicit
// instantiation may name them, [temp.spec.general]).
struct do_poll_one_member {
  using type = std::size_t (ad::scheduler::*)(ad::conditionally_enabled_mutex::scoped_lock&,
                                              ad::scheduler_thread_info&, const boost::system::error_code&);
  friend type member_of(do_poll_one_member) noexcept;
};
struct do_run_one_member {
  using type = do_poll_one_member::type;
  friend type member_of(do_run_one_member) noexcept;
};
struct mutex_member {
  using type = ad::conditionally_enabled_mutex ad::scheduler::*;
  friend type member_of(mutex_member) noexcept;
};
struct outstanding_work_member {
  using type = ad::atomic_count ad::scheduler::*;
  friend type member_of(outstanding_work_member) noexcept;
};
struct op_queue_member {
  using type = ad::op_queue<ad::scheduler_operation> ad::scheduler::*;
  friend type member_of(op_queue_member) noexcept;
};
template <class Name, typename Name::type Member>
struct grant {
  friend typename Name::type member_of(Name) noexcept { return Member; }
};
// The marker of the reactor's turn in the queue (of a private type).
struct task_operation_tag {
  friend ad::scheduler_operation* task_operation_of(ad::scheduler& s, task_operation_tag) noexcept;
};
template <auto Member>
struct grant_task_operation {
  friend ad::scheduler_operation* task_operation_of(ad::scheduler& s, task_operation_tag) noexcept {
    return &(s.*Member);
  }
};
template struct grant_task_operation<&ad::scheduler::task_operation_>;
template struct grant<do_poll_one_member, &ad::scheduler::do_poll_one>;
template struct grant<do_run_one_member, &ad::scheduler::do_run_one>;
template struct grant<mutex_member, &ad::scheduler::mutex_>;
template struct grant<outstanding_work_member, &ad::scheduler::outstanding_work_>;
template struct grant<op_queue_member, &ad::scheduler::op_queue_>;

enum class run_mode { poll_one, run_one, queued, turn };

// poll_one() lets handlers queued behind the reactor's marker run before the
// reactor's turn, at most this many in a row: a handler that posts one more
// (a coroutine's post, a portal's completion) then costs no epoll_wait per
// round, where io_context::poll_one() would poll the reactor every time the
// marker comes first. I/O is still polled at least once per this many
// handlers, and whenever nothing else is queued.
constexpr unsigned max_handlers_before_reactor = 64;

struct reactor_rhythm {
  unsigned since_reactor = 0;  // handlers poll_one() ran since the reactor's last turn
  bool just_polled = false;    // the last poll_one() or run_one() began with the reactor's turn
};

// scheduler::poll_one and run_one, and the turns of asio_thread, with `info`
// in place of a new thread_info per call. Not for use inside a handler of
// the scheduler.
WEFT_HOT std::size_t run_handlers(ad::scheduler& sched, ad::scheduler_thread_info& info, run_mode mode, reactor_rhythm& rhythm,
                         std::size_t max = static_cast<std::size_t>(-1)) {
  if (sched.*member_of(outstanding_work_member{}) == 0) {
    sched.stop();
    return 0;
  }
  info.private_outstanding_work = 0;
  call_stack::context in_handler(&sched, info);
  ad::conditionally_enabled_mutex::scoped_lock lock(sched.*member_of(mutex_member{}));
  const boost::system::error_code no_error;
  switch (mode) {
    case run_mode::poll_one: {
      ad::op_queue<ad::scheduler_operation>& queue = sched.*member_of(op_queue_member{});
      ad::scheduler_operation* marker = task_operation_of(sched, task_operation_tag{});
      if (queue.front() == marker && rhythm.since_reactor < max_handlers_before_reactor) {
        queue.pop();  // behind the handlers queued after it (if any)
        queue.push(marker);
      }
      rhythm.just_polled = queue.front() == marker;
      if (rhythm.just_polled)
        rhythm.since_reactor = 0;
      else
        ++rhythm.since_reactor;
      return (sched.*member_of(do_poll_one_member{}))(lock, info, no_error);
    }
    case run_mode::run_one:
      rhythm.since_reactor = 0;
      rhythm.just_polled = true;
      return (sched.*member_of(do_run_one_member{}))(lock, info, no_error);
    case run_mode::queued:
    case run_mode::turn: {
      // Handlers ahead of the reactor's marker; for a turn, then the marker
      // (one epoll_wait) and the handlers it queued, up to the marker again.
      const ad::scheduler_operation* marker = task_operation_of(sched, task_operation_tag{});
      ad::op_queue<ad::scheduler_operation>& queue = sched.*member_of(op_queue_member{});
      std::size_t n = 0;
      bool reactor_ran = mode == run_mode::queued;
      rhythm.just_polled = false;
      if (mode == run_mode::turn) rhythm.since_reactor = 0;
      for (;;) {
        const ad::scheduler_operation* front = queue.front();
        if (front == nullptr || n == max) break;
        if (front == marker) {
          if (reactor_ran) break;
          reactor_ran = true;
        }
        if ((sched.*member_of(do_poll_one_member{}))(lock, info, no_error) == 0) return n;
        ++n;
        lock.lock();
      }
      return n;
    }
  }
  return 0;  // not reached
}

}  // namespace

struct asio_thread::state {
  explicit state(boost::asio::io_context& io) : sched(boost::asio::use_service<ad::scheduler>(io)) {}
  ad::scheduler& sched;
  ad::scheduler_thread_info info;  // its recycled memory is kept between calls
  reactor_rhythm rhythm;
  // Makes `info` the thread's recycler outside handlers too (in tasks, which
  // create coroutine frames and start operations): a call stack entry with
  // a key of its own, so that nothing takes the thread for one inside a
  // handler of io (Asio asks that by the scheduler's key), only Asio's
  // memory recycling (which asks for the top entry's value) sees it.
  ad::thread_context outside_handlers;
  call_stack::context recycler{&outside_handlers, info};
};

// Constructed and destroyed on the runtime's thread, around everything that
// runs on it: `recycler` is the bottom entry of the thread's call stack.
asio_thread::asio_thread(boost::asio::io_context& io) : io_(io), state_(new state(io)) {}

asio_thread::~asio_thread() = default;

// From inside a handler of io (where the runtime's loop never is), Asio's
// own functions handle the nesting.
WEFT_HOT std::size_t asio_thread::poll_one() {
  if (call_stack::contains(&state_->sched) != nullptr) return io_.poll_one();
  return run_handlers(state_->sched, state_->info, run_mode::poll_one, state_->rhythm);
}

std::size_t asio_thread::run_one() {
  if (call_stack::contains(&state_->sched) != nullptr) return io_.run_one();
  return run_handlers(state_->sched, state_->info, run_mode::run_one, state_->rhythm);
}

WEFT_HOT std::size_t asio_thread::run_rest_of_turn(std::size_t max) {
  // Only right after a poll_one() that polled the reactor: otherwise what
  // is queued was there before, and looking costs the scheduler's lock.
  if (!state_->rhythm.just_polled || call_stack::contains(&state_->sched) != nullptr) return 0;
  return run_handlers(state_->sched, state_->info, run_mode::queued, state_->rhythm, max);
}

std::size_t asio_thread::poll_turn() {
  if (call_stack::contains(&state_->sched) != nullptr) return io_.poll();
  return run_handlers(state_->sched, state_->info, run_mode::turn, state_->rhythm);
}

void asio_thread::run_as_handler(function_ref<void()> fn) { run_with(state_->sched, state_->info, fn); }

#endif

}  // namespace weft::detail

namespace weft::lowlevel {

void run_as_asio_handler(boost::asio::io_context& io, function_ref<void()> fn) {
  if (detail::runtime* rt = detail::runtime::current(); rt != nullptr && &rt->io() == &io) {
    rt->asio().run_as_handler(fn);  // with the thread_info the loop runs handlers with
    return;
  }
  detail::run_as_handler_of(io, fn);
}

}  // namespace weft::lowlevel

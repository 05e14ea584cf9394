// The runtime: its lifetime, starting and finishing tasks, and the entry
// points the public headers call. The rest of the core: fiber_algorithm.cpp
// (the Boost.Fiber scheduling algorithm and the switch path), loop.cpp (the
// loop), park.cpp (parking and waking), cancel_tree.cpp (scopes and
// deadlines), join.cpp (waiting for tasks).

#include "core/fiber_glue.hpp"
#include "core/runtime.hpp"
#include "core/group_access.hpp"
#include "core/sanitizer_check.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/lowlevel/completion.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/report_error.hpp>
#include <weft/task_group.hpp>

#include <boost/asio/post.hpp>
#include <boost/fiber/algo/round_robin.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/properties.hpp>

#if defined(__SANITIZE_ADDRESS__)
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>

#include <boost/context/stack_traits.hpp>
#define WEFT_ASAN_FIBERS 1
#endif

#include <cxxabi.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

namespace weft::detail {

constinit thread_local runtime* t_runtime = nullptr;
constinit thread_local task_base* t_current_task = nullptr;

void invariant_failed(const char* expr, const char* file, int line) noexcept {
  std::fprintf(stderr, "weft: internal invariant violated: %s (%s:%d)\n", expr, file, line);
  std::abort();
}

// --- lifetime -----------------------------------------------------------------

std::uint64_t runtime::next_serial() noexcept {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

runtime::runtime(const run_options& options)
    : clock_(options.clock ? options.clock : std::make_shared<real_clock>()),
      work_(io_.get_executor()),
      wake_timer_(io_),
      stacks_(new stack_pool(options)) {
  // Asio makes room for a timer in its timer queue at the timer's first
  // wait: for the wake timer, do that now rather than the first time the
  // loop blocks, which may be in the middle of a conversation (the I/O
  // path allocates nothing once under way). The cancelled wait completes
  // at the first pass.
  try {
    wake_timer_.expires_at(std::chrono::steady_clock::time_point::max());
    wake_timer_.async_wait([](const boost::system::error_code&) {});
    wake_timer_.cancel();
  } catch (const std::exception&) {  // no memory: release what the members opened
    inbox_->close();
    stacks_->release();
    throw;
  }
  if (clock_->runtime_ != nullptr) {
    inbox_->close();
    stacks_->release();
    throw std::logic_error("weft::run: this clock is already in use by another running runtime");
  }
  clock_->runtime_ = this;
  if (dynamic_cast<real_clock*>(clock_.get()) != nullptr) {
    coarse_tick_ = coarse_clock_tick();
    clock_may_autojump_ = false;
  }
  root_scope_.rt = this;
  system_scope_.rt = this;
  system_scope_.role = scope_node::kind::system;
  system_scope_.parent = &root_scope_;
  system_scope_.state = scope_node::phase::active;
  root_scope_.children.push_back(system_scope_);
  last_now_ = clock_->now();
  root_scope_.state = scope_node::phase::active;
  previous_ = t_runtime;
  t_runtime = this;
  main_ctx_ = boost::fibers::context::active();
  // Itanium C++ ABI: __cxa_get_globals() is the thread's __cxa_eh_globals,
  // whose layout eh_state mirrors.
  eh_globals_ = reinterpret_cast<eh_state*>(abi::__cxa_get_globals());
  errno_ = &errno;
  state_current_ = &main_state_;
#if defined(WEFT_ASAN_FIBERS)
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    pthread_attr_getstack(&attr, &addr, &main_stack_size_);
    main_stack_bottom_ = addr;
    pthread_attr_destroy(&attr);
  }
#endif
  auto* algo = new reactor_algorithm(*this);
  algo_ = algo;
  boost::fibers::context::active()->get_scheduler()->set_algo(algo);
  probe_.current = &t_current_task;
  if (options.stall_warning.count() > 0) monitor_ = std::make_unique<stall_monitor>(probe_, options.stall_warning);
}

io_binding::io_binding(void* s, detach_fn d) noexcept : self(s), detach(d) {
  if (runtime* rt = t_runtime) rt->bind_io(*this);
}

io_binding::~io_binding() {
  if (static_cast<list_hook<io_binding_tag>&>(*this).linked()) intrusive_list<io_binding, io_binding_tag>::erase(*this);
}

runtime::~runtime() {
  // I/O objects that outlive the runtime (a transport kept past weft::run)
  // leave its io_context before it goes.
  while (!io_bindings_.empty()) {
    io_binding& b = io_bindings_.pop_front();
    b.detach(b.self);
  }
  // Every task has ended: nothing waits for a remote call any more. Calls
  // that arrive from now on run as dropped (see inbox.hpp).
  inbox_->close();
  // Let the dispatcher release the contexts of finished fibers, then give the
  // thread back its default scheduling algorithm.
  loop_.shutting_down = true;
  loop_.poll_due = true;
  boost::fibers::context::active()->yield();
  after_switch();
  run_soon_calls();
  loop_.detaching = true;
  boost::fibers::use_scheduling_algorithm<boost::fibers::algo::round_robin>();
  wake_timer_.cancel();
  work_.reset();
  io_.restart();
  io_.poll();
  intrusive_list<scope_node, scope_child_tag>::erase(system_scope_);
  clock_->runtime_ = nullptr;
  t_runtime = previous_;
  stacks_->release();
}

runtime* runtime::current() noexcept { return t_runtime; }

void runtime::host(task_base* root) {
  root_ = root;
  root->rt_ = this;
  root->id_ = next_task_id();
  try {
    create_fiber(root, 0);  // its stack may not be there to have
  } catch (...) {
    root->release();
    throw;
  }
  link_task_scope(*root, root_scope_);
  while (!root->done()) wait_on_main();
  // System tasks (fibers started for coroutines outside any task) end with
  // the root task: cancel them and wait for them.
  cancel(system_scope_, cancel_reason::shutdown);
  while (live_tasks_ > 0) wait_on_main();
}

void runtime::wait_on_main() {
  main_waiting_ = true;
  main_ctx_->suspend();
  after_switch();
}

void runtime::spawn_system(task_base* t) {
  t->rt_ = this;
  t->id_ = next_task_id();
  try {
    create_fiber(t, 0);
  } catch (...) {
    t->release();
    throw;
  }
  link_task_scope(*t, system_scope_);
}

void run_root(const run_options& options, task_base* root) {
  warn_if_unannotated_asan();
  if (t_runtime != nullptr) {
    root->release();
    throw std::logic_error(
        "weft::run: this thread is already running a weft runtime; start tasks with a task_group instead");
  }
  std::unique_ptr<runtime> rt;
  try {
    if (options.stall_warning.count() < 0)
      throw std::invalid_argument("weft::run: run_options::stall_warning is negative (" +
                                  std::to_string(options.stall_warning.count()) + " ms); use 0 to turn the watchdog off");
    rt = std::make_unique<runtime>(options);
  } catch (...) {
    root->release();
    throw;
  }
  rt->host(root);
}

// --- tasks --------------------------------------------------------------------

void runtime::create_fiber(task_base* t, std::size_t stack_size) {
  start_fiber(t, stacks_->allocate(stack_size, &core_of(*t).stack_canary_), stack_header);
}

task_base* runtime::create_fiber_in_stack(std::size_t stack_size, std::size_t size, task_constructor construct,
                                          void* args) {
  bool canary = false;
  boost::context::stack_context sctx = stacks_->allocate(stack_size, &canary);
  // [task object][task_link] at the top; the fiber's own record and frames below.
  char* top = static_cast<char*>(sctx.sp);
  const auto at = (reinterpret_cast<std::uintptr_t>(top - stack_header) - size) & ~std::uintptr_t{in_stack_task_max_align - 1};
  task_base* t = nullptr;
  try {
    t = construct(reinterpret_cast<void*>(at), args);
  } catch (...) {
    stacks_->deallocate(sctx);
    throw;
  }
  t->in_stack_ = true;
  core_of(*t).stack_canary_ = canary;
  start_fiber(t, sctx, static_cast<std::size_t>(top - reinterpret_cast<char*>(at)));
  return t;
}

void runtime::start_fiber(task_base* t, const boost::context::stack_context& sctx, std::size_t header) noexcept {
  core_of(*t).stack_size_ = sctx.size;
  core_of(*t).stack_bottom_ = static_cast<char*>(sctx.sp) - sctx.size;
  char* top = static_cast<char*>(sctx.sp);
  auto* link = ::new (top - stack_header) task_link(t);
  boost::context::stack_context inner = sctx;
  inner.sp = top - header;
  inner.size = sctx.size - header;
  boost::fibers::fiber f(boost::fibers::launch::post, static_cast<boost::fibers::fiber_properties*>(link),
                         std::allocator_arg, fiber_stack_allocator{stacks_, inner, header},
                         [t] { t->rt_->task_main(t); });
  f.detach();
  ++live_tasks_;
}

void runtime::task_main(task_base* t) noexcept {
  after_switch();
  core_of(*t).ctx_ = boost::fibers::context::active();
  t->state_ = task_base::state::running;
  if (task_base* starter = core_of(*t).starter_) {
    core_of(*t).starter_ = nullptr;
    reschedule(*starter);
  }
  std::exception_ptr e;
  try {
    t->invoke();
  } catch (...) {
    e = std::current_exception();
  }
  finish_task(*t, std::move(e));
}

void runtime::finish_task(task_base& t, std::exception_ptr e) noexcept {
  check_stack_on_leave(t);  // stack guard hook
  scope_node& s = core_of(t).task_scope_;
  WEFT_INVARIANT(t.status_ == &s);
  bool escaped = static_cast<bool>(e);
  if (e && is_cancelled(e)) {
    t.ended_cancelled_ = true;
    if (s.effectively_cancelled && !s.parent_cancellation_visible()) {
      // The task's own scope (task<T>::cancel()) caught it: the task ended
      // cancelled, which is no failure for its group.
      s.cancelled_caught = true;
      escaped = false;
    }
  }
  if (s.deadline.queued()) deadlines_.remove(s.deadline);
  intrusive_list<scope_node, scope_child_tag>::erase(s);
  s.state = scope_node::phase::done;
  t.status_ = nullptr;
  t.exception_ = e;
  t.state_ = task_base::state::done;
  core_of(t).joiners_.unpark_all();
  if (core_of(t).group_ != nullptr)
    group_access::child_finished(*core_of(t).group_, t, escaped ? e : nullptr);
  else if (escaped && !t.ended_cancelled_ && &t != root_)  // cancelled: a system task's normal end
    report_system_task_failure(t, e);
  --live_tasks_;
  loop_.fiber_finished = true;  // Boost.Fiber's dispatch loop releases the context
  // The fiber's context outlives the task object: unlink them.
  static_cast<task_link*>(core_of(t).ctx_->get_properties())->task = nullptr;
  forget_current_state();
  // The task is about to be released while still running: it is current no
  // more, and the stall monitor must not be reading its name.
  t_current_task = nullptr;
  if (monitor_) probe_.retire_current(&t);
  if (main_waiting_ && (&t == root_ || (root_->done() && live_tasks_ == 0))) {
    main_waiting_ = false;
    algo_->awakened(main_ctx_);
  }
  t.release();
}

void runtime::report_system_task_failure(const task_base& t, const std::exception_ptr& e) noexcept {
  // A system task has no group to report to, and the error must not vanish.
  std::string named;
  try {
    named = "system task '" + t.name() + "' failed";
  } catch (const std::bad_alloc&) {  // no memory for the name: report without it
  }
  report_error_for(e, named.empty() ? std::string_view("system task failed") : std::string_view(named), {});
}

// --- entry points used by the public headers ------------------------------------

void submit_remote(runtime& rt, remote_call& call) noexcept { rt.remote_inbox().submit(call); }

void reschedule(task_base& t) noexcept { t.rt_->reschedule(t); }


void spawn_system_task(task_base* t) {
  runtime* rt = runtime::current();
  if (rt == nullptr) {
    t->release();
    throw std::logic_error("weft: a system task can only be started on a thread running a weft runtime");
  }
  rt->spawn_system(t);
}

void throw_not_in_task(const char* what) {
  throw std::logic_error(std::string(what) + " must be called from a weft task (inside weft::run), and this thread is " +
                         (t_runtime ? "running the runtime but not inside a task" : "not running a weft runtime"));
}

}  // namespace weft::detail

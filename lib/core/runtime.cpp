// The runtime core: scheduling, parking, the loop.
//
// Every task is a Boost.Fiber fiber. Switches between tasks go through
// reactor_algorithm: awakened() appends to a FIFO, pick_next() takes the
// front. Boost.Fiber's dispatcher fiber is kept out of that FIFO and picked
// only when no task is ready or a reactor pass is due (every
// `poll_interval` picks), so that I/O and timers are never starved by busy
// tasks. On the dispatcher, suspend_until() runs reactor_pass(): the loop.

#include "core/runtime.hpp"
#include "core/group_access.hpp"
#include "core/sanitizer_check.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/lowlevel/completion.hpp>
#include <weft/lowlevel/park.hpp>
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
#include <stdexcept>
#include <string>

namespace weft::detail {

constinit thread_local runtime* t_runtime = nullptr;
constinit thread_local task_base* t_current_task = nullptr;

namespace {

// Picks of ready tasks between two reactor passes while tasks stay busy.
constexpr unsigned poll_interval = 64;
// Handlers run in one pass after the first that readied a task, at most;
// and how often a pass tries that again after it found none.
constexpr unsigned max_handler_batch = 64;
constexpr unsigned batch_probe_interval = 64;

// Links a fiber's context to its task. Boost.Fiber deletes a context's
// properties when the context is destroyed; this object lives in a header
// at the top of the task's stack, so its deletion must not free anything.
struct task_link final : boost::fibers::fiber_properties {
  explicit task_link(task_base* t) noexcept : fiber_properties(nullptr), task(t) {}
  static void operator delete(void*) noexcept {}
  task_base* task;
};
constexpr std::size_t stack_header = 64;
static_assert(sizeof(task_link) <= stack_header);

task_base* task_of(boost::fibers::context* ctx) noexcept {
  auto* props = ctx->get_properties();
  return props ? static_cast<task_link*>(props)->task : nullptr;
}

// Hands Boost.Fiber the stack we already took from the pool (minus the header).
// Hands Boost.Fiber the part of a task's stack below what weft keeps at its
// top (the task_link, and the task object of an in-stack task).
struct fiber_stack_allocator {
  stack_pool* pool;
  boost::context::stack_context sctx;
  std::size_t header;
  boost::context::stack_context allocate() noexcept { return sctx; }
  void deallocate(boost::context::stack_context& s) noexcept {
    s.sp = static_cast<char*>(s.sp) + header;
    s.size += header;
    pool->deallocate(s);
  }
};

}  // namespace

void invariant_failed(const char* expr, const char* file, int line) noexcept {
  std::fprintf(stderr, "weft: internal invariant violated: %s (%s:%d)\n", expr, file, line);
  std::abort();
}

// --- the scheduling algorithm ------------------------------------------------

void reactor_algorithm::awakened(boost::fibers::context* ctx) noexcept {
  rt_.after_switch();
  if (ctx->is_context(boost::fibers::type::dispatcher_context)) {
    dispatcher_ = ctx;
  } else {
    ctx->ready_link(ready_);
  }
}

boost::fibers::context* reactor_algorithm::pick_next() noexcept {
  rt_.after_switch();
  // Called by the context that suspends. A task that did not go through
  // park() or yield() (it is still `running`) waits in Boost.Fiber itself.
  if (task_base* from = t_current_task; from != nullptr && from->state_ == task_base::state::running)
    rt_.fiber_wait_ = true;
  if (!ready_.empty() && !rt_.poll_due_) {
    if (++rt_.ticks_ >= poll_interval) rt_.poll_due_ = true;
    boost::fibers::context* ctx = &ready_.front();
    ready_.pop_front();
    rt_.prepare_switch(ctx, task_of(ctx));
    return ctx;
  }
  if (dispatcher_ != nullptr) {
    // Called from a task (or the main context): go to the dispatcher, which
    // runs a reactor pass and then picks again.
    boost::fibers::context* d = dispatcher_;
    dispatcher_ = nullptr;
    rt_.prepare_switch(d, nullptr);
    return d;
  }
  // Called from the dispatcher itself: nothing to pick before a reactor pass.
  return nullptr;
}

void reactor_algorithm::suspend_until(std::chrono::steady_clock::time_point const& fiber_deadline) noexcept {
  rt_.after_switch();
  // Boost.Fiber's dispatch loop has just released finished fibers, taken in
  // the ones made ready from other threads, and woken the fibers whose
  // Boost.Fiber timed waits expired; `fiber_deadline` is the earliest of the
  // timed waits left (the reactor wakes up for it, and the dispatcher hands
  // over to that loop again once it has passed).
  rt_.fiber_finished_ = false;
  rt_.remote_ready_ = false;
  rt_.fiber_wait_ = false;
  rt_.fiber_deadline_ = fiber_deadline;
  for (;;) {
    // Back here with a task ready and no pass due (a task yielded while no
    // other was ready): pick it, as pick_next() would, without a pass.
    if (ready_.empty() || rt_.poll_due_) rt_.reactor_pass();
    if (ready_.empty() || !rt_.dispatcher_may_stay()) return;
    // Switch straight to the first ready task, and when the dispatcher is
    // resumed again (no task ready, or a pass due), stay here for the next
    // pass: a turn of Boost.Fiber's dispatch loop costs a clock read and
    // two spinlocks, and is needed only to release finished fibers, to take
    // in fibers made ready from other threads, and at shutdown.
    boost::fibers::context* self = boost::fibers::context::active();
    boost::fibers::context* next = &ready_.front();
    ready_.pop_front();
    ++rt_.ticks_;
    rt_.prepare_switch(next, task_of(next));
    next->resume(self);  // self (the dispatcher) is made ready again
    rt_.after_switch();
    if (!rt_.dispatcher_may_stay()) return;
  }
}

void runtime::prepare_switch(boost::fibers::context* to, task_base* t) noexcept {
  t_current_task = t;
  probe_.count_switch();
  if (detaching_) return;  // set_algo() picks without switching
  thread_state* next = t != nullptr ? &t->saved_
                       : to->is_context(boost::fibers::type::dispatcher_context) ? &dispatcher_state_
                       : to == main_ctx_ ? &main_state_
                                         : &foreign_state_;
  state_current_->eh = *eh_globals_;
  state_current_->errno_value = *errno_;
  *eh_globals_ = next->eh;
  *errno_ = next->errno_value;
  state_current_ = next;
  before_switch(to);
}

#if defined(WEFT_ASAN_FIBERS)
void runtime::before_switch(boost::fibers::context* to) noexcept {
  if (detaching_) return;  // set_algo() picks without switching
  boost::fibers::context* from = boost::fibers::context::active();
  void** save = nullptr;  // stays null for a finished task: it is never resumed
  if (task_base* t = task_of(from)) {
    save = &t->asan_fake_stack_;
  } else if (from == main_ctx_) {
    save = &main_fake_stack_;
  } else if (from->is_context(boost::fibers::type::dispatcher_context)) {
    save = &dispatcher_fake_stack_;
  }
  const void* bottom = nullptr;
  std::size_t size = 0;
  if (task_base* t = task_of(to)) {
    bottom = t->stack_bottom_;
    size = t->stack_size_;
  } else if (to->is_context(boost::fibers::type::main_context)) {
    bottom = main_stack_bottom_;
    size = main_stack_size_;
  } else {
    // Boost.Fiber places the dispatcher's context object at the top of its
    // default-size stack; nothing on that stack throws, so approximate
    // bounds are enough.
    size = boost::context::stack_traits::default_size() - 1024;
    bottom = reinterpret_cast<const char*>(to) + sizeof(boost::fibers::context) - size;
  }
  switching_to_ = to;
  __sanitizer_start_switch_fiber(save, bottom, size);
}

void runtime::after_switch() noexcept {
  boost::fibers::context* to = switching_to_;
  if (to == nullptr) return;
  switching_to_ = nullptr;
  void* fake = nullptr;
  if (task_base* t = task_of(to))
    fake = t->asan_fake_stack_;
  else
    fake = to->is_context(boost::fibers::type::main_context) ? main_fake_stack_ : dispatcher_fake_stack_;
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
}
#else
void runtime::before_switch(boost::fibers::context*) noexcept {}
void runtime::after_switch() noexcept {}
#endif

void reactor_algorithm::notify() noexcept {
  // Called from other threads, after a fiber of this thread was made ready
  // remotely: wake the reactor (asio::post is thread-safe), and have the
  // dispatcher hand over to Boost.Fiber's loop, which takes the fiber in.
  runtime* rt = &rt_;
  boost::asio::post(rt_.io(), [rt] { rt->remote_ready_ = true; });
}

// --- the loop -----------------------------------------------------------------

// This is the loop. One pass:
//  1. run every Asio handler that is ready, without blocking (completions
//     reschedule parked tasks);
//  2. fire every deadline that is due (sleepers wake, scopes get cancelled);
//  3. if a task is ready, return: the dispatcher picks it;
//  4. otherwise the runtime is idle: wake wait_all_tasks_blocked() waiters,
//     or let an autojumping clock advance to the next deadline, or block in
//     the reactor (epoll) until I/O, the wake timer (armed for the earliest
//     deadline) or a post from another thread arrives.
void runtime::reactor_pass() noexcept {
  const bool busy = poll_due_;  // tasks kept the loop away for poll_interval picks
  poll_due_ = false;
  ticks_ = 0;
  t_current_task = nullptr;
  run_soon_calls();
  if (busy) {
    // Someone may have stopped the io_context (io_context().stop()); checked
    // here and before blocking, not on every pass (it takes a lock).
    if (io_.stopped()) io_.restart();
    io_.poll();  // a pass that interrupts busy tasks: give all of I/O its turn
  } else {
    run_ready_handlers();
  }
  fire_expired();
  for (;;) {
    if (algo_->has_ready_tasks()) return;
    if (run_soon_calls()) continue;  // queued by a handler of this pass
    if (!idle_waiters_.empty()) {
      idle_waiters_.unpark_all();
      return;
    }
    // A deadline that fires may wake nobody (a scope around shielded work):
    // keep jumping until a task is ready or nothing is left to jump to.
    if (deadlines_.empty() || !clock_->try_autojump(deadlines_.next())) break;
    fire_expired();
    // A fired deadline may have aborted I/O: let those completions wake
    // their tasks before time jumps any further.
    run_ready_handlers();
  }
  arm_wake_timer();
  probe_.idle.store(true, std::memory_order_relaxed);
  const std::size_t ran = io_.run_one();
  probe_.idle.store(false, std::memory_order_relaxed);
  if (ran == 0) {
    // Only a stopped io_context (io_context().stop()) runs nothing: the
    // work guard keeps it from running out of work. Asking stopped() before
    // blocking instead would take the scheduler's lock on every idle pass.
    io_.restart();
    return;  // the next pass runs what the stop held back
  }
  run_ready_handlers();
  fire_expired();
}

bool runtime::run_soon_calls() noexcept {
  if (soon_.empty()) return false;
  // One batch: calls queued by these calls wait for the next pass.
  intrusive_list<lowlevel::soon_call, lowlevel::soon_call_tag> batch;
  while (!soon_.empty()) batch.push_back(soon_.pop_front());
  while (!batch.empty()) {
    lowlevel::soon_call& c = batch.pop_front();
    c.fn(&c);
  }
  return true;
}

void runtime::run_ready_handlers() noexcept {
  // Handlers one at a time until a task is ready. io_context::poll() would
  // end every call with one more epoll_wait, which finds nothing when the
  // handlers were all that was ready (request/response traffic).
  while (!algo_->has_ready_tasks()) {
    if (io_.poll_one() == 0) return;
  }
  // Under load one epoll_wait reports many sockets: running their handlers
  // now lets the tasks they wake run back to back, without a pass between
  // each. Keep doing so while it finds more handlers; once it did not, try
  // again only every `batch_probe_interval` passes.
  if (!batching_ && ++batch_probe_ < batch_probe_interval) return;
  batch_probe_ = 0;
  unsigned more = 0;
  while (more < max_handler_batch && io_.poll_one() != 0) ++more;
  batching_ = more > 0;
}

void runtime::arm_wake_timer() noexcept {
  std::optional<std::chrono::steady_clock::time_point> when;
  if (!deadlines_.empty()) when = clock_->wake_time(deadlines_.next());
  if (fiber_deadline_ != std::chrono::steady_clock::time_point::max() && (!when || fiber_deadline_ < *when))
    when = fiber_deadline_;
  if (!when) return;
  if (wake_pending_ && wake_armed_for_ <= *when) return;
  wake_armed_for_ = *when;
  wake_pending_ = true;
  const std::uint64_t generation = ++wake_generation_;
  wake_timer_.expires_at(*when);
  wake_timer_.async_wait([this, generation](const boost::system::error_code&) {
    if (generation == wake_generation_) wake_pending_ = false;
  });
}

void runtime::fire_expired() noexcept {
  if (deadlines_.empty()) return;
  const time_point now = this->now();
  while (deadline_entry* e = deadlines_.pop_due(now)) e->fire(e);
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
  if (clock_->runtime_ != nullptr) {
    inbox_->close();
    stacks_->release();
    throw std::logic_error("weft::run: this clock is already in use by another running runtime");
  }
  clock_->runtime_ = this;
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
  shutting_down_ = true;
  poll_due_ = true;
  boost::fibers::context::active()->yield();
  after_switch();
  run_soon_calls();
  detaching_ = true;
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

void runtime::run(task_base* root) {
  root_ = root;
  root->rt_ = this;
  root->id_ = next_task_id();
  link_task_scope(*root, root_scope_);
  create_fiber(root, 0);
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
  rt->run(root);
}

// --- tasks --------------------------------------------------------------------

void runtime::create_fiber(task_base* t, std::size_t stack_size) {
  start_fiber(t, stacks_->allocate(stack_size, &t->stack_canary_), stack_header);
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
  t->stack_canary_ = canary;
  start_fiber(t, sctx, static_cast<std::size_t>(top - reinterpret_cast<char*>(at)));
  return t;
}

void runtime::start_fiber(task_base* t, const boost::context::stack_context& sctx, std::size_t header) noexcept {
  t->stack_size_ = sctx.size;
  t->stack_bottom_ = static_cast<char*>(sctx.sp) - sctx.size;
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
  t->ctx_ = boost::fibers::context::active();
  t->state_ = task_base::state::running;
  if (task_base* starter = t->starter_) {
    t->starter_ = nullptr;
    make_ready(*starter);
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
  scope_node& s = t.task_scope_;
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
  intrusive_list<task_base, scope_task_tag>::erase(t);
  intrusive_list<scope_node, scope_child_tag>::erase(s);
  s.state = scope_node::phase::done;
  t.status_ = nullptr;
  t.exception_ = e;
  t.state_ = task_base::state::done;
  t.joiners_.unpark_all();
  if (t.group_ != nullptr) group_access::child_finished(*t.group_, t, escaped ? e : nullptr);
  --live_tasks_;
  fiber_finished_ = true;  // Boost.Fiber's dispatch loop releases the context
  // The fiber's context outlives the task object: unlink them.
  static_cast<task_link*>(t.ctx_->get_properties())->task = nullptr;
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

namespace {
// A runtime's state is touched by its own thread only: anything else is a
// misuse that would corrupt it silently, so it ends the program with a
// message instead.
[[noreturn]] void used_from_another_thread(const char* what) noexcept {
  std::fprintf(stderr,
               "weft: %s was called from a thread that does not run the runtime it belongs to (%s).\n"
               "weft: A runtime's tasks, cancel scopes and synchronization primitives (event, lock, semaphore,\n"
               "weft: condition_variable, channels) belong to the thread that runs it. From other threads, hand\n"
               "weft: work to it with weft::use_fiber or greenback::await_ (an operation on any executor),\n"
               "weft: weft::lowlevel::completion, or asio::post to its io_context.\n",
               what, t_runtime != nullptr ? "from another runtime's thread" : "from a thread without a weft runtime");
  std::abort();
}
}  // namespace

void runtime::make_ready(task_base& t) noexcept {
  if (t_runtime != this) [[unlikely]]
    used_from_another_thread("waking a task (an event, lock, semaphore, channel or lowlevel::reschedule)");
  WEFT_INVARIANT(t.state_ == task_base::state::parked);
  t.state_ = task_base::state::scheduled;
  t.abort_ = nullptr;
  algo_->awakened(t.ctx_);
}

void runtime::park(task_base& t, const abort_fn& abort) {
  WEFT_INVARIANT(t_current_task == &t);
  check_stack_on_leave(t);  // stack guard hook
  if (t.status_->effectively_cancelled) {
    if (abort() == abort_result::succeeded) throw_cancelled(t);
    // The wait cannot be withdrawn: wait for its completion uninterrupted;
    // the cancellation is delivered at the next checkpoint.
  } else {
    t.abort_ = &abort;
  }
  t.state_ = task_base::state::parked;
  t.ctx_->suspend();
  after_switch();
  t.state_ = task_base::state::running;
  t.wait_what_ = nullptr;
  if (t.wake_cancelled_) {
    t.wake_cancelled_ = false;
    throw_cancelled(t);
  }
}

void runtime::yield(task_base& t) noexcept {
  check_stack_on_leave(t);  // stack guard hook
  t.state_ = task_base::state::scheduled;
  t.ctx_->yield();
  after_switch();
  t.state_ = task_base::state::running;
}

// --- cancel tree --------------------------------------------------------------

void runtime::link_task_scope(task_base& t, scope_node& parent) noexcept {
  scope_node& s = t.task_scope_;
  s.rt = this;
  s.owner = &t;
  s.parent = &parent;
  parent.children.push_back(s);
  s.tasks.push_back(t);
  t.status_ = &s;
  s.state = scope_node::phase::active;
  s.role = scope_node::kind::task;
  s.effectively_cancelled = s.cancel_called || s.parent_cancellation_visible();
}

void runtime::enter_scope(scope_node& s, task_base& t) {
  if (s.state != scope_node::phase::idle)
    throw std::logic_error("weft::cancel_scope: a cancel scope can be entered only once");
  if (s.deadline.when != inf_time) deadlines_.reserve_one();  // arm_deadline cannot fail
  s.rt = this;
  s.owner = &t;
  s.parent = t.status_;
  s.parent->children.push_back(s);
  intrusive_list<task_base, scope_task_tag>::erase(t);
  s.tasks.push_back(t);
  t.status_ = &s;
  s.state = scope_node::phase::active;
  s.effectively_cancelled = s.cancel_called || s.parent_cancellation_visible();
  if (!s.cancel_called && s.deadline.when != inf_time) arm_deadline(s);
}

std::exception_ptr runtime::exit_scope(scope_node& s, task_base& t, std::exception_ptr in_flight) {
  if (s.state != scope_node::phase::active)
    throw std::logic_error("weft::cancel_scope: exiting a cancel scope that is not active (never entered, or already exited)");
  if (s.owner != &t)
    throw std::logic_error("weft::cancel_scope: a cancel scope must be exited by the task that entered it");
  if (t.status_ != &s)
    throw std::logic_error("weft::cancel_scope: exiting a cancel scope that is not the innermost one of this task; "
                           "scopes must be exited in the reverse order of entry");
  WEFT_INVARIANT(s.children.empty());
  const bool catches = s.effectively_cancelled && !s.parent_cancellation_visible();
  if (s.deadline.queued()) deadlines_.remove(s.deadline);
  intrusive_list<task_base, scope_task_tag>::erase(t);
  s.parent->tasks.push_back(t);
  t.status_ = s.parent;
  intrusive_list<scope_node, scope_child_tag>::erase(s);
  s.state = scope_node::phase::done;
  s.rt = nullptr;  // the scope object may outlive the runtime
  if (in_flight && catches && is_cancelled(in_flight)) {
    s.cancelled_caught = true;
    return nullptr;
  }
  return in_flight;
}

void runtime::cancel(scope_node& s, cancel_reason reason) noexcept {
  if (t_runtime != this) [[unlikely]]
    used_from_another_thread("cancelling (cancel_scope::cancel, task::cancel)");
  if (s.cancel_called) return;
  s.cancel_called = true;
  s.reason = reason;
  if (s.deadline.queued()) deadlines_.remove(s.deadline);
  if (s.state == scope_node::phase::active) recalculate(s);
}

void runtime::set_deadline(scope_node& s, time_point t) {
  if (t != inf_time) deadlines_.reserve_one();  // arm_deadline cannot fail
  if (s.deadline.queued()) deadlines_.remove(s.deadline);
  s.deadline.when = t;
  if (s.state != scope_node::phase::active || s.cancel_called || t == inf_time) return;
  arm_deadline(s);
}

void runtime::arm_deadline(scope_node& s) noexcept {
  // The caller made room in the queue (deadline_queue::reserve_one).
  // Entering a scope does not read the clock (that costs as much as a task
  // switch): a deadline known to have passed cancels at once; any other
  // goes to the queue, which fires it at the next pass of the loop if it has
  // in fact passed. With a manual clock the known time is exact.
  if (s.deadline.when <= last_now_)
    cancel(s, cancel_reason::deadline);
  else
    deadlines_.push(s.deadline);
}

void runtime::recalculate(scope_node& s) noexcept {
  const bool cancelled = s.cancel_called || s.parent_cancellation_visible();
  if (cancelled == s.effectively_cancelled) return;
  s.effectively_cancelled = cancelled;
  if (cancelled) s.tasks.for_each([this](task_base& t) { deliver_cancel(t); });
  s.children.for_each([this](scope_node& child) { recalculate(child); });
}

void runtime::deliver_cancel(task_base& t) noexcept {
  if (t.state_ != task_base::state::parked || t.abort_ == nullptr) return;
  const abort_fn* abort = t.abort_;
  t.abort_ = nullptr;
  if ((*abort)() == abort_result::succeeded) {
    t.wake_cancelled_ = true;
    make_ready(t);
  }
}

void throw_cancelled(task_base& t) {
  // The reason of the outermost cancelled scope: the one that will catch it.
  cancel_reason reason = cancel_reason::explicit_request;
  for (scope_node* n = t.status_; n != nullptr && n->effectively_cancelled; n = n->parent) {
    if (n->cancel_called) reason = n->reason;
    if (n->shield) break;
  }
  throw cancelled(reason);
}

// --- entry points used by the public headers ------------------------------------

void submit_remote(runtime& rt, remote_call& call) noexcept { rt.remote_inbox().submit(call); }

void make_ready(task_base& t) noexcept { t.rt_->make_ready(t); }


void spawn_system_task(task_base* t) {
  runtime* rt = runtime::current();
  if (rt == nullptr) {
    t->release();
    throw std::logic_error("weft: a system task can only be started on a thread running a weft runtime");
  }
  rt->spawn_system(t);
}

task_base& require_task(const char* what) {
  task_base* t = current_task();
  if (t == nullptr) {
    throw std::logic_error(std::string(what) +
                           " must be called from a weft task (inside weft::run), and this thread is " +
                           (t_runtime ? "running the runtime but not inside a task" : "not running a weft runtime"));
  }
  return *t;
}

namespace {
// A task of one runtime waiting for a task of another. The target's state
// and its joiners belong to its own thread: the wait is registered there
// (through its runtime's inbox), woken from there through a completion, and
// withdrawn from there if the waiter is cancelled. The target's runtime
// cannot end before the target has, and an ended runtime runs late calls
// with `open == false`: then the target is done.
struct remote_join {
  struct call : remote_call {
    remote_join* join = nullptr;
  };
  explicit remote_join(task_base& t) : target(t) {
    enlist.join = this;
    enlist.fn = &on_enlist;
    withdraw.join = this;
    withdraw.fn = &on_withdraw;
    entry.wake = &on_wake;
    entry.data = this;
  }
  static void on_enlist(remote_call* c, bool open) noexcept {
    remote_join& j = *static_cast<call*>(c)->join;
    if (!open || j.target.done()) {
      j.done.complete();
      return;
    }
    j.target.joiners_.add(j.entry);
  }
  static void on_wake(lot_entry& e) noexcept {
    static_cast<remote_join*>(e.data)->done.complete();
  }
  static void on_withdraw(remote_call* c, bool open) noexcept {
    remote_join& j = *static_cast<call*>(c)->join;
    if (open && j.entry.linked()) {
      intrusive_list<lot_entry, lot_tag>::erase(j.entry);
      j.done.complete();
    }
    j.done.release();
  }

  task_base& target;
  lowlevel::completion done;
  lot_entry entry;
  call enlist;
  call withdraw;
};

void wait_done_remote(task_base& me, task_base& t) {
  raise_if_cancelled_at_entry();
  remote_join j(t);
  submit_remote(*t.rt_, j.enlist);
  bool aborted = false;
  auto abort = [&]() noexcept {
    if (!aborted) {
      aborted = true;
      j.done.hold();  // until the withdrawal has run on the target's thread
      submit_remote(*t.rt_, j.withdraw);
    }
    return abort_result::failed;
  };
  describe_wait(me, "join of a task of another runtime, id", static_cast<long long>(t.id_));
  j.done.wait(abort);
  if (aborted) throw_cancelled(me);
}
}  // namespace

void wait_done(task_base& t) {
  if (t_runtime != nullptr && t.rt_ != t_runtime) {
    task_base& me = require_task("weft::task::wait");
    wait_done_remote(me, t);
    return;
  }
  if (t.done()) {
    raise_if_cancelled_at_entry();
    return;
  }
  task_base& me = require_task("weft::task::wait");
  if (&me == &t) throw std::logic_error("weft::task::wait: a task cannot wait for itself (it would deadlock)");
  lot_entry entry;
  t.joiners_.park(entry, "join of task", static_cast<long long>(t.id_));
}

void wait_done_shielded(task_base& t) {
  ignore_cancellation([&] { wait_done(t); });
}

bool cancel_task(task_base& t) noexcept {
  if (t.done()) return false;
  t.rt_->cancel(t.task_scope_, cancel_reason::task_cancelled);
  return true;
}

// --- parking lot ----------------------------------------------------------------

void parking_lot::check_same_runtime(const char* what) const {
  const task_base* waiter = waiters_.front().task;
  if (waiter == nullptr || waiter->rt_ == t_runtime) return;
  throw std::logic_error(
      std::string(what) + ": its waiters are tasks of another runtime than this thread's. weft's synchronization "
                          "objects (event, lock, semaphore, condition_variable, channels) and task handles belong to "
                          "the runtime whose tasks use them, on its thread; from other threads, hand work to that "
                          "runtime (weft::use_fiber, greenback::await_, lowlevel::completion, or asio::post to its "
                          "io_context)");
}

void parking_lot::park(lot_entry& entry, const char* what, long long arg) {
  task_base& me = require_task("weft: a blocking call");
  if (!waiters_.empty()) check_same_runtime(what);
  describe_wait(me, what, arg);
  entry.task = &me;
  waiters_.push_back(entry);
  auto abort = [&]() noexcept {
    intrusive_list<lot_entry, lot_tag>::erase(entry);
    return abort_result::succeeded;
  };
  me.rt_->park(me, abort);
}

lot_entry* parking_lot::unpark_one() noexcept {
  if (waiters_.empty()) return nullptr;
  lot_entry& e = waiters_.pop_front();
  if (e.wake != nullptr)
    e.wake(e);
  else
    e.task->rt_->make_ready(*e.task);
  return &e;
}

std::size_t parking_lot::unpark_all() noexcept {
  std::size_t n = 0;
  while (unpark_one() != nullptr) ++n;
  return n;
}

}  // namespace weft::detail

// --- lowlevel API -----------------------------------------------------------------

namespace weft::lowlevel {

task_ref current_task() { return task_ref(&detail::require_task("weft::lowlevel::current_task")); }

void park(detail::function_ref<abort_result()> abort) {
  detail::task_base& me = detail::require_task("weft::lowlevel::park");
  me.rt_->park(me, abort);
}

void reschedule(task_ref t) noexcept { t.get()->rt_->make_ready(*t.get()); }

bool cancellation_pending() noexcept {
  detail::task_base* t = detail::current_task();
  return t != nullptr && t->status_->effectively_cancelled;
}

void raise_if_cancelled() {
  detail::task_base& t = detail::require_task("weft::lowlevel::raise_if_cancelled");
  if (t.status_->effectively_cancelled) detail::throw_cancelled(t);
}

void call_soon(soon_call& call) {
  detail::runtime* rt = detail::runtime::current();
  if (rt == nullptr) throw std::logic_error("weft::lowlevel::call_soon: no weft runtime runs on this thread");
  rt->call_soon(call);
}

boost::asio::io_context& io_context() {
  detail::runtime* rt = detail::runtime::current();
  if (rt == nullptr) throw std::logic_error("weft::lowlevel::io_context: no weft runtime runs on this thread");
  return rt->io();
}

}  // namespace weft::lowlevel

// The Boost.Fiber scheduling algorithm and the switch path.
//
// Every task is a Boost.Fiber fiber. Switches between tasks go through
// reactor_algorithm: awakened() appends to a FIFO, pick_next() takes the
// front. Boost.Fiber's dispatcher fiber is kept out of that FIFO and picked
// only when no task is ready or a reactor pass is due (every
// `poll_interval` picks), so that I/O and timers are never starved by busy
// tasks. On the dispatcher, suspend_until() runs reactor_pass(): the loop
// (loop.cpp). Every switch goes through runtime::prepare_switch, which
// carries the per-thread state that must be per task.

#include "core/fiber_glue.hpp"
#include "core/runtime.hpp"

#include <boost/asio/post.hpp>
#include <boost/fiber/context.hpp>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>

#include <boost/context/stack_traits.hpp>
#define WEFT_ASAN_FIBERS 1
#endif

namespace weft::detail {

// --- the scheduling algorithm ------------------------------------------------

WEFT_HOT void reactor_algorithm::awakened(boost::fibers::context* ctx) noexcept {
  rt_.after_switch();
  if (ctx->is_context(boost::fibers::type::dispatcher_context)) {
    dispatcher_ = ctx;
  } else {
    ctx->ready_link(ready_);
  }
}

WEFT_HOT boost::fibers::context* reactor_algorithm::pick_next() noexcept {
  rt_.after_switch();
  // Called by the context that suspends. A task that did not go through
  // park() or yield() (it is still `running`) waits in Boost.Fiber itself.
  if (task_base* from = t_current_task; from != nullptr && from->state_ == task_base::state::running)
    rt_.loop_.fiber_wait = true;
  if (!ready_.empty() && !rt_.loop_.poll_due) {
    if (++rt_.loop_.ticks >= loop_state::poll_interval) rt_.loop_.poll_due = true;
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
  rt_.loop_.fiber_finished = false;
  rt_.loop_.remote_ready = false;
  rt_.loop_.fiber_wait = false;
  rt_.loop_.fiber_deadline = fiber_deadline;
  for (;;) {
    // Back here with a task ready and no pass due (a task yielded while no
    // other was ready): pick it, as pick_next() would, without a pass.
    if (ready_.empty() || rt_.loop_.poll_due) rt_.reactor_pass();
    if (ready_.empty() || !rt_.loop_.dispatcher_may_stay()) return;
    // Switch straight to the first ready task, and when the dispatcher is
    // resumed again (no task ready, or a pass due), stay here for the next
    // pass: a turn of Boost.Fiber's dispatch loop costs a clock read and
    // two spinlocks, and is needed only to release finished fibers, to take
    // in fibers made ready from other threads, and at shutdown.
    boost::fibers::context* self = boost::fibers::context::active();
    boost::fibers::context* next = &ready_.front();
    ready_.pop_front();
    ++rt_.loop_.ticks;
    rt_.prepare_switch(next, task_of(next));
    next->resume(self);  // self (the dispatcher) is made ready again
    rt_.after_switch();
    if (!rt_.loop_.dispatcher_may_stay()) return;
  }
}

void reactor_algorithm::notify() noexcept {
  // Called from other threads, after a fiber of this thread was made ready
  // remotely: wake the reactor (asio::post is thread-safe), and have the
  // dispatcher hand over to Boost.Fiber's loop, which takes the fiber in.
  runtime* rt = &rt_;
  boost::asio::post(rt_.io(), [rt] { rt->loop_.remote_ready = true; });
}

// --- the switch path ------------------------------------------------------------

void runtime::prepare_switch(boost::fibers::context* to, task_base* t) noexcept {
  t_current_task = t;
  probe_.count_switch();
  if (loop_.detaching) return;  // set_algo() picks without switching
  thread_state* next = t != nullptr ? &core_of(*t).saved_
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
  if (loop_.detaching) return;  // set_algo() picks without switching
  boost::fibers::context* from = boost::fibers::context::active();
  void** save = nullptr;  // stays null for a finished task: it is never resumed
  if (task_base* t = task_of(from)) {
    save = &core_of(*t).asan_fake_stack_;
  } else if (from == main_ctx_) {
    save = &main_fake_stack_;
  } else if (from->is_context(boost::fibers::type::dispatcher_context)) {
    save = &dispatcher_fake_stack_;
  }
  const void* bottom = nullptr;
  std::size_t size = 0;
  if (task_base* t = task_of(to)) {
    bottom = core_of(*t).stack_bottom_;
    size = core_of(*t).stack_size_;
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

WEFT_HOT void runtime::after_switch() noexcept {
  boost::fibers::context* to = switching_to_;
  if (to == nullptr) return;
  switching_to_ = nullptr;
  void* fake = nullptr;
  if (task_base* t = task_of(to))
    fake = core_of(*t).asan_fake_stack_;
  else
    fake = to->is_context(boost::fibers::type::main_context) ? main_fake_stack_ : dispatcher_fake_stack_;
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
}
#else
void runtime::before_switch(boost::fibers::context*) noexcept {}
WEFT_HOT void runtime::after_switch() noexcept {}
#endif

}  // namespace weft::detail

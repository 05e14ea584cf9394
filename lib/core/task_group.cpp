// Task groups: spawning children, collecting their failures, waiting on exit.

#include "core/task_core.hpp"
#include "core/group_access.hpp"
#include "core/runtime.hpp"

#include <weft/task_group.hpp>

#include <algorithm>
#include <stdexcept>

namespace weft {

using detail::runtime;
using detail::task_base;

task_group::task_group() noexcept = default;

task_group::~task_group() {
  // Destroying an open group would orphan its children: only possible by
  // misusing enter() without exit().
  WEFT_INVARIANT(phase_ == phase::idle || phase_ == phase::closed);
}

void task_group::cancel() noexcept { scope_.cancel(); }

void task_group::enter() {
  task_base& me = detail::require_task("weft::task_group::enter");
  if (phase_ != phase::idle) throw std::logic_error("weft::task_group: a task group can be entered only once");
  scope_.node_.role = detail::scope_node::kind::task_group;
  scope_.enter();
  owner_ = &me;
  phase_ = phase::open;
}

std::exception_ptr task_group::exit(std::exception_ptr in_flight) {
  task_base& me = detail::require_task("weft::task_group::exit");
  if (phase_ != phase::open) throw std::logic_error("weft::task_group: exiting a task group that is not open");
  if (owner_ != &me) throw std::logic_error("weft::task_group: a task group must be exited by the task that entered it");
  if (me.status_ != &scope_.node_)
    throw std::logic_error("weft::task_group: exiting a task group while a cancel scope entered inside it is still active");
  runtime& rt = *me.rt_;
  phase_ = phase::closing;
  if (in_flight) {
    if (is_cancelled(in_flight)) {
      if (!first_cancel_) first_cancel_ = in_flight;
    } else if (std::find(failures_.begin(), failures_.end(), in_flight) == failures_.end()) {
      failures_.insert(failures_.begin(), in_flight);
      body_failed_ = true;
    }  // else: a child's failure the body joined and let through, recorded once
    // The body is gone: cancel the children rather than wait for them forever.
    rt.cancel(scope_.node_, cancel_reason::task_group_failure);
  }
  bool cancelled_while_waiting = false;
  while (live_ > 0) {
    exit_waiter_ = &me;
    // Waiting for children is a checkpoint that cannot be cut short: the
    // children are inside this task's cancel scopes, so a cancellation
    // reaches them too; we record it and keep waiting.
    auto abort = [&]() noexcept {
      cancelled_while_waiting = true;
      return detail::abort_result::failed;
    };
    detail::describe_wait(me, "task group exit, waiting for children:", static_cast<long long>(live_));
    rt.park(me, abort);
  }
  if (cancelled_while_waiting && !first_cancel_) {
    try {
      detail::throw_cancelled(me);
    } catch (const cancelled&) {
      first_cancel_ = std::current_exception();
    }
  }
  std::exception_ptr rest = rt.exit_scope(scope_.node_, me, first_cancel_);
  phase_ = phase::closed;
  if (!failures_.empty()) {
    if (body_failed_ && failures_.size() == 1) return failures_.front();
    auto group = std::make_exception_ptr(exception_group("weft: unhandled errors in a task group", std::move(failures_)));
    failures_.clear();
    return group;
  }
  return rest;
}

namespace detail {

void group_access::child_finished(task_group& g, task_base&, std::exception_ptr escaped) noexcept {
  if (escaped) {
    if (is_cancelled(escaped)) {
      if (!g.first_cancel_) g.first_cancel_ = escaped;
    } else if (std::find(g.failures_.begin(), g.failures_.end(), escaped) == g.failures_.end()) {
      g.failures_.push_back(escaped);  // within the capacity reserved by spawn
    }  // else: a sibling's failure this child joined and let through, recorded once
    // Any exception escaping a child cancels the body and the siblings.
    g.scope_.node_.rt->cancel(g.scope_.node_, cancel_reason::task_group_failure);
  }
  if (--g.live_ == 0 && g.exit_waiter_ != nullptr) {
    task_base* waiter = std::exchange(g.exit_waiter_, nullptr);
    waiter->rt_->reschedule(*waiter);
  }
}

void spawn(task_group& g, task_base* t, task_options&& options) { group_access::spawn(g, t, std::move(options)); }

void spawn_in_stack(task_group& g, task_options&& options, std::size_t size, task_constructor construct, void* args) {
  group_access::spawn_in_stack(g, std::move(options), size, construct, args);
}

runtime* group_access::admit(task_group& g) {
  runtime* rt = runtime::current();
  if (g.phase_ != task_group::phase::open && g.phase_ != task_group::phase::closing)
    throw std::logic_error(g.phase_ == task_group::phase::idle
                               ? "weft::task_group: cannot start a task in a task group that has not been entered"
                               : "weft::task_group: cannot start a task in a task group that has already exited");
  if (rt == nullptr || rt != g.scope_.node_.rt)
    throw std::logic_error("weft::task_group: tasks can only be started from the thread that runs the group's runtime");
  // child_finished (noexcept) records a failure of each live child, and
  // exit adds the body's: make room for all of them now.
  const std::size_t room = g.failures_.size() + g.live_ + 2;
  if (g.failures_.capacity() < room) g.failures_.reserve(std::max(room, 2 * g.failures_.capacity()));
  return rt;
}

void group_access::adopt(task_group& g, runtime* rt, task_base* t, task_options&& options) noexcept {
  t->rt_ = rt;
  t->id_ = rt->next_task_id();
  core_of(*t).group_ = &g;
  core_of(*t).explicit_name_ = std::move(options.name);
  rt->link_task_scope(*t, g.scope_.node_);
  ++g.live_;
}

void group_access::spawn(task_group& g, task_base* t, task_options&& options) {
  runtime* rt = nullptr;
  try {
    rt = admit(g);
    rt->create_fiber(t, options.stack_size);
  } catch (...) {
    t->release();
    throw;
  }
  adopt(g, rt, t, std::move(options));
}

void group_access::spawn_in_stack(task_group& g, task_options&& options, std::size_t size, task_constructor construct,
                                  void* args) {
  runtime* rt = admit(g);
  adopt(g, rt, rt->create_fiber_in_stack(options.stack_size, size, construct, args), std::move(options));
}

void start(task_group& g, task_base* t, task_options&& options) {
  task_base& me = require_task("weft::task_group::start");
  if (me.status_->effectively_cancelled) {
    t->release();
    throw_cancelled(me);
  }
  core_of(*t).starter_ = &me;
  spawn(g, t, std::move(options));
  bool aborted = false;
  auto abort = [&]() noexcept {
    aborted = true;
    cancel_task(*t);
    return abort_result::failed;
  };
  describe_wait(me, "start of task", static_cast<long long>(t->id_));
  me.rt_->park(me, abort);  // the child reschedules us when it starts running
  if (aborted) {
    wait_done_shielded(*t);
    throw_cancelled(me);
  }
}

}  // namespace detail
}  // namespace weft

// The cancel tree: scopes, their deadlines, and delivering cancellation to
// parked tasks.

#include "core/task_core.hpp"
#include "core/runtime.hpp"

#include <weft/cancel_scope.hpp>

#include <stdexcept>

namespace weft::detail {

void runtime::link_task_scope(task_base& t, scope_node& parent) noexcept {
  scope_node& s = core_of(t).task_scope_;
  s.rt = this;
  s.owner = &t;
  s.parent = &parent;
  parent.children.push_back(s);
  t.status_ = &s;
  s.state = scope_node::phase::active;
  s.role = scope_node::kind::task;
  s.effectively_cancelled = s.cancel_called || s.parent_cancellation_visible();
}

inline void runtime::arm_deadline(scope_node& s) noexcept {
  // The caller made room in the queue (deadline_queue::reserve_one).
  // Entering a scope does not read the clock (that costs as much as a task
  // switch): a deadline known to have passed cancels at once; any other
  // goes to the queue, which fires it at the next pass of the loop if it has
  // in fact passed. With a manual clock the known time is exact.
  if (s.deadline.when <= last_now_)
    cancel(s, cancel_reason::deadline);
  else
    deadlines_.push_reserved(s.deadline);
}

// enter_scope and leave_scope are inline here: cancel_scope::enter and
// exit_returned below are their only callers outside this file's own code.
inline void runtime::enter_scope(scope_node& s, task_base& t) {
  if (s.state != scope_node::phase::idle) [[unlikely]]
    throw std::logic_error("weft::cancel_scope: a cancel scope can be entered only once");
  const bool has_deadline = s.deadline.when != inf_time;
  if (has_deadline) deadlines_.reserve_one();  // arm_deadline cannot fail
  s.rt = this;
  s.owner = &t;
  s.parent = t.status_;
  s.parent->children.push_back(s);
  t.status_ = &s;
  s.state = scope_node::phase::active;
  s.effectively_cancelled = s.cancel_called || s.parent_cancellation_visible();
  if (has_deadline && !s.cancel_called) arm_deadline(s);
}

inline bool runtime::leave_scope(scope_node& s, task_base& t) {
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
  t.status_ = s.parent;
  intrusive_list<scope_node, scope_child_tag>::erase(s);
  s.state = scope_node::phase::done;
  s.rt = nullptr;  // the scope object may outlive the runtime
  return catches;
}

std::exception_ptr runtime::exit_scope(scope_node& s, task_base& t, std::exception_ptr in_flight) {
  if (leave_scope(s, t) && in_flight && is_cancelled(in_flight)) {
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

void runtime::recalculate(scope_node& s) noexcept {
  const bool cancelled = s.cancel_called || s.parent_cancellation_visible();
  if (cancelled == s.effectively_cancelled) return;
  s.effectively_cancelled = cancelled;
  // The only task whose innermost node this can be is its owner.
  if (cancelled && s.owner != nullptr && s.owner->status_ == &s) deliver_cancel(*s.owner);
  s.children.for_each([this](scope_node& child) { recalculate(child); });
}

void runtime::deliver_cancel(task_base& t) noexcept {
  if (t.state_ != task_base::state::parked || core_of(t).abort_ == nullptr) return;
  const abort_fn* abort = core_of(t).abort_;
  core_of(t).abort_ = nullptr;
  if ((*abort)() == abort_result::succeeded) {
    core_of(t).wake_cancelled_ = true;
    reschedule(t);
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

}  // namespace weft::detail

namespace weft {

// cancel_scope's entry and normal exit live beside the runtime's scope code,
// so that the hot path of a scope is one call each way.
void cancel_scope::enter() {
  detail::task_base& t = detail::require_task("weft::cancel_scope::enter");
  t.rt_->enter_scope(node_, t);
}

void cancel_scope::exit_returned() {
  detail::task_base& t = detail::require_task("weft::cancel_scope::exit");
  t.rt_->leave_scope(node_, t);
}

}  // namespace weft

// Cancel scopes (cancel_scope.hpp); their place in the cancel tree is
// runtime code (cancel_tree.cpp).

#include "core/group_access.hpp"
#include "core/runtime.hpp"
#include "core/time_checks.hpp"

#include <weft/cancel_scope.hpp>

#include <cmath>
#include <stdexcept>

namespace weft {

namespace detail {
time_point deadline_after(duration d) {
  check_delay(d, "weft::timeout");
  return require_runtime("weft::timeout").deadline_in(d);
}
}  // namespace detail

// --- cancel_scope -------------------------------------------------------------

cancel_scope::cancel_scope(time_point deadline, bool shield) {
  check_not_nan(deadline, "weft::cancel_scope");
  node_.deadline.when = deadline;
  node_.deadline.owner = &node_;
  node_.deadline.fire = [](detail::deadline_entry* e) noexcept {
    auto* node = static_cast<detail::scope_node*>(e->owner);
    node->rt->cancel(*node, cancel_reason::deadline);
  };
  node_.shield = shield;
}

void cancel_scope::cancel() noexcept {
  if (node_.rt != nullptr) {
    node_.rt->cancel(node_, cancel_reason::explicit_request);
  } else {
    node_.cancel_called = true;  // not entered yet: takes effect on entry
    node_.reason = cancel_reason::explicit_request;
  }
}

void cancel_scope::reschedule(time_point t) {
  check_not_nan(t, "weft::cancel_scope::reschedule");
  if (node_.rt != nullptr)
    node_.rt->set_deadline(node_, t);
  else
    node_.deadline.when = t;
}

std::exception_ptr cancel_scope::exit(std::exception_ptr in_flight) {
  detail::task_base& t = detail::require_task("weft::cancel_scope::exit");
  return t.rt_->exit_scope(node_, t, std::move(in_flight));
}

async_backend& cancel_scope::backend() const noexcept { return builtin_backend(); }

cancel_scope open_cancel_scope(time_point deadline) { return cancel_scope(deadline); }

cancel_scope move_on_at(time_point t) { return cancel_scope(t); }

cancel_scope move_on_after(duration d) {
  check_delay(d, "weft::move_on_after");
  return cancel_scope(require_runtime("weft::move_on_after").deadline_in(d));
}

}  // namespace weft

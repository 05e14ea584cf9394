// Cancel scopes, checkpoints and sleeping.

#include "core/group_access.hpp"
#include "core/runtime.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>

#include <cmath>
#include <stdexcept>

namespace weft {

namespace {
void check_not_nan(time_point t, const char* what) {
  if (std::isnan(t.time_since_epoch().count())) throw std::invalid_argument(std::string(what) + ": the time is NaN");
}
void check_delay(duration d, const char* what) {
  if (std::isnan(d.count())) throw std::invalid_argument(std::string(what) + ": the delay is NaN");
  if (d.count() < 0) throw std::invalid_argument(std::string(what) + ": the delay is negative");
}
detail::runtime& require_runtime(const char* what) {
  detail::runtime* rt = detail::runtime::current();
  if (rt == nullptr) throw std::logic_error(std::string(what) + " must be called on a thread running a weft runtime");
  return *rt;
}
}  // namespace

namespace detail {
time_point deadline_after(duration d) {
  check_delay(d, "weft::timeout");
  return require_runtime("weft::timeout").now() + d;
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

cancel_scope::~cancel_scope() {
  // Destroying an active scope would leave dangling pointers in the cancel
  // tree: only possible by misusing enter() without exit().
  WEFT_INVARIANT(node_.state != detail::scope_node::phase::active);
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

void cancel_scope::enter() {
  detail::task_base& t = detail::require_task("weft::cancel_scope::enter");
  t.rt_->enter_scope(node_, t);
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
  return cancel_scope(require_runtime("weft::move_on_after").now() + d);
}

// --- checkpoints ----------------------------------------------------------------

void coro_yield() {
  detail::task_base& t = detail::require_task("weft::coro_yield");
  t.rt_->yield(t);
  if (t.status_->effectively_cancelled) detail::throw_cancelled(t);
}

void cancel_shielded_coro_yield() {
  detail::task_base& t = detail::require_task("weft::cancel_shielded_coro_yield");
  t.rt_->yield(t);
}

time_point current_time() { return require_runtime("weft::current_time").now(); }

void sleep(duration d) {
  check_delay(d, "weft::sleep");
  detail::task_base& t = detail::require_task("weft::sleep");
  if (d.count() == 0) {
    coro_yield();
    return;
  }
  sleep_until(t.rt_->now() + d);
}

void sleep_until(time_point when) {
  check_not_nan(when, "weft::sleep_until");
  detail::task_base& t = detail::require_task("weft::sleep_until");
  if (when == inf_time) sleep_forever();
  detail::runtime& rt = *t.rt_;
  if (when <= rt.now()) {
    coro_yield();
    return;
  }
  detail::deadline_entry entry;
  entry.when = when;
  entry.owner = &t;
  entry.fire = [](detail::deadline_entry* e) noexcept {
    auto* task = static_cast<detail::task_base*>(e->owner);
    task->rt_->make_ready(*task);
  };
  rt.deadlines().push(entry);
  auto abort = [&]() noexcept {
    rt.deadlines().remove(entry);
    return detail::abort_result::succeeded;
  };
  detail::describe_wait(t, "sleep until", -1, when);
  rt.park(t, abort);
}

void sleep_forever() {
  detail::task_base& t = detail::require_task("weft::sleep_forever");
  auto abort = []() noexcept { return detail::abort_result::succeeded; };
  for (;;) {
    detail::describe_wait(t, "sleep forever");
    t.rt_->park(t, abort);
  }
}

}  // namespace weft

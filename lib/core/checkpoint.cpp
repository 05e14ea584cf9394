// Checkpoints and sleeping (checkpoint.hpp).

#include "core/runtime.hpp"
#include "core/time_checks.hpp"

#include <weft/checkpoint.hpp>

namespace weft {

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
  sleep_until(t.rt_->deadline_in(d));
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
    task->rt_->reschedule(*task);
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

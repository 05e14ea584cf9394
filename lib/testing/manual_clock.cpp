// Virtual time and test helpers.

#include "core/runtime.hpp"
#include "core/stack_pool.hpp"

#include <weft/testing/leak_check.hpp>
#include <weft/testing/manual_clock.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>

#include <cmath>
#include <stdexcept>

namespace weft::testing {

bool manual_clock::try_autojump(time_point next_deadline) {
  if (!autojump_) return false;
  if (next_deadline > now_) now_ = next_deadline;
  return true;
}

void manual_clock::jump(duration d) {
  if (std::isnan(d.count()) || d.count() < 0)
    throw std::invalid_argument("weft::testing::manual_clock::jump: the time can only move forward");
  now_ += d;
  time_changed();
}

void wait_all_tasks_blocked() {
  detail::task_base& me = detail::require_task("weft::testing::wait_all_tasks_blocked");
  detail::lot_entry entry;
  me.rt_->idle_waiters().park(entry, "wait_all_tasks_blocked");
}

std::size_t live_stacks() noexcept { return detail::stack_pool::stacks_in_use(); }
std::size_t mapped_stack_bytes() noexcept { return detail::stack_pool::mapped_bytes(); }
std::size_t stack_slabs_mapped() noexcept { return detail::stack_pool::slabs_mapped(); }

}  // namespace weft::testing

namespace weft::detail {
std::size_t task_objects_alive() noexcept;
}

namespace weft::testing {
std::size_t live_task_objects() noexcept { return detail::task_objects_alive(); }
}  // namespace weft::testing

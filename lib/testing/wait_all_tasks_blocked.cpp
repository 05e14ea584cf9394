// wait_all_tasks_blocked (testing/wait_all_tasks_blocked.hpp).

#include "core/runtime.hpp"

#include <weft/testing/wait_all_tasks_blocked.hpp>

namespace weft::testing {

void wait_all_tasks_blocked() {
  detail::task_base& me = detail::require_task("weft::testing::wait_all_tasks_blocked");
  detail::lot_entry entry;
  me.rt_->idle_waiters().park(entry, "wait_all_tasks_blocked");
}

}  // namespace weft::testing

// The counters leak checks read (testing/leak_check.hpp).

#include "core/runtime.hpp"
#include "core/stack_pool.hpp"
#include "core/task_core.hpp"

#include <weft/testing/leak_check.hpp>

namespace weft::testing {

std::size_t live_stacks() noexcept { return detail::stack_pool::stacks_in_use(); }
std::size_t mapped_stack_bytes() noexcept { return detail::stack_pool::mapped_bytes(); }
std::size_t stack_slabs_mapped() noexcept { return detail::stack_pool::slabs_mapped(); }
std::size_t live_task_objects() noexcept { return detail::task_objects_alive(); }

stack_info current_stack() {
  const detail::task_core& c = detail::core_of(detail::require_task("weft::testing::current_stack"));
  return {c.stack_bottom_, c.stack_size_, c.stack_canary_};
}

}  // namespace weft::testing

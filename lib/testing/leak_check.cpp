// The counters leak checks read (testing/leak_check.hpp).

#include "core/runtime.hpp"
#include "core/stack_pool.hpp"

#include <weft/testing/leak_check.hpp>

namespace weft::testing {

std::size_t live_stacks() noexcept { return detail::stack_pool::stacks_in_use(); }
std::size_t mapped_stack_bytes() noexcept { return detail::stack_pool::mapped_bytes(); }
std::size_t stack_slabs_mapped() noexcept { return detail::stack_pool::slabs_mapped(); }
std::size_t live_task_objects() noexcept { return detail::task_objects_alive(); }

}  // namespace weft::testing

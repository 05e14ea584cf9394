// Private access from the runtime core to task_group internals.
#pragma once

#include <weft/task_group.hpp>

namespace weft::detail {

struct group_access {
  static void child_finished(task_group& g, task_base& t, std::exception_ptr escaped) noexcept;
  static void spawn(task_group& g, task_base* t, task_options&& options);
};

}  // namespace weft::detail

// Private access from the runtime core to task_group internals.
#pragma once

#include <weft/task_group.hpp>

namespace weft::detail {

struct group_access {
  static void child_finished(task_group& g, task_base& t, std::exception_ptr escaped) noexcept;
  static void spawn(task_group& g, task_base* t, task_options&& options);
  static void spawn_in_stack(task_group& g, task_options&& options, std::size_t size, task_constructor construct,
                             void* args);

 private:
  /// Throws if `g` does not accept a task now; makes room for its failure.
  static runtime* admit(task_group& g);
  /// Links the new task `t` (its fiber created) into `g`.
  static void adopt(task_group& g, runtime* rt, task_base* t, task_options&& options) noexcept;
};

}  // namespace weft::detail

// The runtime's own state of a task, kept inside the task object
// (task_base::core_) without being spelled out in the public headers.
#pragma once

#include <weft/detail/core.hpp>

#include <cstddef>
#include <new>
#include <string>

namespace boost::fibers {
class context;
}

namespace weft::detail {

struct task_core {
  std::string explicit_name_;
  boost::fibers::context* ctx_ = nullptr;
  scope_node task_scope_;  // the task's own root scope (task<T>::cancel())
  const abort_fn* abort_ = nullptr;
  task_group* group_ = nullptr;
  task_base* starter_ = nullptr;  // parked in task_group::start() until we run
  parking_lot joiners_;
  std::size_t stack_size_ = 0;
  void* stack_bottom_ = nullptr;
  coro_drive* drive_ = nullptr;      // innermost coroutine chain this task drives
  void* asan_fake_stack_ = nullptr;  // used by AddressSanitizer builds only
  thread_state saved_;               // its exception state and errno while it is switched out
  bool wake_cancelled_ = false;
  bool stack_canary_ = false;  // its stack has a canary instead of a guard (lib/core/stack_guard.hpp)
};

static_assert(sizeof(task_core) == task_core_size && alignof(task_core) <= alignof(void*),
              "weft: task_core_size (weft/detail/core.hpp) must be sizeof(task_core)");

inline task_core& core_of(task_base& t) noexcept { return *std::launder(reinterpret_cast<task_core*>(t.core_)); }
inline const task_core& core_of(const task_base& t) noexcept {
  return *std::launder(reinterpret_cast<const task_core*>(t.core_));
}

}  // namespace weft::detail

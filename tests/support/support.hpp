// Shared test fixtures: run a test body on a runtime with a manual clock,
// and check that nothing was left alive afterwards.
#pragma once

#include <weft/testing/leak_check.hpp>
#include <weft/testing/manual_clock.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>
#include <weft/weft.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace weft_test {

using namespace std::chrono_literals;

/// Seconds since the manual clock's epoch.
inline double now_s() { return weft::current_time().time_since_epoch().count(); }
inline weft::time_point at(double seconds) { return weft::time_point(weft::duration(seconds)); }

/// Checks at the end of a test that no task object or stack is alive.
struct leak_check {
  std::size_t tasks = weft::testing::live_task_objects();
  std::size_t stacks = weft::testing::live_stacks();
  ~leak_check() {
    CHECK_MESSAGE(weft::testing::live_task_objects() == tasks, "task objects leaked");
    CHECK_MESSAGE(weft::testing::live_stacks() == stacks, "task stacks leaked");
  }
};

/// Runs fn as the root task with a manual clock (autojump on unless asked
/// otherwise). fn may take the clock: fn(weft::testing::manual_clock&).
template <class F>
auto run(F&& fn, bool autojump = true) {
  auto clock = std::make_shared<weft::testing::manual_clock>(weft::time_point{}, autojump);
  weft::run_options options;
  options.clock = clock;
  options.stack_size = 64 * 1024;
  if constexpr (std::is_invocable_v<F&, weft::testing::manual_clock&>)
    return weft::run(options, [&] { return fn(*clock); });
  else
    return weft::run(options, [&] { return fn(); });
}

/// The message of a std::exception_ptr holding a std::exception.
inline std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "<non-std exception>";
  }
}

}  // namespace weft_test

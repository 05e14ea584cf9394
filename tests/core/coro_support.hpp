// Fixtures of the coroutine tests: running a weft::coro from task code,
// objects that count how many of them are alive (put in coroutine frames,
// they tell whether the frames were destroyed), and awaitables that are
// not weft's own.
#pragma once

#include "support/support.hpp"

#include <weft/coro.hpp>
#include <weft/lowlevel/park.hpp>

#include <doctest/doctest.h>

#include <coroutine>
#include <stdexcept>
#include <string>
#include <utility>

namespace weft_coro_test {

/// Runs `c` to its end on the current task's fiber and returns its value
/// or rethrows its exception: what greenback::await_ does, through
/// weft::lowlevel::drive_coroutine, so that these tests need nothing from
/// greenback. In a task.
template <class T>
T drive(weft::coro<T> c) {
  REQUIRE(c.valid());
  weft::lowlevel::drive_coroutine(c.handle());
  return c.handle().promise().take();
}

/// Counts the objects of this type that are alive.
struct tracked {
  static inline int alive = 0;
  tracked() noexcept { ++alive; }
  tracked(const tracked&) noexcept { ++alive; }
  ~tracked() { --alive; }
};

using weft_test::test_error;

/// A foreign awaitable (no weft type): it suspends until someone calls
/// resume(), from wherever; then co_await returns `value`.
struct handoff {
  std::coroutine_handle<> waiting;
  int value = 0;
  int suspends = 0;

  struct awaiter {
    handoff& h;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> c) noexcept {
      ++h.suspends;
      h.waiting = c;
    }
    int await_resume() const noexcept { return h.value; }
  };
  awaiter operator co_await() noexcept { return awaiter{*this}; }

  bool waiting_now() const noexcept { return static_cast<bool>(waiting); }
  void resume(int v) {
    REQUIRE(waiting);
    value = v;
    std::exchange(waiting, {}).resume();
  }
};

/// The running task, or an empty ref where there is none.
inline weft::lowlevel::task_ref task_here() {
  try {
    return weft::lowlevel::current_task();
  } catch (const std::logic_error&) {
    return {};
  }
}

}  // namespace weft_coro_test

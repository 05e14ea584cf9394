// Running out of memory: weft's noexcept paths (arming a deadline, recording
// a child's failure) must not allocate, and allocation failures elsewhere
// come out as std::bad_alloc with the runtime still consistent.
//
// This file replaces the global operator new of the core test program with
// one that can be told to fail (off unless a test arms it).

#include "core/coro_support.hpp"
#include "support/replaced_new.hpp"
#include "support/support.hpp"

#include <weft/coro.hpp>

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <thread>

using namespace weft_test;

TEST_CASE("entering a scope with a deadline when memory runs out throws bad_alloc and leaves the runtime consistent") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(5s);
    bool ran = false;
    t_fail_allocations = true;
    try {
      scope.run([&] { ran = true; });
    } catch (const std::bad_alloc&) {
    }
    t_fail_allocations = false;
    CHECK_FALSE(ran);
    // The runtime and its deadline queue still work.
    weft::cancel_scope later = weft::move_on_after(2s);
    later.run([] { weft::sleep(10s); });
    CHECK(later.cancelled_caught());
    CHECK(now_s() == 2);
  });
}

TEST_CASE("a child failing while memory is exhausted is still recorded by its task group") {
  run([] {
    bool saw_failure = false;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([] {
          std::runtime_error e("child failed");  // its message is allocated now, not after arming
          t_fail_allocations = true;
          throw e;
        });
        try {
          weft::sleep(1s);  // cancelled by the child's failure
        } catch (const weft::cancelled&) {
          t_fail_allocations = false;
          throw;
        }
      });
    } catch (const weft::exception_group& g) {
      saw_failure = g.exceptions().size() == 1 && message_of(g.exceptions()[0]) == "child failed";
    }
    t_fail_allocations = false;
    CHECK(saw_failure);
  });
}

TEST_CASE("stacks given back to the pool and trimmed while memory is exhausted need no allocation") {
  const std::size_t stacks_before = weft::testing::live_stacks();
  auto clock = std::make_shared<weft::testing::manual_clock>(weft::time_point{}, true);
  weft::run_options options;
  options.clock = clock;
  options.stack_size = 16 * 1024;
  options.stack_pool_size = 0;  // every stack given back is soon trimmed
  weft::run(options, [] {
    weft::sleep(1s);  // the loop's own first allocations (its wake timer) happen now
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 600; ++i) tg.start_soon([] { weft::sleep(2s); });
      weft::testing::wait_all_tasks_blocked();
      t_fail_allocations = true;  // the children finish, their stacks come back, the pool trims
    });
    weft::sleep(1s);
    t_fail_allocations = false;
  });
  CHECK(weft::testing::live_stacks() == stacks_before);  // all given back
}

TEST_CASE("a coroutine's first foreign await with memory exhausted throws bad_alloc there; the drive goes on") {
  // On a fresh thread, whose pool of recycled coroutine frames is empty:
  // the drive's trampoline frame comes from operator new.
  std::thread([] {
    run([] {
      weft_coro_test::handoff h;
      bool refused = false;
      int got = 0;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          weft_coro_test::drive([&]() -> weft::coro<void> {
            t_fail_allocations = true;
            try {
              co_await h;
            } catch (const std::bad_alloc&) {
              refused = true;
            }
            t_fail_allocations = false;
            got = co_await h;
          }());
        });
        weft::testing::wait_all_tasks_blocked();
        REQUIRE(h.waiting_now());
        h.resume(5);
      });
      CHECK(refused);
      CHECK(h.suspends == 1);  // the refused await started nothing
      CHECK(got == 5);
    });
  }).join();
}

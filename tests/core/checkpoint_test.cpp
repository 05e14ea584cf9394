#include "support/support.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;

namespace {

// True if every entry of `first` comes before every entry of `second` in `log`.
bool all_before(const std::vector<std::string>& log, const std::vector<std::string>& first,
                const std::vector<std::string>& second) {
  auto index = [&](const std::string& s) {
    for (std::size_t i = 0; i < log.size(); ++i)
      if (log[i] == s) return static_cast<long>(i);
    return -1L;
  };
  for (const auto& a : first)
    for (const auto& b : second)
      if (index(a) < 0 || index(b) < 0 || index(a) > index(b)) return false;
  return true;
}


}  // namespace

// --- coro_yield -------------------------------------------------------------------

TEST_CASE("coro_yield lets every other ready task run before it returns") {
  std::vector<std::string> log;
  run([&] {
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        log.push_back("a1");
        weft::coro_yield();
        log.push_back("a2");
      });
      tg.start_soon([&] {
        log.push_back("b1");
        weft::coro_yield();
        log.push_back("b2");
      });
    });
    CHECK(now_s() == 0);
  });
  REQUIRE(log.size() == 4);
  CHECK(all_before(log, {"a1", "b1"}, {"a2", "b2"}));
}

TEST_CASE("coro_yield is a cancel point inside a cancelled scope and nothing more outside one") {
  run([] {
    // Outside any cancelled scope: just a schedule point, no time passes.
    CHECK_NOTHROW(weft::coro_yield());
    CHECK_NOTHROW(weft::checkpoint());
    CHECK(now_s() == 0);

    weft::cancel_scope scope;
    bool after = false;
    scope.run([&] {
      scope.cancel();
      CHECK_THROWS_AS(weft::coro_yield(), weft::cancelled);
      CHECK_THROWS_AS(weft::checkpoint(), weft::cancelled);
      weft::coro_yield();
      after = true;
    });
    CHECK_FALSE(after);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 0);
  });
}

// --- cancel_shielded_coro_yield -----------------------------------------------------

TEST_CASE("cancel_shielded_coro_yield lets other ready tasks run") {
  std::vector<std::string> log;
  run([&] {
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        log.push_back("a1");
        weft::cancel_shielded_coro_yield();
        log.push_back("a2");
      });
      tg.start_soon([&] {
        log.push_back("b1");
        weft::cancel_shielded_coro_yield();
        log.push_back("b2");
      });
    });
  });
  REQUIRE(log.size() == 4);
  CHECK(all_before(log, {"a1", "b1"}, {"a2", "b2"}));
}

TEST_CASE("cancel_shielded_coro_yield is never a cancel point; the cancellation fires at the next real checkpoint") {
  run([] {
    weft::cancel_scope scope;
    int shielded_yields = 0;
    scope.run([&] {
      scope.cancel();
      for (int i = 0; i < 3; ++i) {
        weft::cancel_shielded_coro_yield();
        ++shielded_yields;
      }
      weft::coro_yield();
      FAIL("the real checkpoint after the shielded yields did not throw");
    });
    CHECK(shielded_yields == 3);
    CHECK(scope.cancel_called());
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("a cancellation arriving during cancel_shielded_coro_yield is kept for the next real checkpoint") {
  run([] {
    weft::cancel_scope scope;
    bool in_scope = false;
    bool returned_normally = false;
    bool cancelled_meanwhile = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          in_scope = true;
          weft::cancel_shielded_coro_yield();  // the other task cancels the scope meanwhile
          returned_normally = true;
          cancelled_meanwhile = scope.cancel_called();
          weft::sleep(1s);
          FAIL("the checkpoint after the shielded yield did not throw");
        });
      });
      tg.start_soon([&] {
        while (!in_scope) weft::coro_yield();
        scope.cancel();
      });
    });
    CHECK(returned_normally);
    CHECK(cancelled_meanwhile);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 0);
  });
}

// --- sleep, sleep_until, sleep_forever ------------------------------------------------

TEST_CASE("sleep rejects negative and NaN durations and sleep_until rejects a NaN time") {
  run([] {
    CHECK_THROWS_AS(weft::sleep(-1s), std::invalid_argument);
    CHECK_THROWS_AS(weft::sleep(weft::duration(-1e-9)), std::invalid_argument);
    CHECK_THROWS_AS(weft::sleep(weft::duration(nan_seconds)), std::invalid_argument);
    CHECK_THROWS_AS(weft::sleep_until(at(nan_seconds)), std::invalid_argument);
    CHECK(now_s() == 0);
  });
}

TEST_CASE("sleep blocks for exactly the given runtime-clock time") {
  run([] {
    weft::sleep(1.5s);
    CHECK(now_s() == 1.5);
    weft::sleep(std::chrono::milliseconds(250));
    CHECK(now_s() == 1.75);
  });
}

TEST_CASE("sleep(0) is one plain checkpoint: a schedule point and a cancel point that takes no time") {
  std::vector<std::string> log;
  run([&] {
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        log.push_back("a1");
        weft::sleep(0s);
        log.push_back("a2");
      });
      tg.start_soon([&] {
        log.push_back("b1");
        weft::sleep(0s);
        log.push_back("b2");
      });
    });
    CHECK(now_s() == 0);

    weft::cancel_scope scope;
    scope.run([&] {
      scope.cancel();
      weft::sleep(0s);
      FAIL("sleep(0) in a cancelled scope did not throw");
    });
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 0);
  });
  REQUIRE(log.size() == 4);
  CHECK(all_before(log, {"a1", "b1"}, {"a2", "b2"}));
}

TEST_CASE("sleep in a cancelled scope throws at once without waiting") {
  run([] {
    weft::cancel_scope scope;
    scope.run([&] {
      scope.cancel();
      weft::sleep(10s);
    });
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 0);
  });
}

TEST_CASE("sleep_until a future time wakes exactly at that time") {
  run([] {
    weft::sleep_until(at(7.25));
    CHECK(now_s() == 7.25);
  });
}

TEST_CASE("sleep_until a time in the past or the present is one checkpoint and does not move the time") {
  std::vector<std::string> log;
  run([&] {
    weft::sleep(5s);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        log.push_back("a1");
        weft::sleep_until(at(1));
        log.push_back("a2");
      });
      tg.start_soon([&] {
        log.push_back("b1");
        weft::sleep_until(at(5));
        log.push_back("b2");
      });
    });
    CHECK(now_s() == 5);

    weft::cancel_scope scope;
    scope.run([&] {
      scope.cancel();
      weft::sleep_until(at(2));
      FAIL("sleep_until in the past did not throw in a cancelled scope");
    });
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 5);
  });
  REQUIRE(log.size() == 4);
  CHECK(all_before(log, {"a1", "b1"}, {"a2", "b2"}));
}

TEST_CASE("sleep_forever ends only when its scope is cancelled, by a deadline or by another task") {
  run([] {
    // Other tasks waking, sleeping and finishing around it do not end it.
    int others_done = 0;
    bool ended = false;
    weft::cancel_scope scope = weft::move_on_after(10s);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          weft::sleep_forever();
          FAIL("sleep_forever returned");
        });
        ended = true;
      });
      for (int i = 1; i <= 3; ++i) {
        tg.start_soon([&, i] {
          weft::sleep(weft::duration(i));
          weft::coro_yield();
          ++others_done;
        });
      }
    });
    CHECK(others_done == 3);
    CHECK(ended);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 10);

    // Cancelled explicitly from another task.
    weft::cancel_scope explicit_scope;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { explicit_scope.run([] { weft::sleep_forever(); }); });
      tg.start_soon([&] {
        weft::sleep(2s);
        explicit_scope.cancel();
      });
    });
    CHECK(explicit_scope.cancelled_caught());
    CHECK(now_s() == 12);
  });
}

// --- current_time -----------------------------------------------------------------

TEST_CASE("current_time is the runtime clock's time") {
  auto clock = std::make_shared<weft::testing::manual_clock>(at(100));
  weft::run_options options;
  options.clock = clock;
  weft::run(options, [&] {
    CHECK(weft::current_time() == clock->now());
    CHECK(now_s() == 100);
    clock->jump(2.5s);
    CHECK(weft::current_time() == clock->now());
    CHECK(now_s() == 102.5);
    clock->set_autojump(true);
    weft::sleep(1s);
    CHECK(weft::current_time() == clock->now());
    CHECK(now_s() == 103.5);
  });
}

TEST_CASE("current_time never goes backwards") {
  run([](weft::testing::manual_clock& clock) {
    weft::time_point last = weft::current_time();
    for (int i = 0; i < 5; ++i) {
      clock.jump(weft::duration(0.5 * i));
      weft::coro_yield();
      const weft::time_point now = weft::current_time();
      CHECK(now >= last);
      last = now;
    }
    CHECK(now_s() == 5);
  }, false);
  // On the real clock too.
  weft::run([] {
    weft::time_point last = weft::current_time();
    for (int i = 0; i < 100; ++i) {
      weft::coro_yield();
      const weft::time_point now = weft::current_time();
      CHECK(now >= last);
      last = now;
    }
  });
}

TEST_CASE("current_time is not a checkpoint") {
  run([] {
    weft::cancel_scope scope;
    bool reached_checkpoint = false;
    scope.run([&] {
      scope.cancel();
      CHECK_NOTHROW(weft::current_time());
      CHECK_NOTHROW(weft::current_time());
      reached_checkpoint = true;
      weft::coro_yield();
    });
    CHECK(reached_checkpoint);
    CHECK(scope.cancelled_caught());
  });
}

// Cleanup that parks in a task being cancelled: a destructor whose blocking
// call throws weft::cancelled ends the program (a destructor is noexcept);
// weft::shielded runs such cleanup immune to the task's cancellation, with
// an optional time limit so that a stuck cleanup cannot hang the task's end.
#include "support/child_process.hpp"
#include "support/support.hpp"

#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

using namespace weft_test;

namespace {

// Stands for an object whose destructor flushes or closes through an async
// API (greenback::await_ in legacy code): here a weft::sleep, a checkpoint.
struct flushes_on_destruction {
  bool shield;
  bool* flushed;
  ~flushes_on_destruction() {
    if (shield) {
      weft::shielded([&] {
        weft::sleep(2s);
        *flushed = true;
      });
    } else {
      weft::sleep(2s);  // throws weft::cancelled in a cancelled task: std::terminate
      *flushed = true;
    }
  }
};

void unshielded_destructor_in_cancelled_task() {
  weft::run([] {
    weft::cancel_scope scope;
    bool flushed = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          flushes_on_destruction guard{false, &flushed};
          weft::sleep(10s);
        });
      });
      weft::sleep(1s);
      scope.cancel();
    });
  });
}
const child_scenario unshielded_scenario{"a destructor parks in a cancelled task, unshielded",
                                         unshielded_destructor_in_cancelled_task};

}  // namespace

TEST_CASE("without a shield, a destructor that parks in a cancelled task ends the program") {
  const child_outcome o = run_child("a destructor parks in a cancelled task, unshielded");
  INFO(o.describe());
  CHECK(o.killed_by(SIGABRT));
  CHECK(o.err.find("weft::cancelled") != std::string::npos);
}

TEST_CASE("weft::shielded: a destructor's cleanup that parks completes in a cancelled task") {
  run([] {
    weft::cancel_scope scope;
    bool flushed = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          flushes_on_destruction guard{true, &flushed};
          weft::sleep(10s);
        });
      });
      weft::sleep(1s);
      scope.cancel();
    });
    CHECK(flushed);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 3);  // cancelled at 1 s, then the 2 s cleanup ran in full
  });
}

TEST_CASE("weft::shielded with a limit cuts a stuck cleanup short and reports it, without throwing cancelled") {
  run([] {
    weft::cancel_scope scope;
    std::optional<bool> finished;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          struct stuck_cleanup {
            std::optional<bool>* finished;
            ~stuck_cleanup() {
              weft::event never;
              *finished = weft::shielded(5s, [&] { never.wait(); });
            }
          } guard{&finished};
          weft::sleep(10s);
        });
      });
      weft::sleep(1s);
      scope.cancel();
    });
    REQUIRE(finished.has_value());
    CHECK_FALSE(*finished);
    CHECK(now_s() == 6);  // cancelled at 1 s, cleanup given up 5 s later
  });
}

TEST_CASE("weft::shielded with a limit returns the value of a cleanup that finishes in time") {
  run([] {
    CHECK(weft::shielded(5s, [] { weft::sleep(1s); }));
    const std::optional<int> v = weft::shielded(5s, [] {
      weft::sleep(1s);
      return 42;
    });
    CHECK(v == 42);
    const std::optional<int> late = weft::shielded(1s, [] {
      weft::sleep(5s);
      return 1;
    });
    CHECK_FALSE(late.has_value());
    CHECK(now_s() == 3);
  });
}

TEST_CASE("weft::shielded lets the cleanup's own errors through and keeps the outer cancellation for later") {
  run([] {
    weft::cancel_scope scope;
    scope.run([&] {
      scope.cancel();
      CHECK_THROWS_WITH_AS(weft::shielded(5s, [] {
                             weft::sleep(1s);  // not cancelled: shielded
                             throw std::runtime_error("flush failed");
                           }),
                           "flush failed", std::runtime_error);
      weft::checkpoint();  // the outer cancellation is still there
      FAIL("not cancelled");
    });
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 1);
  });
}

TEST_CASE("weft::shielded rejects a negative or NaN limit") {
  run([] {
    CHECK_THROWS_AS(weft::shielded(weft::duration(-1), [] {}), std::invalid_argument);
    CHECK_THROWS_AS(weft::shielded(weft::duration(std::nan("")), [] {}), std::invalid_argument);
  });
}

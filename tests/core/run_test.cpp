#include "support/support.hpp"

#include <boost/fiber/future.hpp>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>

using namespace weft_test;

TEST_CASE("run returns the root task's value") {
  CHECK(weft::run([] { return 42; }) == 42);
  CHECK(weft::run([](int a, int b) { return a + b; }, 2, 3) == 5);
}

TEST_CASE("run rethrows the root task's exception") {
  CHECK_THROWS_WITH_AS(weft::run([] { throw std::runtime_error("boom"); }), "boom", std::runtime_error);
}

TEST_CASE("bootstrap is run") {
  CHECK(weft::bootstrap([] { return std::string("ok"); }) == "ok");
}

TEST_CASE("a second runtime on a thread already running one is a clear error") {
  weft::run([] {
    CHECK_THROWS_WITH_AS(weft::run([] { return 1; }),
                         doctest::Contains("already running a weft runtime"), std::logic_error);
  });
}

TEST_CASE("runtimes run one after another on one thread and side by side on two") {
  for (int i = 0; i < 3; ++i) CHECK(weft::run([i] { weft::coro_yield(); return i; }) == i);
  int a = 0, b = 0;
  std::thread other([&] { a = weft::run([] { weft::sleep(std::chrono::milliseconds(1)); return 1; }); });
  b = weft::run([] { weft::sleep(std::chrono::milliseconds(1)); return 2; });
  other.join();
  CHECK(a == 1);
  CHECK(b == 2);
}

TEST_CASE("a runtime whose root task gets no stack throws that error and leaves nothing behind") {
  weft::run_options options;
  options.stack_size = std::size_t(1) << 62;  // no such stack
  bool ran = false;
  CHECK_THROWS(weft::run(options, [&] { ran = true; }));
  CHECK_FALSE(ran);
  CHECK(weft::run([] { return 1; }) == 1);  // the thread is free for the next runtime
}

TEST_CASE("run options pass through: clock, stack size, guarded stacks") {
  auto clock = std::make_shared<weft::testing::manual_clock>(at(100));
  weft::run_options options;
  options.clock = clock;
  options.stack_size = 32 * 1024;
  options.stacks = weft::stack_kind::guarded;
  weft::run(options, [] {
    CHECK(now_s() == 100);
    weft::open_task_group([](weft::task_group& tg) {
      tg.start_soon(weft::task_options{.name = "big", .stack_size = 1 << 20}, [] {
        volatile char buffer[512 * 1024];
        buffer[0] = 1;
        buffer[sizeof(buffer) - 1] = buffer[0];
      });
    });
  });
}

TEST_CASE("blocking calls outside a task are clear errors") {
  CHECK_THROWS_WITH_AS(weft::coro_yield(), doctest::Contains("must be called from a weft task"), std::logic_error);
  CHECK_THROWS_AS(weft::sleep(1s), std::logic_error);
  CHECK_THROWS_AS(weft::current_time(), std::logic_error);
  CHECK_THROWS_AS(weft::get_current_task(), std::logic_error);
}

TEST_CASE("an idle runtime sleeps in the reactor and wakes for a real deadline") {
  const auto start = std::chrono::steady_clock::now();
  weft::run([] { weft::sleep(20ms); });
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 20ms);  // a lower bound only: a sleep never ends early
}

TEST_CASE("a fiber made ready from another thread runs while other tasks keep the loop busy") {
  // A Boost.Fiber promise fulfilled on another thread makes the waiting
  // fiber ready "remotely"; the runtime must take it in even though its
  // ready queue never empties.
  std::atomic<bool> set{false};
  bool woke = false;
  long yields_after_set = 0;
  boost::fibers::promise<int> promise;
  boost::fibers::future<int> future = promise.get_future();
  std::thread other;
  weft::run([&] {
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        CHECK(future.get() == 7);
        woke = true;
      });
      for (int i = 0; i < 2; ++i) {
        tg.start_soon([&] {
          while (!woke) {
            if (set.load() && ++yields_after_set > 1'000'000) break;  // starved: give up
            weft::coro_yield();
          }
        });
      }
      other = std::thread([&] {
        promise.set_value(7);
        set = true;
      });
    });
  });
  other.join();
  CHECK(woke);
  CHECK(yields_after_set < 1'000'000);
}

TEST_CASE("finished tasks give their stacks back while other tasks keep the loop busy") {
  const std::size_t before = weft::testing::live_stacks();
  std::size_t most = 0;
  weft::run([&] {
    bool done = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        while (!done) weft::coro_yield();  // never lets the ready queue empty
      });
      for (int i = 0; i < 5000; ++i) {
        tg.start_soon([] {});
        weft::coro_yield();
        most = std::max(most, weft::testing::live_stacks() - before);
      }
      done = true;
    });
  });
  // The root, the spinner, and a bounded number of finished-but-not-yet-
  // released children (released every reactor pass at the latest).
  CHECK(most < 200);
}

// --- the stall watchdog -----------------------------------------------------------

namespace {
// Spins without a checkpoint until `done` says so; real time is the subject
// here (the watchdog measures it), bounded by the backstop.
template <class Done>
void spin_until(Done&& done) {
  while (!done()) {
  }
}
}  // namespace

TEST_CASE("the stall watchdog reports a task that runs without a checkpoint, once per stall") {
  hang_backstop backstop(std::chrono::seconds(20), "waiting for the stall report");
  stderr_capture err;
  weft::run_options options;
  options.stall_warning = std::chrono::milliseconds(30);
  const std::string line = "weft: task busy worker has run ";
  std::string after_first, after_second;
  weft::run(options, [&] {
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon(
          weft::task_options{"busy worker"}, [&] {
            spin_until([&] { return count_of(err.text(), line) >= 1; });
            // Keep stalling for several thresholds more: still one report.
            const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(150);
            spin_until([&] { return std::chrono::steady_clock::now() >= until; });
            after_first = err.text();
            weft::checkpoint();  // ends the stall
            spin_until([&] { return count_of(err.text(), line) >= 2; });
            after_second = err.text();
          });
    });
  });
  CHECK(count_of(after_first, line) == 1);
  CHECK(count_of(after_second, line) == 2);
  CHECK(count_of(after_second, " ms without a checkpoint (task id ") == 2);
}

TEST_CASE("the stall watchdog does not report an idle runtime") {
  stderr_capture err;
  weft::run_options options;
  options.stall_warning = std::chrono::milliseconds(20);
  weft::run(options, [&] { weft::sleep(weft::duration(0.15)); });  // real clock: the loop blocks in the reactor
  CHECK(count_of(err.text(), "without a checkpoint") == 0);
}

TEST_CASE("a negative stall_warning is refused") {
  weft::run_options options;
  options.stall_warning = std::chrono::milliseconds(-1);
  CHECK_THROWS_AS(weft::run(options, [] {}), std::invalid_argument);
}

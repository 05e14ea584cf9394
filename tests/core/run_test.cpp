#include "support/support.hpp"

#include <stdexcept>
#include <thread>

using namespace weft_test;

TEST_CASE("run returns the root task's value") {
  leak_check lc;
  CHECK(weft::run([] { return 42; }) == 42);
  CHECK(weft::run([](int a, int b) { return a + b; }, 2, 3) == 5);
}

TEST_CASE("run rethrows the root task's exception") {
  leak_check lc;
  CHECK_THROWS_WITH_AS(weft::run([] { throw std::runtime_error("boom"); }), "boom", std::runtime_error);
}

TEST_CASE("bootstrap is run") {
  leak_check lc;
  CHECK(weft::bootstrap([] { return std::string("ok"); }) == "ok");
}

TEST_CASE("a second runtime on a thread already running one is a clear error") {
  leak_check lc;
  weft::run([] {
    CHECK_THROWS_WITH_AS(weft::run([] { return 1; }),
                         doctest::Contains("already running a weft runtime"), std::logic_error);
  });
}

TEST_CASE("runtimes run one after another on one thread and side by side on two") {
  leak_check lc;
  for (int i = 0; i < 3; ++i) CHECK(weft::run([i] { weft::coro_yield(); return i; }) == i);
  int a = 0, b = 0;
  std::thread other([&] { a = weft::run([] { weft::sleep(std::chrono::milliseconds(1)); return 1; }); });
  b = weft::run([] { weft::sleep(std::chrono::milliseconds(1)); return 2; });
  other.join();
  CHECK(a == 1);
  CHECK(b == 2);
}

TEST_CASE("run options pass through: clock, stack size, guarded stacks") {
  leak_check lc;
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
  leak_check lc;
  const auto start = std::chrono::steady_clock::now();
  weft::run([] { weft::sleep(20ms); });
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 20ms);  // a lower bound only: a sleep never ends early
}

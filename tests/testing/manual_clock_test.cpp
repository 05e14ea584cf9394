#include "support/support.hpp"

#include <cmath>

using namespace weft_test;

TEST_CASE("jump moves the time and fires due deadlines at once") {
  run(
      [](weft::testing::manual_clock& clock) {
        CHECK(now_s() == 0);
        bool woke = false;
        weft::open_task_group([&](weft::task_group& tg) {
          tg.start_soon([&] {
            weft::sleep(5s);
            woke = true;
          });
          weft::testing::wait_all_tasks_blocked();
          clock.jump(4s);
          weft::testing::wait_all_tasks_blocked();
          CHECK_FALSE(woke);
          clock.jump(1s);
          weft::testing::wait_all_tasks_blocked();
          CHECK(woke);
        });
        CHECK(now_s() == 5);
      },
      false);
}

TEST_CASE("jump rejects negative and NaN durations") {
  weft::testing::manual_clock clock;
  CHECK_THROWS_AS(clock.jump(-1s), std::invalid_argument);
  CHECK_THROWS_AS(clock.jump(weft::duration(std::nan(""))), std::invalid_argument);
}

TEST_CASE("autojump advances to the next deadline when every task is blocked") {
  run([] {
    weft::sleep(3600s);
    CHECK(now_s() == 3600);
    weft::sleep(0.25s);
    CHECK(now_s() == 3600.25);
  });
}

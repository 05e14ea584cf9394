#include "support/support.hpp"

#include <weft/sync/semaphore.hpp>
#include <weft/testing/sequencer.hpp>

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;

TEST_CASE("a semaphore whose initial value exceeds its maximum is rejected") {
  CHECK_THROWS_AS(weft::semaphore(3, 2), std::invalid_argument);
  CHECK_THROWS_AS(weft::semaphore(1, 0), std::invalid_argument);
  weft::semaphore full(2, 2);
  CHECK(full.value() == 2);
  CHECK(full.max_value() == 2);
  weft::semaphore unbounded(5);
  CHECK(unbounded.value() == 5);
  CHECK(unbounded.max_value() == std::numeric_limits<std::size_t>::max());
  CHECK(unbounded.waiting() == 0);
}

TEST_CASE("acquire takes available units, then blocks until a release") {
  run([] {
    weft::semaphore sem(2);
    sem.acquire();
    sem.acquire();
    CHECK(sem.value() == 0);
    CHECK_FALSE(sem.try_acquire());
    double got_at = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        sem.acquire();
        got_at = now_s();
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK(sem.waiting() == 1);
      weft::sleep(4s);
      CHECK(got_at == -1);
      sem.release();
      CHECK(sem.value() == 0);  // handed to the waiter, not added to the count
      CHECK(sem.waiting() == 0);
    });
    CHECK(got_at == 4);
    sem.release();
    sem.release();
    CHECK(sem.value() == 2);
    CHECK(sem.try_acquire());
    CHECK(sem.value() == 1);
  });
}

TEST_CASE("acquiring an available unit with nobody waiting does not yield") {
  run([] {
    weft::semaphore sem(1);
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { order.push_back("other task"); });
      sem.acquire();
      order.push_back("acquired");
      sem.release();
    });
    CHECK(order == std::vector<std::string>{"acquired", "other task"});
  });
}

TEST_CASE("released units are handed to the waiters in the order they arrived, ahead of newcomers") {
  run([] {
    weft::semaphore sem(0);
    weft::testing::sequencer seq;
    std::vector<int> acquired;
    const std::vector<std::size_t> arrival = {1, 3, 0, 2};  // arrival position of task i
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 4; ++i) {
        tg.start_soon([&, i] {
          seq(arrival[i], [] {});
          sem.acquire();  // no checkpoint after its turn: queued in sequencer order
          acquired.push_back(i);
        });
      }
      weft::testing::wait_all_tasks_blocked();
      CHECK(sem.waiting() == 4);
      sem.release();
      CHECK_FALSE(sem.try_acquire());  // the unit went to the first waiter already
      weft::testing::wait_all_tasks_blocked();
      CHECK(acquired == std::vector<int>{2});
      sem.release();
      sem.release();
      weft::testing::wait_all_tasks_blocked();
      CHECK(acquired == std::vector<int>{2, 0, 3});
      sem.release();
    });
    CHECK(acquired == std::vector<int>{2, 0, 3, 1});
    CHECK(sem.value() == 0);
    CHECK(sem.waiting() == 0);
  });
}

TEST_CASE("releasing beyond the maximum is a logic error and changes nothing") {
  run([] {
    weft::semaphore sem(0, 1);
    sem.release();
    CHECK(sem.value() == 1);
    CHECK_THROWS_AS(sem.release(), std::logic_error);
    CHECK(sem.value() == 1);
    sem.acquire();
    CHECK(sem.value() == 0);
    sem.release();
    CHECK(sem.value() == 1);

    weft::semaphore at_max(2, 2);
    CHECK_THROWS_AS(at_max.release(), std::logic_error);
    CHECK(at_max.value() == 2);
  });
}

TEST_CASE("a release at the maximum value still succeeds when it hands the unit to a waiter") {
  run([] {
    weft::semaphore sem(0, 0);  // never holds a unit, but can pass one along
    bool got = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        sem.acquire();
        got = true;
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK_NOTHROW(sem.release());
      CHECK_THROWS_AS(sem.release(), std::logic_error);  // nobody waits now
    });
    CHECK(got);
    CHECK(sem.value() == 0);
  });
}

TEST_CASE("a cancelled acquire leaves the queue clean and loses no unit") {
  run([] {
    weft::semaphore sem(0);
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        auto scope = weft::move_on_after(2s);
        scope.run([&] {
          sem.acquire();
          order.push_back("first acquired");
        });
        if (scope.cancelled_caught()) order.push_back("first cancelled at " + std::to_string(int(now_s())));
      });
      tg.start_soon([&] {
        sem.acquire();
        order.push_back("second acquired at " + std::to_string(int(now_s())));
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK(sem.waiting() == 2);
      weft::sleep(3s);
      CHECK(sem.waiting() == 1);  // the cancelled waiter left the queue
      sem.release();              // goes to the second waiter, not to the cancelled one
      CHECK(sem.waiting() == 0);
    });
    CHECK(order == std::vector<std::string>{"first cancelled at 2", "second acquired at 3"});
    CHECK(sem.value() == 0);
    sem.release();
    CHECK(sem.value() == 1);  // no waiter left to take it
  });
}

TEST_CASE("a waiter cancelled as a unit is released keeps the unit only if the release came first") {
  bool cancel_first = false;
  SUBCASE("cancel, then release") { cancel_first = true; }
  SUBCASE("release, then cancel") { cancel_first = false; }
  run([&] {
    weft::semaphore sem(0);
    weft::cancel_scope scope;
    bool got = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          sem.acquire();
          got = true;
        });
      });
      weft::testing::wait_all_tasks_blocked();
      if (cancel_first) {
        scope.cancel();
        sem.release();
      } else {
        sem.release();
        scope.cancel();
      }
    });
    CHECK(got == !cancel_first);
    // The unit is either the waiter's or back in the semaphore: never lost, never doubled.
    CHECK(sem.value() == (cancel_first ? 1u : 0u));
    CHECK(sem.waiting() == 0);
  });
}

TEST_CASE("acquiring an available unit in a cancelled scope raises cancelled and takes no unit") {
  run([] {
    weft::semaphore sem(1);
    bool got = false;
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] {
      sem.acquire();
      got = true;
    });
    CHECK_FALSE(got);
    CHECK(scope.cancelled_caught());
    CHECK(sem.value() == 1);
    CHECK(sem.try_acquire());
  });
}

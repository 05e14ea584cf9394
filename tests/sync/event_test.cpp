#include "support/support.hpp"

#include <weft/sync/event.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;

TEST_CASE("an event starts unset, and set() sets it for good") {
  run([] {
    weft::event ev;
    CHECK_FALSE(ev.is_set());
    ev.set();
    CHECK(ev.is_set());
    ev.set();  // idempotent
    CHECK(ev.is_set());
    weft::checkpoint();
    CHECK(ev.is_set());
  });
}

TEST_CASE("wait blocks until the event is set") {
  run([] {
    weft::event ev;
    double woke_at = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        ev.wait();
        woke_at = now_s();
        CHECK(ev.is_set());
      });
      weft::sleep(2s);
      CHECK(woke_at == -1);
      ev.set();
    });
    CHECK(woke_at == 2);
  });
}

TEST_CASE("set wakes every waiter") {
  run([] {
    weft::event ev;
    std::vector<int> woken;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 3; ++i) {
        tg.start_soon([&, i] {
          ev.wait();
          woken.push_back(i);
        });
      }
      weft::testing::wait_all_tasks_blocked();
      CHECK(woken.empty());
      ev.set();
      CHECK(woken.empty());  // set() is not a checkpoint: nobody ran yet
      weft::testing::wait_all_tasks_blocked();
      CHECK(woken == std::vector<int>{0, 1, 2});
    });
    CHECK(now_s() == 0);
  });
}

TEST_CASE("wait on an event that is already set returns at once without yielding") {
  run([] {
    weft::event ev;
    ev.set();
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { order.push_back("other task"); });  // ready, waiting for a switch
      ev.wait();
      order.push_back("waited");
      ev.wait();
      order.push_back("waited again");
    });
    CHECK(order == std::vector<std::string>{"waited", "waited again", "other task"});
  });
}

TEST_CASE("wait on a set event in a cancelled scope raises cancelled: it is a checkpoint") {
  run([] {
    weft::event ev;
    ev.set();
    bool returned = false;
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] {
      ev.wait();
      returned = true;
    });
    CHECK_FALSE(returned);
    CHECK(scope.cancelled_caught());
    ev.wait();  // outside the scope it returns at once
    CHECK(ev.is_set());
  });
}

TEST_CASE("a blocked wait is cancelled by a scope deadline and the event still works afterwards") {
  run([] {
    weft::event ev;
    bool returned = false;
    bool later_waiter_woke = false;
    auto scope = weft::move_on_after(3s);
    scope.run([&] {
      ev.wait();
      returned = true;
    });
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(returned);
    CHECK(now_s() == 3);
    CHECK_FALSE(ev.is_set());
    // The cancelled waiter left no trace: a later waiter is woken normally.
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        ev.wait();
        later_waiter_woke = true;
      });
      weft::testing::wait_all_tasks_blocked();
      ev.set();
    });
    CHECK(later_waiter_woke);
  });
}

TEST_CASE("cancelling one waiter leaves the others waiting for the event") {
  run([] {
    weft::event ev;
    weft::cancel_scope first;
    std::vector<std::string> outcome;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        first.run([&] { ev.wait(); });
        outcome.push_back(first.cancelled_caught() ? "first cancelled" : "first woke");
      });
      tg.start_soon([&] {
        ev.wait();
        outcome.push_back("second woke");
      });
      weft::testing::wait_all_tasks_blocked();
      first.cancel();
      weft::testing::wait_all_tasks_blocked();
      CHECK(outcome == std::vector<std::string>{"first cancelled"});
      ev.set();
    });
    CHECK(outcome == std::vector<std::string>{"first cancelled", "second woke"});
  });
}

TEST_CASE("waiting on an unset event outside a task is a logic error") {
  weft::event ev;
  CHECK_THROWS_AS(ev.wait(), std::logic_error);
  CHECK_FALSE(ev.is_set());
}

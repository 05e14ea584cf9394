#include "support/support.hpp"

#include <weft/sync/condition_variable.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/lock.hpp>
#include <weft/testing/sequencer.hpp>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;

// Constructing a condition_variable over any lock type other than weft::lock
// or weft::fair_lock (a std::mutex, say) is rejected at compile time by a
// static_assert, so it has no run-time test.

TEST_CASE("the lock API of a condition variable acts on its lock") {
  run([] {
    weft::lock l;
    weft::condition_variable cv(l);
    CHECK_FALSE(cv.locked());
    cv.acquire();
    CHECK(cv.locked());
    CHECK(l.locked());
    CHECK_FALSE(cv.try_acquire());
    cv.release();
    CHECK_FALSE(cv.locked());
    CHECK_FALSE(l.locked());
    CHECK(cv.try_acquire());
    CHECK(l.locked());
    l.release();  // the same lock, released through the other name
    CHECK_FALSE(cv.locked());
    CHECK_THROWS_AS(cv.release(), std::logic_error);
    {
      std::unique_lock<weft::condition_variable> ul(cv);
      CHECK(l.locked());
    }
    CHECK_FALSE(l.locked());

    weft::condition_variable own;  // with its own lock
    own.acquire();
    CHECK(own.locked());
    CHECK_FALSE(l.locked());
    own.release();
    CHECK_FALSE(own.locked());
  });
}

TEST_CASE("wait releases the lock while blocked and returns holding it again after notify") {
  run([] {
    weft::condition_variable cv;
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        cv.acquire();
        order.push_back("waiting");
        cv.wait();
        order.push_back("woken");
        CHECK(cv.locked());
        CHECK_NOTHROW(cv.release());  // only the owner may release
      });
      weft::testing::wait_all_tasks_blocked();
      REQUIRE(order == std::vector<std::string>{"waiting"});
      CHECK_FALSE(cv.locked());  // released by wait
      cv.acquire();
      cv.notify();
      weft::testing::wait_all_tasks_blocked();
      // Notified, but the lock is ours: the waiter cannot return yet.
      CHECK(order == std::vector<std::string>{"waiting"});
      weft::sleep(2s);
      cv.release();
      weft::testing::wait_all_tasks_blocked();
      CHECK(order == std::vector<std::string>{"waiting", "woken"});
      CHECK(now_s() == 2);
    });
    CHECK_FALSE(cv.locked());
  });
}

TEST_CASE("notify(n) wakes n waiters in the order they started waiting, and notify_all wakes the rest") {
  run([] {
    weft::condition_variable cv;
    weft::testing::sequencer seq;
    std::vector<int> woken;
    const std::vector<std::size_t> arrival = {3, 1, 4, 0, 2};  // arrival position of task i
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 5; ++i) {
        tg.start_soon([&, i] {
          seq(arrival[i], [] {});
          cv.acquire();  // free: every earlier waiter released it in wait
          cv.wait();
          woken.push_back(i);
          cv.release();
        });
      }
      weft::testing::wait_all_tasks_blocked();
      REQUIRE(woken.empty());
      cv.notify(0);
      weft::testing::wait_all_tasks_blocked();
      CHECK(woken.empty());
      cv.notify(2);  // notify does not need the lock
      weft::testing::wait_all_tasks_blocked();
      CHECK(woken == std::vector<int>{3, 1});
      cv.notify();
      weft::testing::wait_all_tasks_blocked();
      CHECK(woken == std::vector<int>{3, 1, 4});
      cv.notify_all();
      weft::testing::wait_all_tasks_blocked();
      CHECK(woken == std::vector<int>{3, 1, 4, 0, 2});
      cv.notify(10);  // nobody left: harmless
    });
    CHECK(woken.size() == 5);
  });
}

TEST_CASE("a notification with nobody waiting is not remembered") {
  run([] {
    weft::condition_variable cv;
    cv.notify();
    cv.notify_all();
    cv.acquire();
    bool returned = false;
    auto scope = weft::move_on_after(1s);
    scope.run([&] {
      cv.wait();
      returned = true;
    });
    CHECK_FALSE(returned);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 1);
    CHECK_NOTHROW(cv.release());
  });
}

TEST_CASE("wait without holding the lock is a logic error") {
  run([] {
    weft::condition_variable cv;
    CHECK_THROWS_WITH_AS(cv.wait(), doctest::Contains("must hold the lock"), std::logic_error);
    CHECK_FALSE(cv.locked());
    weft::event done;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        cv.acquire();
        done.wait();
        cv.release();
      });
      weft::testing::wait_all_tasks_blocked();
      REQUIRE(cv.locked());
      // Held, but by another task.
      CHECK_THROWS_AS(cv.wait(), std::logic_error);
      CHECK(cv.locked());
      done.set();
    });
    CHECK_FALSE(cv.locked());
  });
}

TEST_CASE("wait outside a task is a logic error") {
  weft::condition_variable cv;
  CHECK_THROWS_AS(cv.wait(), std::logic_error);
}

TEST_CASE("a cancelled wait throws cancelled only once the lock is held again") {
  run([] {
    weft::condition_variable cv;
    bool caught = false;
    bool owner_in_handler = false;
    double thrown_at = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        cv.acquire();
        auto scope = weft::move_on_after(3s);
        scope.run([&] {
          try {
            cv.wait();
          } catch (const weft::cancelled&) {
            thrown_at = now_s();
            CHECK(cv.locked());
            try {
              cv.release();  // throws std::logic_error unless this task holds the lock
              owner_in_handler = true;
              weft::ignore_cancellation([&] { cv.acquire(); });  // acquire is a checkpoint
            } catch (const std::logic_error&) {
            }
            throw;
          }
        });
        caught = scope.cancelled_caught();
        CHECK_NOTHROW(cv.release());
      });
      weft::testing::wait_all_tasks_blocked();
      cv.acquire();     // hold the lock across the waiter's deadline
      weft::sleep(5s);  // the deadline passes at t=3
      CHECK(thrown_at == -1);
      cv.release();
    });
    CHECK(caught);
    CHECK(owner_in_handler);
    CHECK(thrown_at == 5);
    CHECK_FALSE(cv.locked());
  });
}

TEST_CASE("a wait cancelled with the lock free holds the lock when the exception arrives") {
  run([] {
    weft::condition_variable cv;
    weft::cancel_scope scope;
    bool held_when_thrown = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        cv.acquire();
        scope.run([&] {
          try {
            cv.wait();
          } catch (const weft::cancelled&) {
            held_when_thrown = cv.locked();
            throw;
          }
        });
        cv.release();
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK_FALSE(cv.locked());
      scope.cancel();
    });
    CHECK(scope.cancelled_caught());
    CHECK(held_when_thrown);
    CHECK_FALSE(cv.locked());
  });
}

TEST_CASE("a condition variable works over a fair lock, and wait(pred) sleeps through wake-ups while pred is false") {
  run([] {
    weft::fair_lock l;
    weft::condition_variable cv(l);
    int stock = 0;
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 2; ++i) {
        tg.start_soon([&, i] {
          cv.acquire();
          cv.wait([&] { return stock > 0; });
          CHECK(l.locked());
          --stock;
          order.push_back("consumer " + std::to_string(i));
          cv.release();
        });
      }
      weft::testing::wait_all_tasks_blocked();
      CHECK_FALSE(l.locked());
      cv.acquire();
      cv.notify_all();  // spurious for the predicate: stock is still 0
      cv.release();
      weft::testing::wait_all_tasks_blocked();
      CHECK(order.empty());
      weft::sleep(1s);
      cv.acquire();
      stock = 2;
      cv.notify_all();
      order.push_back("producer");
      cv.release();
    });
    CHECK(order == std::vector<std::string>{"producer", "consumer 0", "consumer 1"});
    CHECK(stock == 0);
    CHECK(now_s() == 1);
    CHECK_FALSE(l.locked());
  });
}

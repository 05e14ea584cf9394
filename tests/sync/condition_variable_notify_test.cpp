// condition_variable notifications hand the waiters to the lock: a notified
// waiter waits in the lock's queue and runs only once the lock is its own.
// (The rest of condition_variable.hpp is tested in condition_variable_test.cpp.)
#include "support/support.hpp"

#include <weft/lowlevel/dump.hpp>
#include <weft/sync/condition_variable.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/lock.hpp>

#include <cstddef>
#include <future>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace weft_test;

namespace {

/// How many tasks of this runtime the task dump shows as `state` (for a
/// parked task, with what it waits for: "parked: lock"): what notified
/// waiters are doing, seen from outside without running them.
int tasks_in(const std::string& state) {
  std::ostringstream out;
  weft::lowlevel::dump_tasks(out);
  const std::string needle = "\" " + state;  // after the task's quoted name
  int n = 0;
  for (std::size_t at = out.str().find(needle); at != std::string::npos; at = out.str().find(needle, at + 1)) {
    const std::size_t end = at + needle.size();
    if (end == out.str().size() || out.str()[end] == '\n' || out.str()[end] == ' ') ++n;
  }
  return n;
}

}  // namespace

TEST_CASE_TEMPLATE("notify_all under the lock wakes nobody; then each waiter runs alone, in turn, checking pred once",
                   L, weft::lock, weft::fair_lock) {
  run([] {
    constexpr int n = 5;
    L l;
    weft::condition_variable cv(l);
    bool go = false;
    std::vector<int> checks(n, 0);  // predicate calls per waiter
    std::vector<int> order;
    std::vector<int> others_ready;  // tasks ready to run while each waiter held the lock
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < n; ++i) {
        tg.start_soon(weft::task_options{"waiter"}, [&, i] {
          weft::lock_guard guard(l);
          cv.wait([&] {
            ++checks[i];
            return go;
          });
          order.push_back(i);
          others_ready.push_back(tasks_in("ready"));
        });
      }
      weft::testing::wait_all_tasks_blocked();
      REQUIRE(tasks_in("parked: condition variable") == n);
      l.acquire();
      go = true;
      cv.notify_all();
      CHECK(tasks_in("ready") == 0);
      CHECK(tasks_in("parked: lock") == n);
      weft::testing::wait_all_tasks_blocked();  // nothing runs: they wait for the lock
      CHECK(order.empty());
      CHECK(checks == std::vector<int>(n, 1));
      l.release();
      CHECK(tasks_in("ready") == 1);
      CHECK(tasks_in("parked: lock") == n - 1);
    });
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
    CHECK(checks == std::vector<int>(n, 2));  // before the notification, and once after it
    CHECK(others_ready == std::vector<int>(n, 0));
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE_TEMPLATE("notified waiters queue behind the tasks waiting for the lock; notify(1) moves only the first",
                   L, weft::lock, weft::fair_lock) {
  run([] {
    L l;
    weft::condition_variable cv(l);
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      for (const char* name : {"w0", "w1"}) {
        tg.start_soon(weft::task_options{name}, [&, name] {
          weft::lock_guard guard(l);
          cv.wait();
          order.push_back(name);
        });
      }
      weft::testing::wait_all_tasks_blocked();
      l.acquire();
      tg.start_soon(weft::task_options{"acquirer"}, [&] {
        weft::lock_guard guard(l);
        order.push_back("acquirer");
      });
      weft::testing::wait_all_tasks_blocked();
      cv.notify();
      CHECK(tasks_in("parked: lock") == 2);  // the acquirer, then w0
      CHECK(tasks_in("parked: condition variable") == 1);
      cv.notify_all();
      CHECK(tasks_in("parked: lock") == 3);
      l.release();
    });
    CHECK(order == std::vector<std::string>{"acquirer", "w0", "w1"});
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE_TEMPLATE("notify_all with the lock free wakes the first waiter at once and the others in turn behind it", L,
                   weft::lock, weft::fair_lock) {
  run([] {
    constexpr int n = 4;
    L l;
    weft::condition_variable cv(l);
    std::vector<int> order;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < n; ++i) {
        tg.start_soon(weft::task_options{"waiter"}, [&, i] {
          weft::lock_guard guard(l);
          cv.wait();
          order.push_back(i);
        });
      }
      weft::testing::wait_all_tasks_blocked();
      REQUIRE_FALSE(l.locked());
      cv.notify_all();
      CHECK(tasks_in("ready") == 1);
      CHECK(tasks_in("parked: lock") == n - 1);
      l.acquire();  // the waiters queue for the lock: this task comes after them
      order.push_back(-1);
      l.release();
    });
    CHECK(order == std::vector<int>{0, 1, 2, 3, -1});
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE_TEMPLATE("a notification from a task that does not hold the lock hands the waiter to the task that does", L,
                   weft::lock, weft::fair_lock) {
  run([] {
    L l;
    weft::condition_variable cv(l);
    weft::event release;
    bool woken = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        weft::lock_guard guard(l);
        cv.wait();
        woken = true;
      });
      weft::testing::wait_all_tasks_blocked();
      tg.start_soon(weft::task_options{"holder"}, [&] {
        weft::lock_guard guard(l);
        release.wait();
      });
      weft::testing::wait_all_tasks_blocked();
      REQUIRE(l.locked());
      cv.notify();  // this task does not hold the lock
      weft::testing::wait_all_tasks_blocked();
      CHECK_FALSE(woken);
      CHECK(tasks_in("parked: lock") == 1);
      release.set();
    });
    CHECK(woken);
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE_TEMPLATE("a notified waiter cancelled in the lock's queue holds the lock as cancelled arrives; others go on",
                   L, weft::lock, weft::fair_lock) {
  run([] {
    L l;
    weft::condition_variable cv(l);
    std::vector<std::string> order;
    bool held_when_thrown = false;
    double thrown_at = -1;
    bool caught = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        weft::lock_guard guard(l);
        cv.wait();
        order.push_back("first");
      });
      tg.start_soon([&] {
        l.acquire();
        auto scope = weft::move_on_after(3s);
        scope.run([&] {
          try {
            cv.wait();
            order.push_back("not cancelled");
          } catch (const weft::cancelled&) {
            held_when_thrown = l.locked();
            thrown_at = now_s();
            order.push_back("cancelled");
            throw;
          }
        });
        caught = scope.cancelled_caught();
        CHECK_NOTHROW(l.release());  // only the owner may release
      });
      tg.start_soon([&] {
        weft::lock_guard guard(l);
        cv.wait();
        order.push_back("last");
      });
      weft::testing::wait_all_tasks_blocked();
      l.acquire();
      cv.notify_all();
      weft::sleep(5s);  // the deadline passes at t=3, in the lock's queue
      CHECK(tasks_in("parked: lock") == 3);  // the cancelled waiter queued again, at the back
      CHECK(order.empty());
      l.release();
    });
    CHECK(caught);
    CHECK(held_when_thrown);
    CHECK(thrown_at == 5);
    CHECK(order == std::vector<std::string>{"first", "last", "cancelled"});
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE("a notified waiter overtaken by a newcomer to a plain lock waits again; cancelled there, it ends holding it") {
  run([] {
    weft::lock l;
    weft::condition_variable cv(l);
    weft::cancel_scope scope;
    bool held_when_thrown = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        l.acquire();
        scope.run([&] {
          try {
            cv.wait();
          } catch (const weft::cancelled&) {
            held_when_thrown = l.locked();
            throw;
          }
        });
        CHECK_NOTHROW(l.release());
      });
      weft::testing::wait_all_tasks_blocked();
      l.acquire();
      cv.notify();
      l.release();  // wakes the waiter, now first in the lock's queue
      l.acquire();  // no checkpoint since: the lock is free and nobody queues, so this task takes it
      weft::testing::wait_all_tasks_blocked();
      CHECK(tasks_in("parked: lock") == 1);  // the waiter found it taken and waits again
      scope.cancel();
      weft::testing::wait_all_tasks_blocked();
      CHECK(tasks_in("parked: lock") == 1);  // cancelled, but it waits for the lock before it raises
      CHECK_FALSE(held_when_thrown);
      l.release();
    });
    CHECK(scope.cancelled_caught());
    CHECK(held_when_thrown);
    CHECK_FALSE(l.locked());
  });
}

// A bounded buffer with producers, consumers, and a task that takes the
// lock in between, notifies without it and cancels waiting consumers, in
// interleavings drawn from a seeded generator. A cancelled consumer passes
// a notification on (it may have taken one). That task stops after a
// bounded number of steps; no deadline fires unless everything is blocked,
// so a waiter stranded in a queue ends the run with timeout_error, or, if
// the waiters that deadline cancels are stranded again in their shielded
// wait for the lock, the backstop ends the program.
TEST_CASE_TEMPLATE("notifications handing waiters to a lock never strand one, under many interleavings", L, weft::lock,
                   weft::fair_lock) {
  constexpr int seeds = 20;
  constexpr int per_producer = 60;
  constexpr int producers = 3;
  constexpr int consumers = 2;
  constexpr int per_consumer = per_producer * producers / consumers;
  constexpr std::size_t capacity = 2;
  hang_backstop backstop(60s, "the condition variable stress test");
  int cancelled_waits = 0;
  for (unsigned seed = 1; seed <= seeds; ++seed) {
    CAPTURE(seed);
    run([seed, &cancelled_waits] {
      L l;
      weft::condition_variable not_empty(l);
      weft::condition_variable not_full(l);
      std::minstd_rand rng(seed);
      auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
      std::size_t items = 0;
      int consumed = 0;
      int done = 0;
      std::vector<weft::cancel_scope*> waiting(consumers, nullptr);
      auto notify = [&](weft::condition_variable& cv) { chance(50) ? cv.notify_all() : cv.notify(1 + rng() % 2); };
      weft::timeout(1h, [&] {
        weft::open_task_group([&](weft::task_group& tg) {
          for (int p = 0; p < producers; ++p) {
            tg.start_soon([&] {
              for (int i = 0; i < per_producer; ++i) {
                {
                  weft::lock_guard guard(l);
                  not_full.wait([&] { return items < capacity; });
                  ++items;
                  notify(not_empty);
                }
                if (chance(50)) weft::checkpoint();
              }
              ++done;
            });
          }
          for (int c = 0; c < consumers; ++c) {
            tg.start_soon([&, c] {
              for (int mine = 0; mine < per_consumer;) {
                weft::cancel_scope scope;
                waiting[c] = &scope;
                scope.run([&] {
                  weft::lock_guard guard(l);
                  not_empty.wait([&] { return items > 0; });
                  --items;
                  ++mine;
                  ++consumed;
                  notify(not_full);
                });
                waiting[c] = nullptr;
                if (scope.cancelled_caught()) {
                  ++cancelled_waits;
                  not_empty.notify();
                }
                if (chance(50)) weft::checkpoint();
              }
              ++done;
            });
          }
          tg.start_soon([&] {  // takes the lock in between, notifies without it, cancels waits
            for (int step = 0; step < 50'000 && done < producers + consumers; ++step) {
              const int action = static_cast<int>(rng() % 4);
              if (action == 0) {
                weft::lock_guard guard(l);
                weft::checkpoint();
              } else if (action == 1 && l.try_acquire()) {
                l.release();
              } else if (action == 2) {
                notify(chance(50) ? not_empty : not_full);
              } else if (weft::cancel_scope* s = waiting[rng() % consumers]) {
                s->cancel();
              }
              weft::checkpoint();
            }
          });
        });
      });
      CHECK(consumed == per_producer * producers);
      CHECK(items == 0);
      CHECK_FALSE(l.locked());
      CHECK(now_s() == 0);
    });
  }
  CHECK(cancelled_waits > 0);  // the interleavings did include cancelled waits
}

TEST_CASE("a notification while another runtime's task holds the lock wakes the waiter; its wait reports the misuse") {
  run([] {
    weft::lock l;
    weft::condition_variable cv(l);
    std::promise<void> held;
    std::promise<void> let_go;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        l.acquire();
        CHECK_THROWS_WITH_AS(cv.wait(), doctest::Contains("another runtime"), std::logic_error);
      });
      weft::testing::wait_all_tasks_blocked();
      std::thread other([&] {
        weft::run([&] {
          l.acquire();
          held.set_value();
          let_go.get_future().wait();  // blocks that runtime's thread, which has nothing else to run
          l.release();
        });
      });
      held.get_future().wait();
      cv.notify_all();  // must not move this runtime's task into a queue the other thread would wake
      weft::testing::wait_all_tasks_blocked();
      let_go.set_value();
      other.join();
    });
    CHECK_FALSE(l.locked());
  });
}

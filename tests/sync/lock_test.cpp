#include "support/support.hpp"

#include <weft/sync/event.hpp>
#include <weft/sync/lock.hpp>
#include <weft/testing/sequencer.hpp>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;

// Behaviour shared by both lock types.

TEST_CASE_TEMPLATE("a lock is taken by acquire, reported by locked and freed by release", L, weft::lock,
                   weft::fair_lock) {
  run([] {
    L l;
    CHECK_FALSE(l.locked());
    l.acquire();
    CHECK(l.locked());
    l.release();
    CHECK_FALSE(l.locked());
    l.acquire();  // a released lock can be taken again
    CHECK(l.locked());
    l.release();
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE_TEMPLATE("try_acquire takes a free lock and refuses a held one without blocking", L, weft::lock,
                   weft::fair_lock) {
  run([] {
    L l;
    CHECK(l.try_acquire());
    CHECK(l.locked());
    std::vector<bool> results;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        results.push_back(l.try_acquire());  // held by the root task
        weft::sleep(2s);
        results.push_back(l.try_acquire());  // freed at t=1
        CHECK(now_s() == 2);
        l.release();
      });
      weft::sleep(1s);
      CHECK(results == std::vector<bool>{false});
      l.release();
    });
    CHECK(results == std::vector<bool>{false, true});
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE_TEMPLATE("releasing a lock that is not locked is a logic error", L, weft::lock, weft::fair_lock) {
  run([] {
    L l;
    CHECK_THROWS_WITH_AS(l.release(), doctest::Contains("not locked"), std::logic_error);
    CHECK_FALSE(l.locked());
    l.acquire();
    l.release();
    CHECK_THROWS_AS(l.release(), std::logic_error);  // a second release
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE_TEMPLATE("releasing a lock held by another task is a logic error and leaves it with its owner", L,
                   weft::lock, weft::fair_lock) {
  run([] {
    L l;
    weft::event done;
    bool owner_released = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        l.acquire();
        done.wait();
        l.release();  // still the owner: must not throw
        owner_released = true;
      });
      weft::testing::wait_all_tasks_blocked();
      REQUIRE(l.locked());
      CHECK_THROWS_WITH_AS(l.release(), doctest::Contains("another task"), std::logic_error);
      CHECK(l.locked());
      CHECK_FALSE(l.try_acquire());
      done.set();
    });
    CHECK(owner_released);
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE_TEMPLATE("acquiring a lock the task already holds is a logic error (locks are not reentrant)", L,
                   weft::lock, weft::fair_lock) {
  run([] {
    L l;
    l.acquire();
    CHECK_THROWS_WITH_AS(l.acquire(), doctest::Contains("not reentrant"), std::logic_error);
    CHECK(l.locked());
    CHECK_FALSE(l.try_acquire());  // try_acquire does not take it twice either
    l.release();                   // one release frees it: the failed acquire counted nothing
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE("acquiring a lock outside a task is a logic error") {
  weft::lock l;
  CHECK_THROWS_AS(l.acquire(), std::logic_error);
  CHECK_THROWS_AS(l.try_acquire(), std::logic_error);
  CHECK_FALSE(l.locked());
}

TEST_CASE_TEMPLATE("a lock lets one task at a time into the critical section", L, weft::lock, weft::fair_lock) {
  run([] {
    L l;
    int inside = 0;
    int max_inside = 0;
    int entries = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 4; ++i) {
        tg.start_soon([&] {
          for (int round = 0; round < 2; ++round) {
            l.acquire();
            ++inside;
            ++entries;
            if (inside > max_inside) max_inside = inside;
            weft::sleep(1s);
            --inside;
            l.release();
            weft::checkpoint();
          }
        });
      }
    });
    CHECK(entries == 8);
    CHECK(max_inside == 1);
    CHECK(now_s() == 8);  // eight one-second sections, one after another
  });
}

TEST_CASE_TEMPLATE("acquiring a free lock with nobody waiting does not yield", L, weft::lock, weft::fair_lock) {
  run([] {
    L l;
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { order.push_back("other task"); });  // ready, waiting for a switch
      l.acquire();
      order.push_back("acquired");
      l.release();
      l.acquire();  // again, right after a release with nobody waiting
      order.push_back("acquired again");
      l.release();
    });
    CHECK(order == std::vector<std::string>{"acquired", "acquired again", "other task"});
  });
}

TEST_CASE_TEMPLATE("acquiring a free lock in a cancelled scope raises cancelled and leaves the lock free", L, weft::lock,
                   weft::fair_lock) {
  run([] {
    L l;
    bool got = false;
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] {
      l.acquire();
      got = true;
      l.release();
    });
    CHECK_FALSE(got);
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(l.locked());
    weft::lock_guard g(l);  // outside the scope it works
    CHECK(l.locked());
  });
}

TEST_CASE_TEMPLATE("a blocked acquire is cancelled by a scope deadline and leaves the lock with its owner and the queue clean",
                   L, weft::lock, weft::fair_lock) {
  run([] {
    L l;
    l.acquire();
    bool waiter_acquired = false;
    bool waiter_caught = false;
    double waiter_gave_up_at = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        auto scope = weft::move_on_after(5s);
        scope.run([&] {
          l.acquire();
          waiter_acquired = true;
          l.release();
        });
        waiter_caught = scope.cancelled_caught();
        waiter_gave_up_at = now_s();
      });
      weft::sleep(10s);
      CHECK(waiter_gave_up_at == 5);
      CHECK(waiter_caught);
      CHECK_FALSE(waiter_acquired);
      CHECK(l.locked());  // still the root task's
      l.release();        // the root task still owns it: must not throw
      // Nobody is queued any more: the lock is free, not handed to the
      // cancelled waiter, and a newcomer gets it at once.
      CHECK_FALSE(l.locked());
      CHECK(l.try_acquire());
      l.release();
    });
    CHECK_FALSE(waiter_acquired);
    CHECK(now_s() == 10);
  });
}

TEST_CASE_TEMPLATE("a blocked acquire in an already cancelled scope throws at once", L, weft::lock, weft::fair_lock) {
  run([] {
    L l;
    bool acquired = false;
    weft::open_task_group([&](weft::task_group& tg) {
      l.acquire();
      tg.start_soon([&] {
        weft::cancel_scope scope;
        scope.cancel();
        scope.run([&] {
          l.acquire();
          acquired = true;
        });
        CHECK(scope.cancelled_caught());
        CHECK(now_s() == 0);
      });
      weft::testing::wait_all_tasks_blocked();
      l.release();
      CHECK_FALSE(l.locked());
    });
    CHECK_FALSE(acquired);
  });
}

TEST_CASE_TEMPLATE("lock_guard holds the lock for its block, also when the block throws", L, weft::lock,
                   weft::fair_lock) {
  run([] {
    L l;
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      {
        weft::lock_guard guard(l);
        CHECK(l.locked());
        tg.start_soon([&] {
          weft::lock_guard other(l);
          order.push_back("other");
        });
        weft::sleep(1s);  // the other task blocks meanwhile
        order.push_back("guarded block ends");
      }
      weft::testing::wait_all_tasks_blocked();
      CHECK(order == std::vector<std::string>{"guarded block ends", "other"});
      CHECK_FALSE(l.locked());

      CHECK_THROWS_AS(([&] {
                        weft::lock_guard guard(l);
                        throw std::runtime_error("inside");
                      }()),
                      std::runtime_error);
      CHECK_FALSE(l.locked());
    });
  });
}

TEST_CASE_TEMPLATE("std::unique_lock<weft::basic_lock> locks, unlocks and try-locks a weft lock", L, weft::lock,
                   weft::fair_lock) {
  run([] {
    L l;
    {
      std::unique_lock<weft::basic_lock> ul(l);
      CHECK(ul.owns_lock());
      CHECK(l.locked());
      ul.unlock();
      CHECK_FALSE(ul.owns_lock());
      CHECK_FALSE(l.locked());
      CHECK(ul.try_lock());
      CHECK(l.locked());
    }
    CHECK_FALSE(l.locked());  // the destructor unlocked it

    weft::open_task_group([&](weft::task_group& tg) {
      std::unique_lock<weft::basic_lock> mine(l);
      tg.start_soon([&] {
        std::unique_lock<weft::basic_lock> attempt(l, std::try_to_lock);
        CHECK_FALSE(attempt.owns_lock());
        std::unique_lock<weft::basic_lock> blocking(l);
        CHECK(blocking.owns_lock());
        CHECK(now_s() == 3);
      });
      weft::sleep(3s);
    });
    CHECK_FALSE(l.locked());
  });
}

// weft::lock: release wakes the first waiter, which competes for the lock.

TEST_CASE("a plain lock wakes its first waiter, and a task asking before that waiter runs takes the lock first") {
  run([] {
    weft::lock l;
    std::vector<std::string> order;
    l.acquire();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        l.acquire();
        order.push_back("waiter");
        l.release();
      });
      weft::testing::wait_all_tasks_blocked();
      l.release();
      l.acquire();  // no checkpoint since the release: the woken waiter has not run yet
      order.push_back("releaser again");
      weft::testing::wait_all_tasks_blocked();
      CHECK(order == std::vector<std::string>{"releaser again"});  // the waiter queued again
      l.release();
    });
    CHECK(order == std::vector<std::string>{"releaser again", "waiter"});
    CHECK_FALSE(l.locked());
  });
}

// weft::fair_lock: strict first-come-first-served hand-off.

TEST_CASE("a fair lock is acquired in the order the waiters arrived, whatever order they started in") {
  run([] {
    weft::fair_lock l;
    weft::testing::sequencer seq;
    std::vector<int> acquired;
    const std::vector<std::size_t> arrival = {2, 0, 3, 1};  // arrival position of task i
    l.acquire();
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 4; ++i) {
        tg.start_soon([&, i] {
          seq(arrival[i], [] {});
          l.acquire();  // no checkpoint after its turn: queued in sequencer order
          acquired.push_back(i);
          weft::sleep(1s);
          l.release();
        });
      }
      weft::testing::wait_all_tasks_blocked();
      CHECK(acquired.empty());
      l.release();
    });
    // Task 1 arrived first (position 0), then task 3, task 0, task 2.
    CHECK(acquired == std::vector<int>{1, 3, 0, 2});
    CHECK(now_s() == 4);
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE("a fair lock is handed to the first waiter on release, and a newcomer right after does not overtake it") {
  run([] {
    weft::fair_lock l;
    weft::event go;
    std::vector<std::string> order;
    l.acquire();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        l.acquire();
        order.push_back("waiter");
        l.release();
      });
      tg.start_soon([&] {
        go.wait();
        // Runs before the waiter does (it was woken first), yet the lock is already the waiter's.
        CHECK(l.locked());
        CHECK_FALSE(l.try_acquire());
        l.acquire();
        order.push_back("newcomer");
        l.release();
      });
      weft::testing::wait_all_tasks_blocked();
      go.set();
      l.release();
      CHECK(l.locked());  // handed over directly, not left free
      l.acquire();        // the releaser itself, with no checkpoint in between: queues too
      order.push_back("releaser again");
      l.release();
    });
    CHECK(order == std::vector<std::string>{"waiter", "releaser again", "newcomer"});
    CHECK_FALSE(l.locked());
  });
}

// Races between a release and a cancellation at the same moment (no
// checkpoint between the two): the outcome is consistent either way.

TEST_CASE_TEMPLATE("when the first waiter is cancelled as the lock is released, the next waiter gets the lock", L,
                   weft::lock, weft::fair_lock) {
  bool cancel_first = false;
  SUBCASE("B is cancelled, then A releases") { cancel_first = true; }
  SUBCASE("A releases, then B is cancelled") { cancel_first = false; }
  run([&] {
    L l;
    std::vector<std::string> order;
    weft::cancel_scope b_scope;
    l.acquire();  // the root task is A
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {  // B: first in the queue
        b_scope.run([&] {
          weft::lock_guard guard(l);
          order.push_back("B");
          weft::checkpoint();
          order.push_back("B after its checkpoint");
        });
      });
      tg.start_soon([&] {  // C: second
        weft::lock_guard guard(l);
        order.push_back("C");
      });
      weft::testing::wait_all_tasks_blocked();
      if (cancel_first) {
        b_scope.cancel();
        l.release();
        // B left the queue before the release: C is the owner at once.
        if constexpr (std::is_same_v<L, weft::fair_lock>) CHECK(l.locked());
      } else {
        l.release();
        b_scope.cancel();
      }
    });
    if (cancel_first)
      CHECK(order == std::vector<std::string>{"C"});
    else  // B already had the lock: it gets it, is cancelled at its next checkpoint, and C follows
      CHECK(order == std::vector<std::string>{"B", "C"});
    CHECK(b_scope.cancelled_caught());
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE_TEMPLATE("a waiter cancelled at the same moment the lock is released acquires it exactly once or not at all",
                   L, weft::lock, weft::fair_lock) {
  bool cancel_first = false;
  SUBCASE("cancel, then release") { cancel_first = true; }
  SUBCASE("release, then cancel") { cancel_first = false; }
  run([&] {
    L l;
    weft::cancel_scope w_scope;
    int acquisitions = 0;
    bool w_released = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {  // A: the owner; it does both operations with no checkpoint in between
        l.acquire();
        weft::testing::wait_all_tasks_blocked();
        if (cancel_first) {
          w_scope.cancel();
          l.release();
        } else {
          l.release();
          w_scope.cancel();
        }
      });
      tg.start_soon([&] {  // W: the waiter
        w_scope.run([&] {
          l.acquire();
          ++acquisitions;
          try {
            weft::checkpoint();  // the cancellation is delivered here, with the lock held
          } catch (const weft::cancelled&) {
            l.release();
            w_released = true;
            throw;
          }
          l.release();
        });
      });
    });
    CHECK(w_scope.cancelled_caught());
    if (cancel_first) {
      CHECK(acquisitions == 0);
      CHECK_FALSE(w_released);
    } else {
      CHECK(acquisitions == 1);
      CHECK(w_released);
    }
    // Either way the lock ended free and usable, with nobody queued.
    CHECK_FALSE(l.locked());
    CHECK(l.try_acquire());
    l.release();
  });
}

TEST_CASE("a waiter cancelled as a fair lock is released is handed the lock only if the release came first") {
  bool cancel_first = false;
  SUBCASE("cancel, then release") { cancel_first = true; }
  SUBCASE("release, then cancel") { cancel_first = false; }
  run([&] {
    weft::fair_lock l;
    weft::cancel_scope w_scope;
    bool owner_after_release = false;
    bool w_got = false;
    weft::testing::sequencer seq;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {  // W
        seq(1, [] {});
        w_scope.run([&] {
          l.acquire();
          w_got = true;
          l.release();
        });
      });
      l.acquire();
      seq(0, [] {});
      weft::testing::wait_all_tasks_blocked();  // W is queued
      seq(2, [&] {
        if (cancel_first) {
          w_scope.cancel();
          l.release();
        } else {
          l.release();
          w_scope.cancel();
        }
        owner_after_release = l.locked();
      });
    });
    // A fair release hands the lock over: it is W's right away unless W had already left.
    CHECK(owner_after_release == !cancel_first);
    CHECK(w_got == !cancel_first);
    CHECK(w_scope.cancelled_caught() == cancel_first);  // W's body had no checkpoint after acquiring
    CHECK_FALSE(l.locked());
  });
}

TEST_CASE("a lock held by a task that has ended cannot be released by any other task") {
  run([] {
    weft::lock l;
    int refused = 0;
    // One function for the owner and the others, so that their task objects
    // are alike: new tasks reuse the ended owner's memory (its stack, its
    // heap block), and ownership must not be judged by address.
    auto body = [&](bool take) {
      if (take) {
        l.acquire();  // and ends holding it
        return;
      }
      try {
        l.release();
      } catch (const std::logic_error& e) {
        CHECK(std::string(e.what()).find("another task") != std::string::npos);
        ++refused;
      }
    };
    weft::open_task_group([&](weft::task_group& tg) { tg.start_soon(body, true); });
    CHECK(l.locked());
    for (int round = 0; round < 4; ++round)
      weft::open_task_group([&](weft::task_group& tg) { tg.start_soon(body, false); });
    CHECK(refused == 4);
    CHECK(l.locked());
    CHECK_FALSE(l.try_acquire());
  });
}

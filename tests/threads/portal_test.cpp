// weft::threads_portal: calls from other threads into a running runtime,
// what they see, how they are cancelled, and how a portal closes.
#include "threads/threads_support.hpp"

#include <weft/coro.hpp>
#include <weft/threads/run_in_thread.hpp>
#include <weft/threads/threads_portal.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace weft_test;
using namespace weft_threads_test;

TEST_CASE("a portal runs calls from other threads on its runtime: sync calls outside any task, coroutine calls as tasks") {
  run([] {
    const auto loop_thread = std::this_thread::get_id();
    weft::open_threads_portal([&](weft::threads_portal& portal) {
      CHECK(portal.is_open());
      on_thread([&] {
        CHECK(portal.run_sync([&] {
          CHECK(std::this_thread::get_id() == loop_thread);
          CHECK_FALSE(weft::lowlevel::in_task());
          return 6 * 7;
        }) == 42);
        CHECK(portal.run_sync([](int a, const std::string& b) { return b + std::to_string(a); }, 7, "x") == "x7");
        const double start = portal.run_sync([] { return now_s(); });
        CHECK(portal.run_coroutine([&] {
          CHECK(std::this_thread::get_id() == loop_thread);
          CHECK(weft::lowlevel::in_task());
          weft::sleep(500ms);  // task code: it may block
          return now_s();
        }) == doctest::Approx(start + 0.5));
        // A function returning an awaitable: the task awaits it.
        CHECK(portal.run_coroutine([] { return answer_later(0.25); }) == 42);
        CHECK(portal.run_coroutine(answer_later, 0.0) == 42);
        CHECK(portal.run_coroutine([] { return asio_answer(); }) == 43);
        portal.run_sync([] {});  // void
        portal.run_coroutine([] { weft::checkpoint(); });
      });
    });
  });
}

TEST_CASE("a portal refuses calls before it opens, after it closes, and on its own runtime's thread") {
  run([] {
    weft::threads_portal portal = weft::threads_portal::create();
    CHECK_FALSE(portal.is_open());
    on_thread([&] {
      CHECK(error_of<weft::runtime_closed_error>([&] { portal.run_sync([] { return 1; }); }) ==
            "weft::threads_portal::run_sync_soon: the threads portal is not running (not opened yet)");
      CHECK_THROWS_AS(portal.run_coroutine([] { return 1; }), weft::runtime_closed_error);
    });
    portal.open([&](weft::threads_portal& same) {
      CHECK(same == portal);
      CHECK(error_of<std::logic_error>([&] { portal.run_sync([] { return 1; }); })
                .starts_with("weft::threads_portal::run_sync_soon: called on the portal's own runtime thread"));
      CHECK_THROWS_AS(portal.run_coroutine_soon([] { return 1; }), std::logic_error);
      // Opening twice is refused.
      CHECK(error_of<std::logic_error>([&] { portal.open([](weft::threads_portal&) {}); }) ==
            "weft::threads_portal::open: the portal is open already (opened twice)");
    });
    CHECK_FALSE(portal.is_open());
    on_thread([&] {
      CHECK(error_of<weft::runtime_closed_error>([&] { portal.run_sync([] { return 1; }); }) ==
            "weft::threads_portal::run_sync_soon: the threads portal is not running (closed)");
    });
    CHECK(error_of<std::logic_error>([&] { portal.open([](weft::threads_portal&) {}); }) ==
          "weft::threads_portal::open: the portal was closed; a portal opens once");
    CHECK_THROWS_AS(weft::threads_portal().run_sync([] {}), std::logic_error);  // an empty handle
  });
  CHECK_THROWS_AS(weft::threads_portal::create(), std::logic_error);  // no runtime on this thread
  std::thread([] { CHECK_THROWS_AS(weft::threads_portal::create(), std::logic_error); }).join();
}

TEST_CASE("a portal's value is returned by open, and the portal opens only in a task of its own runtime") {
  run([] {
    CHECK(weft::open_threads_portal([](weft::threads_portal&) { return 5; }) == 5);
    weft::threads_portal other;
    std::thread([&] { weft::run([&] { other = weft::threads_portal::create(); }); }).join();
    CHECK(error_of<std::logic_error>([&] { other.open([](weft::threads_portal&) {}); }) ==
          "weft::threads_portal::open: the portal belongs to another runtime than this task's");
  });
}

TEST_CASE("a task of another runtime calling a portal parks, and the call runs on the portal's runtime") {
  run_real([] {
    const auto loop_thread = std::this_thread::get_id();
    weft::open_threads_portal([&](weft::threads_portal& portal) {
      on_thread([&] {
        weft::run([&] {
          // While this task waits, its own runtime goes on: a second task runs.
          std::atomic<bool> other_ran{false};
          weft::open_task_group([&](weft::task_group& tg) {
            tg.start_soon([&] { other_ran = true; });
            CHECK(portal.run_coroutine([&] {
              CHECK(std::this_thread::get_id() == loop_thread);
              weft::sleep(10ms);
              return 42;
            }) == 42);
          });
          CHECK(other_ran);
          CHECK(portal.run_sync([] { return std::this_thread::get_id(); }) == loop_thread);
        });
      });
    });
  });
}

TEST_CASE("exceptions reach the calling thread as the same object; a cancellation becomes future_cancelled_error") {
  run([] {
    weft::open_threads_portal([&](weft::threads_portal& portal) {
      std::exception_ptr thrown;
      auto throwing = [&] {
        thrown = std::make_exception_ptr(test_error("boom"));
        std::rethrow_exception(thrown);
      };
      on_thread([&] {
        for (int coroutine = 0; coroutine < 2; ++coroutine) {
          try {
            if (coroutine)
              portal.run_coroutine(throwing);
            else
              portal.run_sync(throwing);
            FAIL("no exception");
          } catch (const test_error&) {
            CHECK(std::current_exception() == thrown);
          }
        }
        // A coroutine call that ends by a cancellation re-raised outside its
        // own scope: the loop's cancellation never crosses threads.
        auto f = portal.run_coroutine_soon([] {
          weft::cancel_scope outer;
          outer.cancel();
          outer.run([&] { weft::checkpoint(); });  // caught by its own scope: goes on
          weft::cancel_scope inner;
          std::exception_ptr caught;
          inner.run([&] {
            inner.cancel();
            try {
              weft::checkpoint();
            } catch (const weft::cancelled&) {
              caught = std::current_exception();
            }
          });
          std::rethrow_exception(caught);  // outside `inner`: a cancellation that is nobody's here
        });
        CHECK_THROWS_AS(f.get(), weft::future_cancelled_error);
        CHECK(f.cancelled());
        CHECK(portal.run_sync([] { return 1; }) == 1);  // it cancelled nothing else
        // A future_cancelled_error fn throws itself passes through unchanged.
        CHECK_THROWS_WITH_AS(portal.run_sync([] { throw weft::future_cancelled_error("mine"); }), "mine",
                             weft::future_cancelled_error);
      });
    });
  });
}

TEST_CASE("a sync call whose future is cancelled before it runs never runs") {
  run([] {
    std::atomic<int> ran{0};
    weft::open_threads_portal([&](weft::threads_portal& portal) {
      std::latch submitted(1);
      std::latch loop_blocked(1);
      std::thread t([&] {
        loop_blocked.wait();  // the loop thread is held: the call cannot run yet
        auto f = portal.run_sync_soon([&] { ++ran; });
        CHECK(f.cancel("too late"));
        CHECK(f.cancelled());
        CHECK(f.done());
        submitted.count_down();
        CHECK_THROWS_WITH_AS(f.get(), "too late", weft::future_cancelled_error);
      });
      loop_blocked.count_down();
      submitted.wait();  // blocks the loop thread on purpose
      weft::run_in_thread([&] { t.join(); });
    });
    CHECK(ran == 0);
  });
}

TEST_CASE("a coroutine call cancelled while it runs: the future is cancelled at once, the task at its next checkpoint") {
  run([] {
    std::atomic<bool> task_cancelled{false};
    weft::open_threads_portal([&](weft::threads_portal& portal) {
      on_thread([&] {
        // A task of the portal's own runtime calling the portal is refused
        // (waiting there would deadlock).
        auto f = portal.run_coroutine_soon([&] {
          portal.run_sync_soon([] {});
          return 0;
        });
        CHECK_THROWS_AS(f.get(), std::logic_error);

        std::latch running(1);
        auto g = portal.run_coroutine_soon([&] {
          running.count_down();
          try {
            weft::sleep_forever();
          } catch (const weft::cancelled&) {
            task_cancelled = true;
            throw;
          }
        });
        running.wait();
        CHECK(g.running());
        CHECK(g.cancel("stop"));
        CHECK(g.cancelled());  // at once, before the task has seen it
        CHECK(g.done());
        CHECK_THROWS_WITH_AS(g.get(), "stop", weft::future_cancelled_error);
      });
    });
    CHECK(task_cancelled);  // the portal's close joined the task
  });
}

TEST_CASE("a coroutine call that ignores its cancellation: the future stays cancelled, a value is dropped, an error reported once") {
  run([] {
    reports seen;
    weft::open_threads_portal([&](weft::threads_portal& portal) {
      on_thread([&] {
        std::latch running(1);
        auto value = portal.run_coroutine_soon([&] {
          running.count_down();
          try {
            weft::sleep_forever();
          } catch (const weft::cancelled&) {
          }
          return 42;  // swallowed its cancellation: the value is dropped
        });
        running.wait();
        CHECK(value.cancel());
        std::latch running2(1);
        auto error = portal.run_coroutine_soon([&]() -> int {
          running2.count_down();
          try {
            weft::sleep_forever();
          } catch (const weft::cancelled&) {
          }
          throw test_error("after the cancel");
        });
        running2.wait();
        CHECK(error.cancel());
        CHECK_THROWS_AS(value.get(), weft::future_cancelled_error);
        CHECK_THROWS_AS(error.get(), weft::future_cancelled_error);
      });
    });
    // Once the portal has closed, both tasks have ended.
    REQUIRE(seen.count() == 1);
    CHECK(holds<test_error>(seen.errors()[0]));
  });
}

TEST_CASE("a coroutine call that completes without suspending resolves its future") {
  run([] {
    weft::open_threads_portal([&](weft::threads_portal& portal) {
      on_thread([&] {
        CHECK(portal.run_coroutine([] { return answer_later(0); }) == 42);
        CHECK(portal.run_coroutine([] { return 1; }) == 1);
      });
    });
  });
}

TEST_CASE("closing a portal runs every call accepted before, once, and waits for coroutine calls' tasks") {
  run([] {
    std::atomic<int> sync_ran{0};
    std::atomic<bool> coroutine_done{false};
    weft::future<void> sync_future;
    weft::future<int> coroutine_future;
    weft::threads_portal kept;
    weft::open_threads_portal([&](weft::threads_portal& portal) {
      kept = portal;
      std::latch submitted(1);
      std::thread t([&] {
        sync_future = portal.run_sync_soon([&] { ++sync_ran; });
        coroutine_future = portal.run_coroutine_soon([&] {
          weft::sleep(1s);
          coroutine_done = true;
          return 7;
        });
        submitted.count_down();
      });
      submitted.wait();  // blocks the loop: both calls are accepted, none has run
      t.join();
      CHECK(sync_ran == 0);
    });  // closes: runs the sync call, starts and joins the coroutine call's task
    CHECK(sync_ran == 1);
    CHECK(coroutine_done);
    CHECK(sync_future.done());
    CHECK(coroutine_future.result() == 7);
    CHECK(now_s() == doctest::Approx(1.0));
    CHECK_FALSE(kept.is_open());
  });
}

TEST_CASE("a portal whose body throws still runs its accepted calls and cancels its coroutine calls' tasks") {
  run([] {
    std::atomic<int> sync_ran{0};
    weft::future<int> forever;
    CHECK_THROWS_AS(weft::open_threads_portal([&](weft::threads_portal& portal) {
                      std::latch submitted(1);
                      std::thread t([&] {
                        portal.run_sync_soon([&] { ++sync_ran; });
                        forever = portal.run_coroutine_soon([] {
                          weft::sleep_forever();
                          return 0;
                        });
                        submitted.count_down();
                      });
                      submitted.wait();
                      t.join();
                      throw test_error("body");
                    }),
                    test_error);
    CHECK(sync_ran == 1);
    CHECK(forever.cancelled());
  });
}

TEST_CASE("a waiting thread's timeout cancels a portal call, unless shielded") {
  run_real([] {
    weft::open_threads_portal([&](weft::threads_portal& portal) {
      on_thread([&] {
        std::latch running(1);
        auto f = portal.run_coroutine_soon([&] {
          running.count_down();
          weft::sleep_forever();
          return 0;
        });
        running.wait();
        CHECK_THROWS_AS(f.get({.timeout = 1ms, .shield = true}), weft::timeout_error);
        CHECK_FALSE(f.done());
        CHECK_THROWS_AS(f.get({.timeout = 1ms}), weft::timeout_error);
        CHECK(f.cancelled());
      });
    });
  });
}

TEST_CASE("calls racing a portal's close are each run once or refused, never lost") {
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> accepted{0};
    std::atomic<int> ran{0};
    std::vector<weft::future<void>> futures;
    std::thread submitter;
    run_real([&] {
      weft::open_threads_portal([&](weft::threads_portal& portal) {
        submitter = std::thread([&, portal] {
          for (int i = 0; i < 1000; ++i) {
            try {
              futures.push_back(i % 2 == 0 ? portal.run_sync_soon([&] { ++ran; })
                                           : portal.run_coroutine_soon([&] { ++ran; }));
              ++accepted;
            } catch (const weft::runtime_closed_error&) {
              break;
            }
          }
        });
        weft::checkpoint();
        weft::sleep(weft::duration(0.00005 * (round % 4)));
      });
    });
    submitter.join();
    CHECK(ran == accepted);
    for (auto& f : futures) CHECK(f.done());
  }
}

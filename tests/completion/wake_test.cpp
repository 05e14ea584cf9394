// Wakes from other threads: hops to thread pools and back under load,
// lowlevel::completion, operations destroyed without completing
// (abandoned_error), and misuse from a thread that does not run the
// runtime: refused with logic_error where the call can throw (event::set),
// else the loud end of the program.
#include "completion/places.hpp"
#include "support/child_process.hpp"

#include <weft/greenback/greenback.hpp>
#include <weft/lowlevel/completion.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

using namespace weft_test;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr int hops_per_task = 300;
#else
constexpr int hops_per_task = 2000;
#endif

/// n tasks, each hopping `hops` times with hop(); every hop must come back
/// to the runtime's thread.
template <class Hop>
void hop_many(int tasks, int hops, Hop hop) {
  long done = 0;
  int elsewhere = 0;
  weft_test::run([&] {
    const std::thread::id home = std::this_thread::get_id();
    weft::open_task_group([&](weft::task_group& tg) {
      for (int t = 0; t < tasks; ++t)
        tg.start_soon([&] {
          for (int i = 0; i < hops; ++i) {
            hop();
            if (std::this_thread::get_id() != home) ++elsewhere;
            ++done;
          }
        });
    });
  });
  CHECK(elsewhere == 0);
  CHECK(done == static_cast<long>(tasks) * hops);
}

}  // namespace

TEST_CASE("50 tasks hop to an asio::thread_pool and back 2000 times each") {
  hang_backstop backstop(120s, "the pool hops");
  asio::thread_pool pool(2);
  SUBCASE("asio::post(pool, use_fiber)") {
    hop_many(50, hops_per_task, [&] { asio::post(pool, weft::use_fiber); });
  }
  SUBCASE("asio::post(strand, use_fiber)") {
    auto strand = asio::make_strand(pool);
    hop_many(50, hops_per_task, [&] { asio::post(strand, weft::use_fiber); });
  }
  SUBCASE("greenback::await_(asio::post(pool, deferred))") {
    hop_many(50, hops_per_task, [&] { greenback::await_(asio::post(pool, asio::deferred)); });
  }
  pool.join();
}

TEST_CASE("tasks of two runtimes wait on each other's timers") {
  hang_backstop backstop(120s, "the timers of another runtime");
  other_runtime r2;
  long done = 0;
  weft_test::run([&] {
    weft::open_task_group([&](weft::task_group& tg) {
      for (int t = 0; t < 50; ++t)
        tg.start_soon([&, t] {
          asio::steady_timer timer(r2.io());
          for (int i = 0; i < hops_per_task / 20; ++i) {
            timer.expires_after(std::chrono::microseconds((t + i) % 5));
            timer.async_wait(weft::use_fiber);
            ++done;
          }
        });
    });
  });
  CHECK(done == 50L * (hops_per_task / 20));
}

TEST_CASE("lowlevel::completion: completed from a plain thread, held by a second party") {
  hang_backstop backstop(60s, "lowlevel::completion");
  weft_test::run([] {
    SUBCASE("complete() from another thread") {
      weft::lowlevel::completion done;
      int result = 0;
      std::thread t([&] {
        result = 42;  // visible to the task once wait() returns
        done.complete();
      });
      done.wait([]() noexcept { return weft::lowlevel::abort_result::failed; }, "a test thread");
      CHECK(done.done());
      CHECK(result == 42);
      t.join();
    }
    SUBCASE("complete() before wait(), on the task's own thread: wait() does not park") {
      weft::lowlevel::completion done;
      done.complete();
      CHECK(done.done());
      done.wait([]() noexcept { return weft::lowlevel::abort_result::failed; });
    }
    SUBCASE("a hold keeps the task waiting after complete() until release()") {
      weft::lowlevel::completion done;
      std::atomic<bool> completed{false};
      std::atomic<bool> released{false};
      done.hold();
      std::thread completer([&] {
        done.complete();
        completed = true;
      });
      std::thread releaser([&] {
        while (!completed) std::this_thread::yield();
        released = true;
        done.release();
      });
      done.wait([]() noexcept { return weft::lowlevel::abort_result::failed; });
      CHECK(released.load());
      completer.join();
      releaser.join();
    }
    SUBCASE("a wait withdrawn by its abort throws cancelled") {
      weft::cancel_scope scope;
      scope.run([&] {
        weft::lowlevel::completion done;
        scope.cancel();
        done.wait([]() noexcept { return weft::lowlevel::abort_result::succeeded; });
        FAIL("not cancelled");
      });
      CHECK(scope.cancelled_caught());
    }
  });
}

TEST_CASE("an operation destroyed without completing throws abandoned_error instead of hanging") {
  hang_backstop backstop(60s, "the abandoned operations");
  // An io_context no thread runs: operations posted to it never complete;
  // a second thread destroys it once the operation was started.
  auto dead = std::make_unique<asio::io_context>();
  std::promise<void> started;
  std::thread killer([&] {
    started.get_future().wait();
    dead.reset();
  });
  auto post_to_dead = [&](auto token) {
    return asio::async_initiate<decltype(token), void()>(
        [&](auto handler) {
          asio::post(*dead, std::move(handler));
          started.set_value();
        },
        token);
  };
  weft_test::run([&] {
    SUBCASE("use_fiber") { CHECK_THROWS_AS(post_to_dead(weft::use_fiber), weft::abandoned_error); }
    SUBCASE("greenback::await_ of a deferred operation") {
      CHECK_THROWS_AS(greenback::await_(post_to_dead(asio::deferred)), weft::abandoned_error);
    }
    SUBCASE("greenback::await_ of an asio::awaitable waiting on it") {
      auto body = [&]() -> asio::awaitable<int> {
        co_await post_to_dead(asio::use_awaitable);
        co_return 1;
      };
      CHECK_THROWS_AS(greenback::await_(body()), weft::abandoned_error);
    }
  });
  killer.join();
}

// --- misuse from other threads: the program ends with a message -----------------------

namespace {

// A task parks; a plain thread reschedules it.
void reschedule_from_a_thread() {
  weft::run([] {
    weft::lowlevel::task_ref me = weft::lowlevel::current_task();
    std::thread t([me] { weft::lowlevel::reschedule(me); });
    t.join();
  });
}
const child_scenario reschedule_scenario{"reschedule from a plain thread", reschedule_from_a_thread};

// A plain thread cancels a scope of a running runtime.
void cancel_from_a_thread() {
  weft::run([] {
    weft::cancel_scope scope;
    scope.run([&] {
      std::thread t([&] { scope.cancel(); });
      t.join();
    });
  });
}
const child_scenario cancel_scenario{"cancel_scope::cancel from a plain thread", cancel_from_a_thread};

void check_misuse_reported(const child_outcome& o, const std::string& what) {
  INFO(o.describe());
  CHECK(o.killed_by(SIGABRT));
  CHECK(o.err.find("weft: " + what + " was called from a thread that does not run the runtime it belongs to") !=
        std::string::npos);
  CHECK(o.err.find("from a thread without a weft runtime") != std::string::npos);
}

}  // namespace

TEST_CASE("a runtime touched from a thread that does not run it ends the program with a message") {
  SUBCASE("lowlevel::reschedule") {
    check_misuse_reported(run_child("reschedule from a plain thread"),
                          "waking a task (an event, lock, semaphore, channel or lowlevel::reschedule)");
  }
  SUBCASE("cancel_scope::cancel") {
    check_misuse_reported(run_child("cancel_scope::cancel from a plain thread"),
                          "cancelling (cancel_scope::cancel, task::cancel)");
  }
}

TEST_CASE("event::set from a plain thread while a task waits throws logic_error and wakes nothing") {
  weft_test::run([] {
    weft::event e;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { e.wait(); });
      weft::testing::wait_all_tasks_blocked();
      std::string error;
      std::thread t([&] {
        try {
          e.set();
        } catch (const std::logic_error& ex) {
          error = ex.what();
        }
      });
      t.join();
      CHECK(error.find("weft::event::set: its waiters are tasks of another runtime") != std::string::npos);
      CHECK_FALSE(e.is_set());
      e.set();
    });
  });
}

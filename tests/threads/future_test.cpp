// weft::future and weft::promise: the state machine, the cancel rules, who
// waits how, done-callbacks and where they run, and weft::report_error.
#include "threads/threads_support.hpp"

#include <weft/lowlevel/park.hpp>
#include <weft/lowlevel/system_task.hpp>
#include <weft/threads/future.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <latch>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace weft_test;
using namespace weft_threads_test;

TEST_CASE("a value set by another thread reaches a task that waits for it") {
  run([] {
    weft::promise<int> p;
    weft::future<int> f = p.get_future();
    CHECK_FALSE(f.done());
    std::thread t([p]() mutable { CHECK(p.set_value(123)); });
    CHECK(f.get() == 123);
    CHECK(f.done());
    CHECK_FALSE(f.cancelled());
    CHECK(f.result() == 123);
    CHECK(f.exception() == nullptr);
    t.join();
  });
}

TEST_CASE("the job's exception comes out as the same object, every time, on every thread") {
  const auto ep = std::make_exception_ptr(std::runtime_error("job failed"));
  const void* original = nullptr;
  try {
    std::rethrow_exception(ep);
  } catch (const std::runtime_error& e) {
    original = &e;
  }
  weft::promise<int> p;
  weft::future<int> f = p.get_future();
  std::thread t([&] { CHECK(p.set_exception(ep)); });
  run([&] {
    try {
      f.get();
      FAIL("get() returned");
    } catch (const std::runtime_error& e) {
      CHECK(&e == original);
    }
  });
  t.join();
  CHECK(f.exception() == ep);
  try {
    f.result();
  } catch (const std::runtime_error& e) {
    CHECK(&e == original);
  }
}

TEST_CASE("an outcome is set once: a second set of any kind throws invalid_state_error") {
  weft::promise<int> p;
  CHECK(p.set_value(1));
  CHECK_THROWS_AS(p.set_value(2), weft::invalid_state_error);
  CHECK_THROWS_AS(p.set_exception(std::make_exception_ptr(std::runtime_error("x"))), weft::invalid_state_error);
  CHECK(p.get_future().result() == 1);
  weft::promise<void> q;
  CHECK(q.set_exception(std::make_exception_ptr(std::runtime_error("x"))));
  CHECK_THROWS_AS(q.set_value(), weft::invalid_state_error);
  CHECK_THROWS_AS(q.set_exception(std::make_exception_ptr(std::runtime_error("y"))), weft::invalid_state_error);
  CHECK_THROWS_AS(q.set_exception(nullptr), std::invalid_argument);
}

TEST_CASE("the outcome asked for before the future is done is an invalid_state_error, and nothing waits") {
  weft::promise<int> p;
  weft::future<int> f = p.get_future();
  CHECK_THROWS_AS(f.result(), weft::invalid_state_error);
  CHECK_THROWS_AS(f.exception(), weft::invalid_state_error);
  weft::future<int> empty;
  CHECK_FALSE(empty.valid());
  CHECK_FALSE(empty.done());
  CHECK_THROWS_AS(empty.get(), weft::invalid_state_error);
  CHECK(empty.remove_done_callback(1) == 0);
}

TEST_CASE("cancel rules: pending, running, running with a hook, cancelled twice, done") {
  SUBCASE("a pending future is cancelled and its job never starts") {
    weft::promise<int> p;
    auto f = p.get_future();
    CHECK(f.cancel("stop"));
    CHECK(f.cancelled());
    CHECK(f.done());
    CHECK_FALSE(p.set_running());  // the job must not run
    CHECK_FALSE(p.set_value(1));   // dropped
    CHECK(error_of<weft::future_cancelled_error>([&] { f.result(); }) == "stop");
    CHECK(error_of<weft::future_cancelled_error>([&] { f.exception(); }) == "stop");
  }
  SUBCASE("a running job that cannot be cancelled refuses, and its value arrives") {
    weft::promise<int> p;
    auto f = p.get_future();
    CHECK(p.set_running());
    CHECK(f.running());
    CHECK_FALSE(f.cancel("stop"));
    CHECK_FALSE(f.cancelled());
    CHECK(p.set_value(42));
    CHECK(f.result() == 42);
  }
  SUBCASE("a running job with a hook is cancelled at once, and told once") {
    struct counting_hook : weft::future_cancel_hook {
      int calls = 0;
      counting_hook() {
        fn = [](weft::future_cancel_hook* h) noexcept { ++static_cast<counting_hook*>(h)->calls; };
      }
    } hook;
    weft::promise<int> p;
    auto f = p.get_future();
    CHECK(p.set_running(&hook));
    CHECK(f.cancel("one"));
    CHECK(f.cancelled());
    CHECK(f.cancel("two"));
    CHECK(hook.calls == 1);
    CHECK_FALSE(p.set_value(5));
    CHECK(error_of<weft::future_cancelled_error>([&] { f.result(); }) == "one\ntwo");
  }
  SUBCASE("a done future refuses") {
    weft::promise<void> p;
    auto f = p.get_future();
    CHECK(p.set_value());
    CHECK_FALSE(f.cancel("late"));
    CHECK_FALSE(f.cancelled());
    f.result();
  }
  SUBCASE("without reasons the message says it was cancelled") {
    weft::promise<int> p;
    auto f = p.get_future();
    CHECK(f.cancel());
    CHECK(error_of<weft::future_cancelled_error>([&] { f.result(); }) == "the future was cancelled");
  }
}

TEST_CASE("set_running twice, or after the outcome, is an invalid_state_error") {
  weft::promise<int> p;
  CHECK(p.set_running());
  CHECK_THROWS_AS(p.set_running(), weft::invalid_state_error);
  CHECK(p.set_value(1));
  CHECK_THROWS_AS(p.set_running(), weft::invalid_state_error);
}

TEST_CASE("weft::cancelled does not cross: set as the exception, it makes the future cancelled") {
  weft::promise<int> p;
  auto f = p.get_future();
  CHECK(p.set_exception(std::make_exception_ptr(weft::cancelled())));
  CHECK(f.cancelled());
  CHECK_THROWS_AS(f.result(), weft::future_cancelled_error);
  CHECK_THROWS_AS(f.exception(), weft::future_cancelled_error);
}

TEST_CASE("the last promise gone without an outcome fails the future with abandoned_error") {
  weft::future<int> f;
  {
    weft::promise<int> p;
    f = p.get_future();
    weft::promise<int> copy = p;
  }
  CHECK(f.done());
  CHECK_THROWS_AS(f.result(), weft::abandoned_error);
}

TEST_CASE("an exception set after the future was cancelled is reported once, not thrown") {
  reports r;
  weft::promise<int> p;
  auto f = p.get_future();
  CHECK(f.cancel());
  CHECK_FALSE(p.set_exception(std::make_exception_ptr(std::runtime_error("late failure"))));
  REQUIRE(r.count() == 1);
  CHECK(message_of(r.errors()[0]) == "late failure");
  CHECK(r.contexts()[0] == "the exception of a job whose weft::future was cancelled");
}

// --- waiting ---------------------------------------------------------------------

TEST_CASE("a done future is collected without a checkpoint, even in a cancelled scope") {
  run([] {
    weft::promise<int> p;
    auto f = p.get_future();
    p.set_value(42);
    int got = 0;
    auto scope = weft::move_on_after(0s);
    scope.run([&] { got = f.get(); });
    CHECK(got == 42);
    CHECK_FALSE(scope.cancelled_caught());
  });
}

TEST_CASE("a future cancelled by someone else is a checkpoint, then future_cancelled_error") {
  run([] {
    weft::promise<int> p;
    auto f = p.get_future();
    f.cancel("by a third party");
    CHECK(error_of<weft::future_cancelled_error>([&] { f.get(); }) == "by a third party");
    // The task's own cancellation prevails.
    auto scope = weft::open_cancel_scope();
    scope.cancel();
    bool after = false;
    scope.run([&] {
      f.get();
      after = true;
    });
    CHECK_FALSE(after);
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("a waiting task that is cancelled cancels a pending future and gets weft::cancelled") {
  run([] {
    weft::promise<int> p;
    auto f = p.get_future();
    auto scope = weft::move_on_after(1s);
    bool returned = false;
    scope.run([&] {
      f.get();
      returned = true;
    });
    CHECK_FALSE(returned);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 1);
    CHECK(f.cancelled());
    CHECK(error_of<weft::future_cancelled_error>([&] { f.result(); }) == "the waiting task was cancelled (cancelled by a deadline)");
    CHECK_FALSE(p.set_running());
  });
}

TEST_CASE("a waiting task that is cancelled while the job runs uncancellably gets the outcome; the cancellation comes next") {
  run([] {
    weft::promise<int> p;
    auto f = p.get_future();
    CHECK(p.set_running());
    std::latch cancelled_now(1);
    std::thread job([&] {
      cancelled_now.wait();
      p.set_value(42);
    });
    auto scope = weft::open_cancel_scope();
    int got = 0;
    bool reached_next_checkpoint = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          got = f.get();
          reached_next_checkpoint = true;
          weft::checkpoint();
          reached_next_checkpoint = false;
        });
      });
      weft::testing::wait_all_tasks_blocked();
      scope.cancel();
      cancelled_now.count_down();
    });
    job.join();
    CHECK(got == 42);
    CHECK(reached_next_checkpoint);
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(f.cancelled());
  });
}

TEST_CASE("a task waiting for a running job with a hook cancels it at once") {
  run([] {
    weft::future_cancel_hook hook;
    hook.fn = [](weft::future_cancel_hook*) noexcept {};
    weft::promise<int> p;
    auto f = p.get_future();
    CHECK(p.set_running(&hook));
    auto scope = weft::move_on_after(2s);
    scope.run([&] { f.get(); });
    CHECK(scope.cancelled_caught());
    CHECK(f.cancelled());
  });
}

TEST_CASE("a timed wait in a task: timeout_error, and the future cancelled unless shielded") {
  run([] {
    weft::promise<int> p;
    auto f = p.get_future();
    CHECK_THROWS_AS(f.wait({.timeout = 1ms, .shield = true}), weft::timeout_error);
    CHECK(now_s() == doctest::Approx(0.001));
    CHECK_FALSE(f.done());
    CHECK_THROWS_AS(f.wait({.timeout = 1ms}), weft::timeout_error);
    CHECK(f.cancelled());
    CHECK(error_of<weft::future_cancelled_error>([&] { f.result(); }) == "the waiter's timeout expired");
    CHECK_THROWS_AS(f.wait({.timeout = -1s}), std::invalid_argument);
  });
}

namespace {
// Completes `late` at the race point between a timed-out waiter's
// withdrawal and its cancelling of the future.
weft::promise<int>* late = nullptr;
void complete_late(const char* point) noexcept {
  if (late != nullptr && std::string_view(point) == "future: a withdrawn waiter cancels the future")
    std::exchange(late, nullptr)->set_value(7);
}
}  // namespace

TEST_CASE("a timed wait whose value arrives as the timeout withdraws it returns the value") {
  run([] {
    weft::promise<int> p;
    auto f = p.get_future();
    late = &p;
    const auto previous = weft::testing::set_race_point_hook(&complete_late);
    int got = 0;
    try {
      got = f.get({.timeout = 1ms});
    } catch (const weft::timeout_error&) {
      FAIL("the value arrived, yet the wait threw timeout_error");
    }
    weft::testing::set_race_point_hook(previous);
    CHECK(late == nullptr);  // the race point was reached
    CHECK(got == 7);
    CHECK(f.done());
    CHECK_FALSE(f.cancelled());
  });
}

TEST_CASE("a shielded wait ignores the task's cancellation and returns the value") {
  run([] {
    weft::promise<int> p;
    auto f = p.get_future();
    auto scope = weft::open_cancel_scope();
    int got = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { scope.run([&] { got = f.get({.shield = true}); }); });
      weft::testing::wait_all_tasks_blocked();
      scope.cancel();
      weft::testing::wait_all_tasks_blocked();
      p.set_value(8);
    });
    CHECK(got == 8);
    CHECK_FALSE(f.cancelled());
  });
}

TEST_CASE("a timed wait on a plain thread: timeout_error, and the future cancelled unless shielded") {
  weft::promise<int> p;
  auto f = p.get_future();
  CHECK_THROWS_AS(f.wait({.timeout = 1ms, .shield = true}), weft::timeout_error);
  CHECK_FALSE(f.done());
  CHECK_THROWS_AS(f.wait({.timeout = 1ms}), weft::timeout_error);
  CHECK(f.cancelled());
}

TEST_CASE("one future is awaited from its home runtime, another runtime and a plain thread at once") {
  weft::promise<int> p;
  auto f = p.get_future();
  std::atomic<int> sum{0};
  std::latch waiting(2);
  std::thread plain([&] {
    waiting.count_down();
    sum += f.get();
  });
  std::thread other([&] {
    in_other_runtime([&] {
      waiting.count_down();
      sum += f.get();
    });
  });
  run([&] {
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { sum += f.get(); });
      weft::testing::wait_all_tasks_blocked();  // the home task waits
      waiting.wait();  // the others wait, or are about to: either way they get the value
      p.set_value(7);
    });
  });
  plain.join();
  other.join();
  CHECK(sum == 21);
}

TEST_CASE("a blocking wait on a runtime's thread outside any task throws instead of deadlocking") {
  run([] {
    weft::promise<int> p;
    auto f = p.get_future();
    std::string error;
    weft::event handled;
    boost::asio::post(weft::lowlevel::io_context(), [&] {
      try {
        f.wait();
      } catch (const std::logic_error& e) {
        error = e.what();
      }
      handled.set();
    });
    handled.wait();
    CHECK(error.find("outside any task") != std::string::npos);
    p.set_value(1);
  });
}

// --- done-callbacks ------------------------------------------------------------------

TEST_CASE("done-callbacks run on the home runtime, outside any task, newest first") {
  run([] {
    weft::promise<int> p;
    auto f = p.get_future();
    const std::thread::id home = std::this_thread::get_id();
    std::vector<int> order;
    bool outside_task = true;
    bool on_home = true;
    weft::event all_ran;
    for (int i = 1; i <= 3; ++i)
      f.add_done_callback([&, i](weft::future<int>& g) {
        order.push_back(i * 10 + g.result());
        on_home = on_home && std::this_thread::get_id() == home;
        outside_task = outside_task && !weft::lowlevel::in_task();
        if (order.size() == 3) all_ran.set();
      });
    const auto removed = f.add_done_callback([](weft::future<int>&) { FAIL("removed callback ran"); });
    CHECK(f.remove_done_callback(removed) == 1);
    CHECK(f.remove_done_callback(removed) == 0);
    std::thread([p]() mutable { p.set_value(1); }).join();
    all_ran.wait();
    CHECK(order == std::vector<int>{31, 21, 11});
    CHECK(on_home);
    CHECK(outside_task);
  });
}

TEST_CASE("a callback added to a done future is scheduled, never run inline") {
  run([] {
    weft::promise<int> p;
    auto f = p.get_future();
    p.set_value(3);
    bool ran = false;
    weft::event done;
    f.add_done_callback([&](weft::future<int>&) {
      ran = true;
      done.set();
    });
    CHECK_FALSE(ran);
    done.wait();
    CHECK(ran);
  });
}

TEST_CASE("an exception escaping a done-callback is reported once and the other callbacks run") {
  reports r;
  run([&] {
    weft::promise<void> p;
    auto f = p.get_future();
    weft::event second;
    f.add_done_callback([&](weft::future<void>&) { second.set(); });
    f.add_done_callback([](weft::future<void>&) { throw std::runtime_error("callback failed"); });
    p.set_value();
    second.wait();
  });
  REQUIRE(r.count() == 1);
  CHECK(message_of(r.errors()[0]) == "callback failed");
}

TEST_CASE("a future whose home runtime ended still works; its callbacks are reported, not run") {
  reports r;
  weft::promise<int> p;
  weft::future<int> f;
  bool ran = false;
  run([&] {
    p = weft::promise<int>();
    f = p.get_future();
    f.add_done_callback([&](weft::future<int>&) { ran = true; });
  });
  std::thread([&] { p.set_value(9); }).join();
  CHECK(f.get() == 9);
  CHECK_FALSE(ran);
  REQUIRE(r.count() == 1);
  CHECK(holds<weft::runtime_closed_error>(r.errors()[0]));
}

TEST_CASE("a future made on a plain thread runs its callbacks where it completes, or inline once done") {
  weft::promise<int> p;
  auto f = p.get_future();
  std::thread::id ran_on;
  f.add_done_callback([&](weft::future<int>&) { ran_on = std::this_thread::get_id(); });
  std::thread setter([&] { p.set_value(1); });
  const auto setter_id = setter.get_id();
  setter.join();
  CHECK(ran_on == setter_id);
  bool inline_ran = false;
  f.add_done_callback([&](weft::future<int>&) { inline_ran = true; });
  CHECK(inline_ran);
}

// --- report_error ----------------------------------------------------------------------

TEST_CASE("report_error: the default writes one line with the task's name; a hook replaces it") {
  {
    stderr_capture err;
    weft::run([] {
      weft::open_task_group([](weft::task_group& tg) {
        tg.start_soon(weft::task_options{.name = "reporter"},
                      [] { weft::report_error(std::make_exception_ptr(std::runtime_error("lost")), "a test"); });
      });
    });
    CHECK(err.text() == "weft: a test (task 'reporter'): lost\n");
  }
  {
    stderr_capture err;
    weft::report_error(std::make_exception_ptr(std::runtime_error("lost")), "no task");
    weft::report_error(nullptr, "nothing");
    CHECK(err.text() == "weft: no task: lost\n");
  }
  reports r;
  weft::report_error(std::make_exception_ptr(weft::cancelled()), "a cancellation");
  CHECK(r.count() == 1);
  CHECK(r.tasks()[0].empty());
}

TEST_CASE("a failed system task goes through report_error") {
  reports r;
  run([] {
    weft::lowlevel::spawn_system_task([] { throw std::runtime_error("system failure"); });
    weft::sleep(1s);
  });
  REQUIRE(r.count() == 1);
  CHECK(r.contexts()[0].find("system task '") == 0);
  CHECK(message_of(r.errors()[0]) == "system failure");
}

TEST_CASE("unwrap_future of a weft::future: done returns at once, cancelled throws, pending waits") {
  run([] {
    weft::promise<int> done;
    done.set_value(1);
    CHECK(weft::unwrap_future(done.get_future()) == 1);
    weft::promise<int> cancelled;
    cancelled.get_future().cancel("gone");
    CHECK_THROWS_AS(weft::unwrap_future(cancelled.get_future()), weft::future_cancelled_error);
    weft::promise<int> later;
    std::thread setter([later]() mutable { later.set_value(3); });
    CHECK(weft::unwrap_future(later.get_future()) == 3);
    setter.join();
  });
}

TEST_CASE("a task of another runtime that is cancelled while it waits cancels the future") {
  weft::promise<int> p;  // no home: made on a plain thread
  auto f = p.get_future();
  bool caught = false;
  in_other_runtime([&] {
    auto scope = weft::move_on_after(1ms);
    scope.run([&] { f.get(); });
    caught = scope.cancelled_caught();
  });
  CHECK(caught);
  CHECK(f.cancelled());
  CHECK_FALSE(p.set_value(1));
}

// weft::caller: event loops on named threads that any thread calls.
// Every test stops the callers it starts (the leak check after each test
// counts their tasks too).
#include "threads/threads_support.hpp"

#include <weft/coro.hpp>
#include <weft/testing/manual_clock.hpp>
#include <weft/threads/caller.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace weft_test;
using namespace weft_threads_test;

namespace {

weft::caller_options named(std::string name, bool protect = false) {
  weft::caller_options o;
  o.name = std::move(name);
  o.protect = protect;
  return o;
}

// Stops the caller when the test leaves, whatever happens.
struct stopper {
  weft::caller c;
  ~stopper() { c.stop(true); }
};

bool listed(const weft::caller& c, bool running_only = true) {
  auto all = weft::caller::all_callers(running_only);
  return std::find(all.begin(), all.end(), c) != all.end();
}

}  // namespace

TEST_CASE("a caller runs calls from a plain thread on its own thread, as tasks, passing arguments and results") {
  weft::caller c = weft::caller::start_new(named("worker"));
  stopper s{c};
  CHECK(c.name() == "worker");
  CHECK(c.running());
  CHECK_FALSE(c.stopped());
  const std::thread::id caller_thread = c.call_soon([] { return std::this_thread::get_id(); }).get();
  CHECK(caller_thread != std::this_thread::get_id());
  CHECK(c.call_soon([] {
           char name[16] = {};
           ::pthread_getname_np(::pthread_self(), name, sizeof name);
           return std::string(name);
         }).get() == "worker");  // the thread's name
  CHECK(c.call_soon([](int a, const std::string& b) { return b + std::to_string(a); }, 7, "x").get() == "x7");
  CHECK(c.call_soon([] {
           CHECK(weft::lowlevel::in_task());
           CHECK(weft::caller::current().name() == "worker");
           weft::sleep(1ms);  // task code: it may block
           return 5;
         }).get() == 5);
  // Functions returning an awaitable: the task awaits it.
  CHECK(c.call_soon([] { return answer_later(0.001); }).get() == 42);
  CHECK(c.call_soon(answer_later, 0.0).get() == 42);
  CHECK(c.call_soon([] { return asio_answer(); }).get() == 43);
  c.call_soon([] {}).get();  // void
  // The very exception object crosses.
  auto failing = c.call_soon([] { throw test_error("boom"); });
  CHECK(error_of<test_error>([&] { failing.get(); }) == "boom");
  CHECK(failing.exception() == failing.exception());
  CHECK_THROWS_AS(weft::caller::current(), std::logic_error);  // this thread is no caller's
}

TEST_CASE("a task of another runtime awaiting a caller's call parks; its own runtime goes on") {
  weft::caller c = weft::caller::start_new(named("db"));
  stopper s{c};
  run_real([&] {
    std::atomic<bool> other_ran{false};
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      CHECK(c.call_soon([] {
               weft::sleep(10ms);
               return 42;
             }).get() == 42);
    });
    CHECK(other_ran);
  });
}

TEST_CASE("one future of a caller waited from the submitting runtime, inside the caller, and by plain threads") {
  weft::caller c = weft::caller::start_new(named("shared"));
  stopper s{c};
  weft::promise<int> gate;
  weft::future<int> f = c.call_soon([gate] { return gate.get_future().get() + 1; });
  std::latch waiting(3);
  std::atomic<int> sum{0};
  std::thread plain([&] {
    waiting.count_down();
    sum += f.get();
  });
  // Inside the caller's own loop: another of its calls awaits it.
  weft::future<int> inner = c.call_soon([f] { return f.get() * 10; });
  std::thread other_runtime([&] {
    weft::run([&] {
      waiting.count_down();
      sum += f.get();
    });
  });
  waiting.count_down();
  waiting.wait();
  gate.set_value(41);
  CHECK(f.get() == 42);
  CHECK(inner.get() == 420);
  plain.join();
  other_runtime.join();
  CHECK(sum == 84);
}

TEST_CASE("a caller's own thread may call it; a blocking wait there outside any task is refused") {
  weft::caller c = weft::caller::start_new(named("self"));
  stopper s{c};
  CHECK(c.call_soon([] {
           weft::caller self = weft::caller::current();
           return self.call_soon([] { return 2; }).get() + 1;  // a task of the caller parks on it
         }).get() == 3);
  // call_direct runs outside any task: a blocking wait there would deadlock the loop.
  weft::promise<std::string> seen;
  c.call_direct([seen]() mutable {
    weft::caller self = weft::caller::current();
    auto f = self.call_soon([] { return 1; });
    try {
      (void)f.get();
      seen.set_value("waited");
    } catch (const std::logic_error&) {
      seen.set_value("refused");
    }
  });
  CHECK(seen.get_future().get() == "refused");
}

TEST_CASE("call_direct runs outside any task on the caller's thread; its errors go to report_error") {
  weft::caller c = weft::caller::start_new(named("direct"));
  stopper s{c};
  reports rep;
  weft::promise<bool> ran;
  c.call_direct([ran](int n) mutable { ran.set_value(!weft::lowlevel::in_task() && n == 3); }, 3);
  CHECK(ran.get_future().get());
  weft::promise<void> after;
  c.call_direct([] { throw test_error("direct failure"); });
  c.call_direct([after]() mutable { after.set_value(); });  // in order: after the failing one
  after.get_future().get();
  REQUIRE(rep.count() == 1);
  CHECK(rep.contexts()[0] == "weft::caller::call_direct");
  CHECK(holds<test_error>(rep.errors()[0]));
}

TEST_CASE("call_later runs its call once the delay has passed since it was made") {
  weft::caller c = weft::caller::start_new(named("later"));
  stopper s{c};
  const auto start = std::chrono::steady_clock::now();
  auto f = c.call_later(weft::duration(0.05), [start](int x) {
    return std::pair(x, std::chrono::steady_clock::now() - start);
  }, 9);
  auto [x, elapsed] = f.get();
  CHECK(x == 9);
  CHECK(elapsed >= std::chrono::milliseconds(50));
  CHECK(c.call_later(weft::duration(0), [] { return 1; }).get() == 1);
  CHECK_THROWS_AS(c.call_later(weft::duration(-1), [] {}), std::invalid_argument);
  CHECK_THROWS_AS(c.call_later(weft::duration(std::nan("")), [] {}), std::invalid_argument);
}

TEST_CASE("call_later on a caller with a manual clock counts the delay on that clock") {
  auto clock = std::make_shared<weft::testing::manual_clock>();
  weft::caller_options o = named("manual");
  o.run.clock = clock;
  weft::caller c = weft::caller::start_new(o);
  stopper s{c};
  auto f = c.call_later(weft::duration(30), [] { return weft::current_time().time_since_epoch().count(); });
  wait_until([&] { return f.running(); }, "the delayed call to start waiting");
  CHECK_FALSE(f.done());
  const double start = c.call_soon([] { return weft::current_time().time_since_epoch().count(); }).get();
  c.call_soon([clock] { clock->jump(weft::duration(30)); }).get();
  CHECK(f.get() == doctest::Approx(start + 30).epsilon(0.01));
}

TEST_CASE("cancelling a caller's future: before it starts it never runs; while it waits or runs it ends cancelled") {
  weft::caller c = weft::caller::start_new(named("cancels"));
  stopper s{c};
  // Held up behind a call that blocks the caller's thread, the next call is pending.
  std::latch hold(1);
  std::atomic<bool> ran{false};
  c.call_direct([&hold] { hold.wait(); });
  auto pending = c.call_soon([&] { ran = true; });
  CHECK_FALSE(pending.running());
  CHECK(pending.cancel());
  hold.count_down();
  CHECK(error_of<weft::future_cancelled_error>([&] { pending.get(); }) == "the future was cancelled");
  // A delayed call is running while it waits: cancelling it ends the wait.
  auto slow = c.call_later(weft::duration(3600), [&] { ran = true; });
  wait_until([&] { return slow.running(); }, "the delayed call to wait");
  CHECK(slow.cancel("no longer wanted"));
  c.call_soon([] {}).get();  // the cancellation has reached the caller
  CHECK(slow.cancelled());
  CHECK(error_of<weft::future_cancelled_error>([&] { slow.get(); }) == "no longer wanted");
  // A running call is cancelled at its next checkpoint.
  std::atomic<bool> reached{false}, finished{false};
  auto running = c.call_soon([&] {
    reached = true;
    weft::sleep(std::chrono::hours(1));
    finished = true;
  });
  wait_until([&] { return reached.load(); }, "the call to run");
  CHECK(running.cancel());
  CHECK_THROWS_AS(running.get(), weft::future_cancelled_error);
  c.call_soon([] {}).get();  // the caller goes on
  CHECK_FALSE(ran);
  CHECK_FALSE(finished);
}

TEST_CASE("names: start_new refuses a running caller's name; get_instance finds it, or starts it with create") {
  weft::caller a = weft::caller::start_new(named("alpha"));
  stopper sa{a};
  CHECK(error_of<std::invalid_argument>([] { (void)weft::caller::start_new(named("alpha")); }) ==
        "weft::caller::start_new: a caller named \"alpha\" is running");
  CHECK(weft::caller::get_instance("alpha") == a);
  CHECK(error_of<std::invalid_argument>([] { (void)weft::caller::get_instance("nobody"); }) ==
        "weft::caller::get_instance: no caller named \"nobody\" is running");
  weft::caller b = weft::caller::get_instance("beta", /*create=*/true);
  stopper sb{b};
  CHECK(b.name() == "beta");
  CHECK(weft::caller::get_instance("beta", true) == b);
  weft::caller unnamed = weft::caller::start_new();
  stopper su{unnamed};
  CHECK(unnamed.name().starts_with("caller-"));
  CHECK(listed(a));
  CHECK(listed(b));
  CHECK(listed(unnamed));
  a.stop();
  CHECK(a.stopped());
  CHECK_FALSE(a.running());
  CHECK_FALSE(listed(a, false));
  // The name is free again.
  weft::caller again = weft::caller::start_new(named("alpha"));
  stopper sg{again};
  CHECK_FALSE(again == a);
  CHECK(weft::caller::get_instance("alpha") == again);
  CHECK_THROWS_AS((void)weft::caller().name(), std::logic_error);  // an empty handle
  CHECK_THROWS_AS(weft::caller().call_soon([] {}), std::logic_error);
}

TEST_CASE("stop cancels running calls, resolves pending ones as cancelled, and refuses new ones") {
  weft::caller c = weft::caller::start_new(named("stopping"));
  std::atomic<bool> reached{false}, finished{false}, later_ran{false};
  auto running = c.call_soon([&] {
    reached = true;
    weft::sleep(std::chrono::hours(1));
    finished = true;
  });
  auto later = c.call_later(weft::duration(10), [&] { later_ran = true; });
  wait_until([&] { return reached.load() && later.running(); }, "the calls to start");
  c.stop();  // from another thread: returns once the caller's thread has ended
  CHECK(c.stopped());
  CHECK_FALSE(c.running());
  CHECK(running.cancelled());
  CHECK(later.cancelled());
  CHECK_THROWS_AS(later.get(), weft::future_cancelled_error);
  CHECK_FALSE(finished);
  CHECK_FALSE(later_ran);
  CHECK(error_of<weft::runtime_closed_error>([&] { c.call_soon([] {}); }) ==
        "weft::caller::call_soon: the caller is not running (stopped)");
  CHECK_THROWS_AS(c.call_direct([] {}), weft::runtime_closed_error);
  CHECK_NOTHROW(c.stop());  // idempotent
  CHECK_FALSE(listed(c, false));
}

TEST_CASE("a call that stops its own caller: its future ends cancelled, and stop does not wait for itself") {
  weft::caller c = weft::caller::start_new(named("self-stop"));
  auto pending = c.call_later(weft::duration(10), [] { return 1; });
  auto f = c.call_soon([] {
    weft::caller::current().stop();  // returns at once on the caller's own thread
    weft::checkpoint();              // the caller's stop cancels this call
    return 2;
  });
  CHECK_THROWS_AS(f.get(), weft::future_cancelled_error);
  CHECK_THROWS_AS(pending.get(), weft::future_cancelled_error);
  wait_until([&] { return c.stopped(); }, "the caller to stop");
  CHECK_THROWS_AS(c.call_soon([] {}), weft::runtime_closed_error);
  c.stop();  // joins the ended thread

  // The same from outside any task.
  weft::caller d = weft::caller::start_new(named("self-stop-direct"));
  auto running = d.call_soon([] { weft::sleep(std::chrono::hours(1)); });
  d.call_direct([] { weft::caller::current().stop(); });
  CHECK_THROWS_AS(running.get(), weft::future_cancelled_error);
  wait_until([&] { return d.stopped(); }, "the caller to stop");
  d.stop();
}

TEST_CASE("a protected caller ignores stop() and stops with stop(true); stop_all stops every caller") {
  weft::caller p = weft::caller::start_new(named("guarded", /*protect=*/true));
  weft::caller q = weft::caller::start_new(named("plain"));
  p.stop();
  CHECK(p.running());
  CHECK(p.call_soon([] { return 1; }).get() == 1);
  weft::caller::stop_all();  // the protected one stays
  CHECK(q.stopped());
  CHECK(p.running());
  weft::caller::stop_all(/*force=*/true);
  CHECK(p.stopped());
  CHECK(weft::caller::all_callers(false).empty());
  // Not from a caller's thread: it would wait for itself.
  weft::caller r = weft::caller::start_new(named("inside"));
  stopper sr{r};
  CHECK(r.call_soon([] {
           try {
             weft::caller::stop_all();
             return std::string("stopped");
           } catch (const std::logic_error& e) {
             return std::string(e.what());
           }
         }).get() == "weft::caller::stop_all: called on a caller's thread (it would wait for itself)");
}

TEST_CASE("a caller whose runtime cannot start reports why, and its name stays free") {
  weft::caller_options o = named("broken");
  o.run.stack_size = std::size_t(1) << 62;  // no such stack
  CHECK_THROWS(weft::caller::start_new(o));
  CHECK_THROWS_AS(weft::caller::get_instance("broken"), std::invalid_argument);
  weft::caller ok = weft::caller::start_new(named("broken"));
  stopper s{ok};
  CHECK(ok.running());
}

TEST_CASE("calls racing a caller's stop are each run, resolved cancelled, or refused; never lost") {
  for (int round = 0; round < 50; ++round) {
    weft::caller c = weft::caller::start_new(named("race"));
    std::atomic<int> ran{0};
    std::vector<weft::future<int>> futures;
    std::mutex m;
    std::atomic<int> refused{0};
    std::thread submitter([&] {
      for (int i = 0; i < 200; ++i) {
        try {
          auto f = c.call_soon([&ran] {
            ++ran;
            return 1;
          });
          std::lock_guard<std::mutex> lock(m);
          futures.push_back(std::move(f));
        } catch (const weft::runtime_closed_error&) {
          ++refused;
        }
      }
    });
    c.stop();
    submitter.join();
    int values = 0, cancelled = 0;
    for (auto& f : futures) {
      f.wait();  // never hangs: each accepted call resolves
      if (f.cancelled())
        ++cancelled;
      else
        values += f.get();
    }
    CHECK(values == ran.load());
    CHECK(values + cancelled + refused.load() == 200);
  }
}

TEST_CASE("open_caller makes the running runtime a caller while its body runs") {
  run_real([] {
    const auto loop_thread = std::this_thread::get_id();
    weft::future<void> left_running;
    weft::caller seen;
    weft::open_caller(
        [&](weft::caller& here) {
          seen = here;
          CHECK(here.running());
          CHECK(weft::caller::current() == here);
          on_thread([&] {
            weft::caller found = weft::caller::get_instance("here");
            CHECK(found == here);
            CHECK(found.call_soon([] { return std::this_thread::get_id(); }).get() == loop_thread);
            left_running = found.call_soon([] { weft::sleep(std::chrono::hours(1)); });
          });
          CHECK(here.call_soon([](int x) { return x * 2; }, 21).get() == 42);  // from its own tasks too
          CHECK_FALSE(left_running.done());
        },
        named("here"));
    // Leaving the body stopped it: the running call was cancelled and waited for.
    CHECK(left_running.cancelled());
    CHECK(seen.stopped());
    CHECK_THROWS_AS(seen.call_soon([] {}), weft::runtime_closed_error);
    CHECK_THROWS_AS(weft::caller::get_instance("here"), std::invalid_argument);
    CHECK_THROWS_AS(weft::caller::current(), std::logic_error);
  });
  CHECK_THROWS_AS(weft::open_caller([](weft::caller&) {}), std::logic_error);  // not in a task
}

TEST_CASE("stop() from another thread ends an open_caller body, and returns once it has") {
  run_real([] {
    bool body_cancelled = false;
    std::atomic<bool> stop_returned{false};
    std::thread stopper_thread;
    weft::open_caller(
        [&](weft::caller& here) {
          stopper_thread = std::thread([here, &stop_returned] {
            here.stop();
            stop_returned = true;
          });
          try {
            weft::sleep(std::chrono::hours(1));
          } catch (const weft::cancelled&) {
            body_cancelled = true;
            CHECK_FALSE(stop_returned);  // it waits for the caller to have stopped
            throw;
          }
        },
        named("stopped-from-outside"));
    CHECK(body_cancelled);
    weft::run_in_thread([&] { stopper_thread.join(); });
    CHECK(stop_returned);
  });
}

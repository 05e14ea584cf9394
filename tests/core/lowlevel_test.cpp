// The lowlevel contract (lowlevel/park.hpp, lowlevel/completion.hpp), one
// promise at a time: park returns once rescheduled, abort runs once on
// cancellation and decides what park does, the checks of misuse, call_soon,
// and the waits of lowlevel::completion on the task's own thread.
//
// Completions from other threads are tested in tests/completion as well.
#include "support/child_process.hpp"
#include "support/support.hpp"

#include <weft/lowlevel/completion.hpp>
#include <weft/lowlevel/dump.hpp>
#include <weft/lowlevel/park.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace weft_test;
namespace ll = weft::lowlevel;

namespace {

// The task running now, or an empty ref where there is none (an Asio
// handler, a soon call): lowlevel::current_task() throws there.
ll::task_ref task_here() {
  try {
    return ll::current_task();
  } catch (const std::logic_error&) {
    return {};
  }
}

// A wait built on park, as a blocking primitive would build it: the task
// registers itself, then parks. Its abort withdraws the registration, or
// refuses to (`refuse_abort`), and records how it was called.
struct waiter {
  ll::task_ref parked;  // registered: whoever completes the wait reschedules it
  bool refuse_abort = false;
  int aborts = 0;
  bool abort_on_runtime_thread = false;
  bool abort_in_parked_task = false;
  std::thread::id runtime_thread = std::this_thread::get_id();

  // Parks the current task. @throws weft::cancelled if its abort withdrew the wait.
  void wait() {
    parked = ll::current_task();
    ll::park([this]() noexcept {
      ++aborts;
      abort_on_runtime_thread = std::this_thread::get_id() == runtime_thread;
      abort_in_parked_task = task_here() == parked;
      if (refuse_abort) return ll::abort_result::failed;
      parked = {};
      return ll::abort_result::succeeded;
    });
  }
  // Completes the wait: reschedules the registered task.
  void wake() {
    REQUIRE(parked);
    ll::reschedule(std::exchange(parked, {}));
  }
};

// A soon call that runs a function.
struct soon_fn : ll::soon_call {
  std::function<void()> body;
  explicit soon_fn(std::function<void()> b) : body(std::move(b)) {
    fn = [](ll::soon_call* self) noexcept { static_cast<soon_fn*>(self)->body(); };
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The dump line of the task named `name`, without its indentation.
std::string dump_line_of(const std::string& name) {
  std::ostringstream out;
  ll::dump_tasks(out);
  for (const std::string& line : lines_of(out.str())) {
    const auto at = line.find("task ");
    if (at != std::string::npos && line.find("\"" + name + "\"") != std::string::npos) return line.substr(at);
  }
  return "<no task " + name + ">";
}

}  // namespace

// --- park and reschedule ------------------------------------------------------------

TEST_CASE("park returns normally once reschedule is called: from another task, an Asio handler, a soon call") {
  enum class from { task, asio_handler, soon_call };
  for (const from f : {from::task, from::asio_handler, from::soon_call}) {
    CAPTURE(static_cast<int>(f));
    run([f] {
      waiter w;
      bool returned = false;
      soon_fn wake_soon([&] { w.wake(); });
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          w.wait();
          returned = true;
        });
        weft::testing::wait_all_tasks_blocked();
        REQUIRE(w.parked);
        CHECK_FALSE(returned);
        switch (f) {
          case from::task:
            w.wake();
            break;
          case from::asio_handler:
            boost::asio::post(ll::io_context(), [&] { w.wake(); });
            break;
          case from::soon_call:
            ll::call_soon(wake_soon);
            break;
        }
      });
      CHECK(returned);
      CHECK(w.aborts == 0);
      CHECK(now_s() == 0);
    });
  }
}

TEST_CASE("a task cancelled while parked: abort runs once, on the runtime's thread and not in the parked task; "
          "when it withdraws the wait, park throws cancelled") {
  SUBCASE("cancelled by another task") {
    run([] {
      waiter w;
      bool returned = false;
      weft::cancel_scope scope;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          scope.run([&] {
            w.wait();
            returned = true;
          });
        });
        weft::testing::wait_all_tasks_blocked();
        scope.cancel();
        scope.cancel();  // abort is not called again
      });
      CHECK(w.aborts == 1);
      CHECK(w.abort_on_runtime_thread);
      CHECK_FALSE(w.abort_in_parked_task);
      CHECK_FALSE(returned);
      CHECK(scope.cancelled_caught());
    });
  }
  SUBCASE("cancelled by a deadline, from the loop") {
    run([] {
      waiter w;
      bool returned = false;
      auto scope = weft::move_on_after(5s);
      scope.run([&] {
        w.wait();
        returned = true;
      });
      CHECK(w.aborts == 1);
      CHECK(w.abort_on_runtime_thread);
      CHECK_FALSE(w.abort_in_parked_task);
      CHECK_FALSE(returned);
      CHECK(scope.cancelled_caught());
      CHECK(now_s() == 5);
    });
  }
}

TEST_CASE("when abort cannot withdraw the wait, the task stays parked until rescheduled, park returns normally, "
          "and the cancellation comes at the next checkpoint") {
  run([] {
    waiter w;
    w.refuse_abort = true;
    bool park_returned = false;
    bool after_checkpoint = false;
    weft::cancel_scope outer, scope;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        outer.run([&] {
          scope.run([&] {
            w.wait();
            park_returned = true;
            weft::checkpoint();
            after_checkpoint = true;
          });
        });
      });
      weft::testing::wait_all_tasks_blocked();
      scope.cancel();
      CHECK(w.aborts == 1);
      weft::sleep(10s);  // nothing else can wake it
      CHECK_FALSE(park_returned);
      CHECK(w.parked);
      outer.cancel();  // a further cancellation does not call abort again
      weft::testing::wait_all_tasks_blocked();
      CHECK(w.aborts == 1);
      w.wake();
    });
    CHECK(park_returned);
    CHECK_FALSE(after_checkpoint);
    CHECK(outer.cancelled_caught());  // the outermost cancelled scope catches
  });
}

TEST_CASE("park in a task that is already cancelled calls abort at once: withdrawn, park throws without a switch; "
          "not withdrawn, it parks until rescheduled") {
  SUBCASE("abort withdraws the wait") {
    run([] {
      waiter w;
      bool other_ran = false;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] { other_ran = true; });
        weft::cancel_scope scope;
        scope.cancel();
        scope.run([&] {
          w.wait();
          FAIL("park returned in a cancelled scope");
        });
        CHECK(scope.cancelled_caught());
        CHECK(w.aborts == 1);
        CHECK(w.abort_in_parked_task);  // no other context is involved yet
        CHECK_FALSE(other_ran);         // park threw without switching to another task
      });
      CHECK(other_ran);
    });
  }
  SUBCASE("abort cannot withdraw it") {
    run([] {
      waiter w;
      w.refuse_abort = true;
      bool park_returned = false;
      weft::cancel_scope scope;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          weft::testing::wait_all_tasks_blocked();
          CHECK_FALSE(park_returned);
          w.wake();
        });
        scope.cancel();
        scope.run([&] {
          w.wait();
          park_returned = true;
          weft::checkpoint();
          FAIL("the cancellation was not delivered at the next checkpoint");
        });
      });
      CHECK(w.aborts == 1);
      CHECK(park_returned);
      CHECK(scope.cancelled_caught());
    });
  }
}

TEST_CASE("cancellation_pending and raise_if_cancelled tell whether the task is cancelled, without a switch") {
  run([] {
    bool other_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      weft::cancel_scope scope;
      scope.run([&] {
        CHECK_FALSE(ll::cancellation_pending());
        CHECK_NOTHROW(ll::raise_if_cancelled());
        scope.cancel();
        CHECK(ll::cancellation_pending());
        weft::ignore_cancellation([&] {
          CHECK_FALSE(ll::cancellation_pending());  // shielded
          CHECK_NOTHROW(ll::raise_if_cancelled());
        });
        CHECK(ll::cancellation_pending());
        CHECK_FALSE(other_ran);
        ll::raise_if_cancelled();
        FAIL("raise_if_cancelled did not throw");
      });
      CHECK(scope.cancelled_caught());
      CHECK_FALSE(other_ran);  // neither of them let another task run
      CHECK_FALSE(ll::cancellation_pending());
    });
    CHECK(other_ran);
  });
}

TEST_CASE("describe_wait names the wait in task dumps while the task is parked; it is cleared when the task wakes") {
  run([] {
    waiter w;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon(weft::task_options{"parker"}, [&] {
        ll::describe_wait("a test wait", 42);
        w.wait();
        CHECK(dump_line_of("parker") == "task 2 \"parker\" running");
        w.wait();  // described by nobody this time
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK(dump_line_of("parker") == "task 2 \"parker\" parked: a test wait 42");
      w.wake();
      weft::testing::wait_all_tasks_blocked();
      CHECK(dump_line_of("parker") == "task 2 \"parker\" parked");
      w.wake();
    });
  });
}

// --- misuse -------------------------------------------------------------------------

TEST_CASE("the lowlevel calls that need a task throw logic_error outside one; those that need a runtime, without one") {
  SUBCASE("on a thread without a runtime") {
    CHECK_THROWS_AS(ll::current_task(), std::logic_error);
    CHECK_THROWS_AS(ll::park([]() noexcept { return ll::abort_result::succeeded; }), std::logic_error);
    CHECK_THROWS_AS(ll::raise_if_cancelled(), std::logic_error);
    CHECK_FALSE(ll::cancellation_pending());
    ll::describe_wait("nothing");  // does nothing
    soon_fn never([] { FAIL("a soon call ran without a runtime"); });
    CHECK_THROWS_AS(ll::call_soon(never), std::logic_error);
    CHECK_THROWS_AS(ll::io_context(), std::logic_error);
    CHECK_THROWS_AS(ll::completion(), std::logic_error);
  }
  SUBCASE("on the runtime's thread, outside any task: in an Asio handler") {
    run([] {
      int checked = 0;
      bool soon_ran = false;
      soon_fn soon([&] { soon_ran = true; });
      weft::event done;
      boost::asio::post(ll::io_context(), [&] {
        CHECK_THROWS_AS(ll::current_task(), std::logic_error);
        CHECK_THROWS_AS(ll::park([]() noexcept { return ll::abort_result::succeeded; }), std::logic_error);
        CHECK_THROWS_AS(ll::raise_if_cancelled(), std::logic_error);
        CHECK_FALSE(ll::cancellation_pending());
        ll::describe_wait("nothing");
        CHECK_THROWS_AS(ll::completion(), std::logic_error);
        ll::call_soon(soon);  // needs a runtime only
        ++checked;
        done.set();
      });
      done.wait();
      weft::testing::wait_all_tasks_blocked();
      CHECK(checked == 1);
      CHECK(soon_ran);
    });
  }
}

namespace {
// A task reschedules itself while it runs.
void reschedule_a_running_task() {
  weft::run([] { ll::reschedule(ll::current_task()); });
}
const child_scenario reschedule_running{"reschedule a running task", reschedule_a_running_task};

// A parked task is rescheduled twice.
void reschedule_twice() {
  weft::run([] {
    waiter w;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { w.wait(); });
      weft::testing::wait_all_tasks_blocked();
      const ll::task_ref t = w.parked;
      ll::reschedule(t);
      ll::reschedule(t);
    });
  });
}
const child_scenario reschedule_twice_scenario{"reschedule twice", reschedule_twice};
}  // namespace

TEST_CASE("reschedule of a task that is not parked ends the program with a message") {
  SUBCASE("a running task") {
    const child_outcome o = run_child("reschedule a running task");
    INFO(o.describe());
    CHECK(o.killed_by(SIGABRT));
    CHECK(o.err.find("weft: weft::lowlevel::reschedule: task ") != std::string::npos);
    CHECK(o.err.find("is not parked") != std::string::npos);
  }
  SUBCASE("a task rescheduled twice for one park") {
    const child_outcome o = run_child("reschedule twice");
    INFO(o.describe());
    CHECK(o.killed_by(SIGABRT));
    CHECK(o.err.find("weft: weft::lowlevel::reschedule: task ") != std::string::npos);
    CHECK(o.err.find("is not parked") != std::string::npos);
  }
}

// --- call_soon ----------------------------------------------------------------------

TEST_CASE("call_soon runs the call at the next pass of the loop, outside any task, in the order queued") {
  run([] {
    std::vector<int> order;
    int in_a_task = 0;
    auto record = [&](int id) {
      return [&, id] {
        order.push_back(id);
        if (task_here()) ++in_a_task;
      };
    };
    soon_fn a(record(1)), b(record(2)), c(record(3));
    soon_fn queues_more([&] {
      order.push_back(4);
      ll::call_soon(c);  // queued by a soon call: it runs too
    });
    ll::call_soon(a);
    ll::call_soon(b);
    ll::call_soon(queues_more);
    CHECK(order.empty());  // never inside call_soon
    weft::testing::wait_all_tasks_blocked();
    CHECK(order == std::vector<int>{1, 2, 4, 3});
    CHECK(in_a_task == 0);
    CHECK(now_s() == 0);
  });
}

TEST_CASE("a soon call queued just before the root task ends runs before weft::run returns") {
  bool ran = false;
  soon_fn call([&] { ran = true; });
  run([&] { ll::call_soon(call); });
  CHECK(ran);
}

// --- lowlevel::completion on the task's own thread ------------------------------------

TEST_CASE("completion: complete() on the runtime's thread wakes the waiting task: from another task, an Asio handler") {
  for (const bool from_handler : {false, true}) {
    CAPTURE(from_handler);
    run([from_handler] {
      std::optional<ll::completion> done;
      ll::task_ref waiting_task;
      int result = 0;
      bool returned = false;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          done.emplace();
          waiting_task = ll::current_task();
          CHECK(done->task() == waiting_task);
          CHECK_FALSE(done->done());
          done->wait([]() noexcept { return ll::abort_result::failed; });
          CHECK(result == 7);
          returned = true;
          weft::sleep(1s);  // a second wake would end this early
          CHECK(now_s() == 1);
        });
        weft::testing::wait_all_tasks_blocked();
        CHECK_FALSE(returned);
        auto complete = [&] {
          result = 7;
          done->complete();
          CHECK(done->done());  // marked at once on this thread
        };
        if (from_handler)
          boost::asio::post(ll::io_context(), complete);
        else
          complete();
        weft::testing::wait_all_tasks_blocked();
        CHECK(returned);
      });
    });
  }
}

TEST_CASE("completion: complete() from another thread before the task waits is not lost, and wakes it once") {
  hang_backstop backstop(20s, "a completion completed before its wait");
  run([] {
    ll::completion done;
    int result = 0;
    std::thread([&] {
      result = 3;
      done.complete();
    }).join();
    done.wait([]() noexcept { return ll::abort_result::failed; });
    CHECK(done.done());
    CHECK(result == 3);
    weft::sleep(1s);  // a second wake would end this early
    CHECK(now_s() == 1);
  });
}

TEST_CASE("completion: hold() keeps wait() parked after complete() until every hold is released") {
  run([] {
    std::optional<ll::completion> done;
    bool returned = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        done.emplace();
        done->hold();
        done->hold();
        done->wait([]() noexcept { return ll::abort_result::failed; });
        returned = true;
      });
      weft::testing::wait_all_tasks_blocked();
      done->complete();
      weft::testing::wait_all_tasks_blocked();
      CHECK_FALSE(returned);
      done->release();
      weft::testing::wait_all_tasks_blocked();
      CHECK_FALSE(returned);
      done->release();
      weft::testing::wait_all_tasks_blocked();
      CHECK(returned);
    });
  });
}

TEST_CASE("completion: a wait whose abort cannot withdraw the work waits for complete() from another thread; "
          "the cancellation comes at the next checkpoint") {
  hang_backstop backstop(20s, "a completion waiting for a thread");
  run([] {
    std::atomic<bool> aborted{false};
    std::thread::id abort_thread;
    int result = 0;
    bool wait_returned = false;
    std::thread completer;
    auto scope = weft::move_on_after(3s);
    scope.run([&] {
      ll::completion done;
      completer = std::thread([&] {
        while (!aborted) std::this_thread::yield();
        result = 5;  // written before complete(): visible once wait() returns
        done.complete();
      });
      done.wait([&]() noexcept {
        abort_thread = std::this_thread::get_id();
        aborted = true;
        return ll::abort_result::failed;
      });
      wait_returned = true;
      CHECK(result == 5);
      weft::checkpoint();
      FAIL("the cancellation was not delivered at the next checkpoint");
    });
    completer.join();
    CHECK(wait_returned);
    CHECK(abort_thread == std::this_thread::get_id());
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 3);
  });
}

TEST_CASE("completion: the wait is described in task dumps, by wait()'s `what` unless the caller described it") {
  run([] {
    std::optional<ll::completion> first, second;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon(weft::task_options{"waiter"}, [&] {
        first.emplace();
        first->wait([]() noexcept { return ll::abort_result::failed; }, "a test completion");
        second.emplace();
        ll::describe_wait("described by the caller");
        second->wait([]() noexcept { return ll::abort_result::failed; }, "not this");
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK(dump_line_of("waiter") == "task 2 \"waiter\" parked: a test completion");
      first->complete();
      weft::testing::wait_all_tasks_blocked();
      CHECK(dump_line_of("waiter") == "task 2 \"waiter\" parked: described by the caller");
      second->complete();
    });
  });
}

// Objects of one runtime touched from a task of another runtime (another
// thread): a task handle can be joined from there; an event, lock,
// semaphore, condition variable or channel whose waiters belong to the
// other runtime refuses with std::logic_error naming the rule, and nothing
// hangs or is corrupted.
#include "support/support.hpp"

#include <weft/lowlevel/completion.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/condition_variable.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/lock.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

using namespace weft_test;
using namespace std::chrono_literals;

namespace {

// Runs body in the root task of a second runtime on its own thread; the
// calling task parks (its runtime keeps running) until that runtime has
// ended, then rethrows what body threw.
template <class F>
void in_second_runtime(F body) {
  weft::lowlevel::completion done;
  std::exception_ptr failure;
  std::thread thread([&] {
    try {
      weft::run([&] { body(); });
    } catch (...) {
      failure = std::current_exception();
    }
    done.complete();
  });
  done.wait([]() noexcept { return weft::lowlevel::abort_result::failed; }, "second runtime");
  thread.join();
  if (failure) std::rethrow_exception(failure);
}

bool names_the_rule(const std::string& what) { return what.find("another runtime") != std::string::npos; }

}  // namespace

TEST_CASE("a task of another runtime joins a task: parked until it is done, then gets its value") {
  hang_backstop backstop(60s, "cross-runtime join");
  run([] {
    weft::event go;
    boost::asio::io_context& home = weft::lowlevel::io_context();
    weft::open_task_group([&](weft::task_group& tg) {
      auto target = tg.start([&] {
        go.wait();
        return 42;
      });
      int got = 0;
      in_second_runtime([&] {
        weft::open_task_group([&](weft::task_group& there) {
          there.start_soon([&] { got = target.join(); });
          weft::testing::wait_all_tasks_blocked();  // the joiner waits; its wait reached `home` first
          boost::asio::post(home, [&] { go.set(); });
        });
      });
      CHECK(got == 42);
    });
  });
}

TEST_CASE("a task of another runtime joins a task that failed, or that is already done") {
  hang_backstop backstop(60s, "cross-runtime join");
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto done = tg.start([] { return 7; });
      weft::task<void> failed;
      try {
        weft::open_task_group([&](weft::task_group& inner) {
          failed = inner.start([] { throw std::runtime_error("target failed"); });
        });
      } catch (const weft::exception_group&) {
      }
      weft::testing::wait_all_tasks_blocked();
      REQUIRE(done.done());
      int value = 0;
      std::string error;
      in_second_runtime([&] {
        value = done.join();
        try {
          failed.join();
        } catch (const std::runtime_error& e) {
          error = e.what();
        }
      });
      CHECK(value == 7);
      CHECK(error == "target failed");
    });
  });
}

TEST_CASE("a cross-runtime join cancelled while it waits leaves nothing behind on the target's side") {
  hang_backstop backstop(60s, "cross-runtime join");
  run([] {
    weft::event go;
    boost::asio::io_context& home = weft::lowlevel::io_context();
    weft::open_task_group([&](weft::task_group& tg) {
      auto target = tg.start([&] {
        go.wait();
        return 1;
      });
      bool caught = false;
      in_second_runtime([&] {
        weft::cancel_scope scope;
        weft::open_task_group([&](weft::task_group& there) {
          there.start_soon([&] {
            scope.run([&] { target.join(); });
            caught = scope.cancelled_caught();
          });
          weft::testing::wait_all_tasks_blocked();
          scope.cancel();
        });
      });
      CHECK(caught);
      CHECK_FALSE(target.done());
      go.set();  // the target ends with no joiner left to wake
      CHECK(target.join() == 1);
      (void)home;
    });
  });
}

TEST_CASE("an event, lock, semaphore, condition variable or channel with waiters of one runtime refuses another's") {
  hang_backstop backstop(60s, "cross-runtime misuse");
  run([] {
    weft::event ev;
    weft::lock l;
    weft::semaphore sem(0);
    weft::lock cv_lock;
    weft::condition_variable cv(cv_lock);
    weft::channel<int> ch(0);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { ev.wait(); });
      tg.start_soon([&] {
        l.acquire();
        ev.wait();
        l.release();
      });
      tg.start_soon([&] { sem.acquire(); });
      tg.start_soon([&] {
        weft::lock_guard g(cv_lock);
        cv.wait();
      });
      tg.start_soon([&] { CHECK(ch.receive() == 5); });
      weft::testing::wait_all_tasks_blocked();
      std::string set, acquire, try_acquire, release, notify, send, wait;
      in_second_runtime([&] {
        set = error_of<std::logic_error>([&] { ev.set(); });
        acquire = error_of<std::logic_error>([&] { l.acquire(); });
        try_acquire = error_of<std::logic_error>([&] { (void)l.try_acquire(); });
        release = error_of<std::logic_error>([&] { sem.release(); });
        notify = error_of<std::logic_error>([&] { cv.notify_all(); });
        send = error_of<std::logic_error>([&] { ch.send(5); });
        wait = error_of<std::logic_error>([&] { sem.acquire(); });  // joining the other runtime's waiters
      });
      CHECK(names_the_rule(set));
      CHECK(acquire.find("another runtime") != std::string::npos);
      CHECK(try_acquire.find("another runtime") != std::string::npos);
      CHECK(names_the_rule(release));
      CHECK(names_the_rule(notify));
      CHECK(names_the_rule(send));
      CHECK(names_the_rule(wait));
      // Nothing was changed: the waiters are still there, and their own
      // runtime wakes them.
      CHECK_FALSE(ev.is_set());
      CHECK(sem.value() == 0);
      ev.set();
      sem.release();
      {
        weft::lock_guard g(cv_lock);
        cv.notify_all();
      }
      ch.send(5);
    });
  });
}

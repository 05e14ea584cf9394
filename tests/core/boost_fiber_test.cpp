// Boost.Fiber's own primitives inside weft tasks: their waits (timed ones
// included) work, they follow real time, and they are not weft checkpoints.
//
// Boost.Fiber measures its timeouts with std::chrono::steady_clock, so these
// tests use real time; every expectation on it is a lower bound (a timed
// wait never ends early), never a speed assertion. A hang ends through
// run_real's backstop (these waits are no weft checkpoints: the program
// aborts).

#include "support/support.hpp"

#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/future.hpp>
#include <boost/fiber/mutex.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/timed_mutex.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace weft_test;
using steady = std::chrono::steady_clock;

namespace {
constexpr auto short_wait = std::chrono::milliseconds(20);
}  // namespace

TEST_CASE("boost::this_fiber::sleep_for inside a task returns after its duration") {
  run_real([] {
    const auto start = steady::now();
    boost::this_fiber::sleep_for(short_wait);
    CHECK(steady::now() - start >= short_wait);
  });
}

TEST_CASE("boost::this_fiber::sleep_until and sleep_for in several tasks while others keep the loop busy") {
  run_real([] {
    std::atomic<int> woke{0};
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 1; i <= 3; ++i) {
        tg.start_soon([&, i] {
          const auto start = steady::now();
          if (i == 2)
            boost::this_fiber::sleep_until(start + i * short_wait);
          else
            boost::this_fiber::sleep_for(i * short_wait);
          CHECK(steady::now() - start >= i * short_wait);
          ++woke;
        });
      }
      tg.start_soon([&] {
        while (woke < 3) weft::coro_yield();  // the ready queue never empties
      });
    });
    CHECK(woke == 3);
  });
}

TEST_CASE("boost::fibers::condition_variable wait_for times out, and is woken by a notify from another task") {
  run_real([] {
    boost::fibers::mutex m;
    boost::fibers::condition_variable cv;
    {
      std::unique_lock lock(m);
      const auto start = steady::now();
      CHECK(cv.wait_for(lock, short_wait) == boost::fibers::cv_status::timeout);
      CHECK(steady::now() - start >= short_wait);
      CHECK(cv.wait_until(lock, steady::now() + short_wait) == boost::fibers::cv_status::timeout);
    }
    bool flag = false;
    bool woken = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        std::unique_lock lock(m);
        woken = cv.wait_for(lock, std::chrono::seconds(10), [&] { return flag; });
      });
      tg.start_soon([&] {
        weft::sleep(weft::duration(0.001));
        std::lock_guard lock(m);
        flag = true;
        cv.notify_all();
      });
    });
    CHECK(woken);
  });
}

TEST_CASE("boost::fibers::future wait_for times out, then sees the value set by another task") {
  run_real([] {
    boost::fibers::promise<int> promise;
    boost::fibers::future<int> future = promise.get_future();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        CHECK(future.wait_for(short_wait) == boost::fibers::future_status::timeout);
        CHECK(future.wait_for(std::chrono::seconds(10)) == boost::fibers::future_status::ready);
        CHECK(future.get() == 42);
      });
      tg.start_soon([&] {
        boost::this_fiber::sleep_for(2 * short_wait);
        promise.set_value(42);
      });
    });
  });
}

TEST_CASE("boost::fibers::timed_mutex try_lock_for fails while another task holds it, then succeeds") {
  run_real([] {
    boost::fibers::timed_mutex m;
    weft::event held;
    weft::event release;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        m.lock();
        held.set();
        release.wait();
        m.unlock();
      });
      tg.start_soon([&] {
        held.wait();
        const auto start = steady::now();
        CHECK_FALSE(m.try_lock_for(short_wait));
        CHECK(steady::now() - start >= short_wait);
        release.set();
        CHECK(m.try_lock_for(std::chrono::seconds(10)));
        m.unlock();
      });
    });
  });
}

TEST_CASE("boost::fibers::buffered_channel push_wait_for and pop_wait_for time out, then transfer") {
  run_real([] {
    boost::fibers::buffered_channel<int> ch(2);  // holds one value
    int v = 0;
    CHECK(ch.pop_wait_for(v, short_wait) == boost::fibers::channel_op_status::timeout);
    CHECK(ch.push_wait_for(1, short_wait) == boost::fibers::channel_op_status::success);
    const auto start = steady::now();
    CHECK(ch.push_wait_for(2, short_wait) == boost::fibers::channel_op_status::timeout);
    CHECK(steady::now() - start >= short_wait);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        CHECK(ch.push_wait_for(3, std::chrono::seconds(10)) == boost::fibers::channel_op_status::success);
      });
      tg.start_soon([&] {
        boost::this_fiber::sleep_for(short_wait);
        int a = 0, b = 0;
        CHECK(ch.pop_wait_for(a, std::chrono::seconds(10)) == boost::fibers::channel_op_status::success);
        CHECK(ch.pop_wait_for(b, std::chrono::seconds(10)) == boost::fibers::channel_op_status::success);
        CHECK(a == 1);
        CHECK(b == 3);
      });
    });
  });
}

TEST_CASE("a Boost.Fiber promise fulfilled from another thread wakes its task while others wait with timeouts") {
  run_real([] {
    boost::fibers::promise<int> promise;
    boost::fibers::future<int> future = promise.get_future();
    std::atomic<int> timeouts{0};
    std::thread other;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { CHECK(future.get() == 7); });
      for (int i = 0; i < 4; ++i) {
        tg.start_soon([&] {
          boost::fibers::mutex m;
          boost::fibers::condition_variable cv;
          std::unique_lock lock(m);
          for (int k = 0; k < 3; ++k) {
            const auto start = steady::now();
            CHECK(cv.wait_for(lock, short_wait) == boost::fibers::cv_status::timeout);
            CHECK(steady::now() - start >= short_wait);
            ++timeouts;
          }
        });
      }
      other = std::thread([&] {
        std::this_thread::sleep_for(short_wait);
        promise.set_value(7);
      });
    });
    other.join();
    CHECK(timeouts == 12);
  });
}

TEST_CASE("Boost.Fiber waits are not weft checkpoints: a cancelled scope does not interrupt them") {
  run_real([] {
    bool slept = false;
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] {
      boost::this_fiber::sleep_for(short_wait);
      slept = true;
      weft::coro_yield();  // the first weft checkpoint delivers the cancellation
      FAIL("not cancelled at the checkpoint");
    });
    CHECK(slept);
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("Boost.Fiber timed waits follow real time under a manual clock") {
  hang_backstop backstop(std::chrono::seconds(20));
  run([] {
    const double before = now_s();
    const auto start = steady::now();
    boost::this_fiber::sleep_for(short_wait);
    CHECK(steady::now() - start >= short_wait);
    CHECK(now_s() == before);  // virtual time did not move for it
  });
}

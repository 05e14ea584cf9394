// weft::coro: lazy, values and exceptions pass through, awaited once,
// symmetric transfer, weft's blocking calls inside it, foreign awaitables
// resumed on the driving task's fiber, cancellation, frames destroyed when
// a coro is dropped unfinished, and recycled.
#include "core/coro_support.hpp"
#include "support/support.hpp"

#include <weft/coro.hpp>
#include <weft/lowlevel/park.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

using namespace weft_test;
using namespace weft_coro_test;

namespace {

weft::coro<int> answer(bool& started, tracked) {
  started = true;
  co_return 42;
}

weft::coro<std::string> greet(std::string name) { co_return "hello " + name; }

weft::coro<void> fail_with(std::string message, std::exception_ptr& thrown) {
  try {
    throw test_error(message);
  } catch (...) {
    thrown = std::current_exception();
    throw;
  }
  co_return;
}

weft::coro<int> one(int i) { co_return i; }

weft::coro<long> sum_of_first(int n) {
  long sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await one(i);
  co_return sum;
}

// Symmetric transfer takes no stack only where the compiler makes the
// transfer a tail call: GCC does when it optimizes sibling calls (-O2), not
// at -O0 or -O1, nor under AddressSanitizer. Probed once, at registration:
// the stack depth of a coroutine body at the first and the 64th await.
weft::coro<std::uintptr_t> stack_depth() { co_return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)); }
weft::coro<bool> same_depth_every_time() {
  const std::uintptr_t first = co_await stack_depth();
  std::uintptr_t last = 0;
  for (int i = 0; i < 64; ++i) last = co_await stack_depth();
  co_return first == last;
}
bool transfers_take_no_stack() {
  auto c = same_depth_every_time();
  c.handle().resume();  // nothing in it suspends: it runs to its end here
  return c.done() && c.handle().promise().take();
}
const weft_test::needs tail_call_transfers{
    transfers_take_no_stack(), "symmetric transfer compiled as a tail call: an optimized build without AddressSanitizer"};

weft::coro<double> sleep_then_read_clock(weft::duration d, weft::lowlevel::task_ref& ran_in) {
  ran_in = task_here();
  weft::sleep(d);
  co_return now_s();
}

weft::coro<void> blocks_forever(tracked) {
  tracked local;
  weft::sleep_forever();
  co_return;
}

weft::coro<void> await_blocks_forever(tracked, bool& after) {
  co_await blocks_forever(tracked{});
  after = true;
}

// Where the coroutine found itself after awaiting a foreign awaitable.
struct resumed_at {
  weft::lowlevel::task_ref task;
  std::thread::id thread;
  int value = 0;
};

weft::coro<resumed_at> await_handoff(handoff& h) {
  resumed_at r;
  r.value = co_await h;
  r.task = task_here();
  r.thread = std::this_thread::get_id();
  co_return r;
}

weft::coro<int> inner_waits(handoff& h, bool& after) {
  tracked local;
  const int v = co_await h;
  after = true;
  co_return v;
}

weft::coro<int> outer_waits(handoff& h, bool& after) {
  tracked local;
  const int v = co_await inner_waits(h, after);
  after = true;
  co_return v;
}

}  // namespace

TEST_CASE("a coro does nothing until it is awaited; then its value comes back and its frame is gone") {
  run([] {
    bool started = false;
    auto c = answer(started, tracked{});
    CHECK_FALSE(started);
    CHECK(c.valid());
    CHECK_FALSE(c.done());
    CHECK(tracked::alive == 1);  // the parameter, in the frame
    CHECK(drive(std::move(c)) == 42);
    CHECK(started);
    CHECK(tracked::alive == 0);
  });
}

TEST_CASE("a coro never awaited never runs, and dropping it destroys its frame") {
  bool started = false;
  {
    auto c = answer(started, tracked{});
    CHECK(tracked::alive == 1);
  }
  CHECK_FALSE(started);
  CHECK(tracked::alive == 0);
}

TEST_CASE("a coro awaited by a coro: values come back, its exception comes out as the same object") {
  run([] {
    std::exception_ptr thrown, caught;
    auto outer = [&]() -> weft::coro<std::string> {
      std::string s = co_await greet("weft");
      try {
        co_await fail_with("boom", thrown);
      } catch (const test_error& e) {
        caught = std::current_exception();
        s += std::string(", ") + e.what();
      }
      co_return s;
    };
    CHECK(drive(outer()) == "hello weft, boom");
    REQUIRE(thrown != nullptr);
    CHECK(caught == thrown);
  });
}

TEST_CASE("a coro's exception comes out of the task code that drives it") {
  run([] {
    std::exception_ptr thrown;
    CHECK_THROWS_WITH_AS(drive(fail_with("from a coro", thrown)), "from a coro", test_error);
  });
}

TEST_CASE("a coro is awaited once: awaiting moves it out, and awaiting an empty coro throws invalid_argument") {
  run([] {
    auto body = []() -> weft::coro<int> {
      bool started = false;
      weft::coro<int> c = answer(started, tracked{});
      const int first = co_await c;  // an lvalue: moved into the awaiter
      CHECK_FALSE(c.valid());
      CHECK(c.done());
      int refused = 0;
      try {
        co_await c;
      } catch (const std::invalid_argument&) {
        ++refused;
      }
      weft::coro<int> never_made;
      try {
        co_await never_made;
      } catch (const std::invalid_argument&) {
        ++refused;
      }
      CHECK(refused == 2);
      co_return first;
    };
    CHECK(drive(body()) == 42);
  });
}

TEST_CASE("awaiting a hundred thousand coros that finish at once takes no stack per await (symmetric transfer)" *
          tail_call_transfers) {
  // The task's stack is 64 KiB: if each await nested a resume in the last
  // one, this would overflow it many times over.
  run([] { CHECK(drive(sum_of_first(100000)) == 4999950000L); });
}

TEST_CASE("a coro driven from task code runs on the task's fiber and may call weft's blocking functions") {
  run([] {
    weft::lowlevel::task_ref ran_in;
    CHECK(drive(sleep_then_read_clock(2s, ran_in)) == 2);
    CHECK(ran_in == weft::lowlevel::current_task());
  });
}

TEST_CASE("cancelling a task whose coros block: weft::cancelled goes through their frames, which are destroyed") {
  run([] {
    bool after = false;
    auto scope = weft::move_on_after(1s);
    scope.run([&] { drive(await_blocks_forever(tracked{}, after)); });
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(after);
    CHECK(tracked::alive == 0);
    CHECK(now_s() == 1);
  });
}

TEST_CASE("a coro suspended on a foreign awaitable resumes on its task's fiber, wherever the awaitable completes") {
  enum class from { another_task, asio_handler, plain_thread };
  for (const from f : {from::another_task, from::asio_handler, from::plain_thread}) {
    CAPTURE(static_cast<int>(f));
    hang_backstop backstop(20s, "a foreign awaitable");
    run([f] {
      handoff h;
      resumed_at r;
      weft::lowlevel::task_ref driver;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          driver = weft::lowlevel::current_task();
          r = drive(await_handoff(h));
        });
        weft::testing::wait_all_tasks_blocked();
        REQUIRE(h.waiting_now());
        switch (f) {
          case from::another_task:
            h.resume(1);
            break;
          case from::asio_handler:
            boost::asio::post(weft::lowlevel::io_context(), [&] { h.resume(2); });
            break;
          case from::plain_thread:
            std::thread([&] { h.resume(3); }).join();
            break;
        }
      });
      CHECK(r.value == static_cast<int>(f) + 1);
      CHECK(r.task == driver);
      CHECK(r.thread == std::this_thread::get_id());
    });
  }
}

TEST_CASE("awaiting a foreign awaitable is a checkpoint: in a cancelled scope it is never started") {
  run([] {
    handoff h;
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] { drive(await_handoff(h)); });
    CHECK(scope.cancelled_caught());
    CHECK(h.suspends == 0);
  });
}

TEST_CASE("a foreign await cannot be withdrawn: a cancellation meanwhile waits for it and comes at the next checkpoint") {
  run([] {
    handoff h;
    int got = 0;
    weft::cancel_scope scope;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          auto body = [&]() -> weft::coro<void> {
            got = co_await h;
            weft::checkpoint();
            FAIL("the cancellation was not delivered at the next checkpoint");
          };
          drive(body());
        });
      });
      weft::testing::wait_all_tasks_blocked();
      scope.cancel();
      weft::sleep(5s);
      CHECK(h.waiting_now());  // still waiting
      h.resume(9);
    });
    CHECK(got == 9);
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("a coro dropped while it waits destroys its frame and those of the coros it awaits; none runs further") {
  handoff h;
  bool after = false;
  {
    auto c = outer_waits(h, after);
    c.handle().resume();  // started by hand (no task here): it runs to the foreign await
    CHECK(h.waiting_now());
    CHECK(tracked::alive == 2);  // a local in each of the two frames
    CHECK_FALSE(c.done());
  }
  CHECK(tracked::alive == 0);
  CHECK_FALSE(after);
}

TEST_CASE("coroutine frames are recycled: a frame of the size just freed takes its memory") {
  void* first = nullptr;
  {
    auto c = one(1);
    first = c.handle().address();
  }
  auto c = one(2);
  CHECK(c.handle().address() == first);
}

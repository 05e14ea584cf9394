// weft::async_generator: values in order then empty, exceptions, send,
// throw_, close (generator_exit), generators abandoned mid-way, weft's
// blocking calls and cancellation inside a generator driven from task code.
#include "core/coro_support.hpp"
#include "support/support.hpp"

#include <weft/async_generator.hpp>
#include <weft/coro.hpp>

#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace weft_test;
using namespace weft_coro_test;

namespace {

static_assert(!std::is_base_of_v<std::exception, weft::generator_exit>);

weft::async_generator<int> count(int n, tracked, bool& started) {
  started = true;
  tracked local;
  for (int i = 0; i < n; ++i) co_yield i;
}

// The next value of g, awaited from a coroutine.
template <class G>
auto next_of(G& g) -> weft::coro<typename decltype(g.next().await_resume())::value_type> {
  auto v = co_await g.next();
  if (!v) throw std::out_of_range("the generator has ended");
  co_return *v;
}

// Every value g yields until it ends.
template <class G>
weft::coro<std::vector<int>> all_of(G& g) {
  std::vector<int> out;
  while (auto v = co_await g.next()) out.push_back(*v);
  co_return out;
}

// The next step of g, awaited from a coroutine: a value or empty.
template <class Step>
weft::coro<std::optional<int>> step(Step s) {
  co_return co_await s;
}

}  // namespace

TEST_CASE("an async generator starts when first asked, yields its values in order, then is empty every time") {
  run([] {
    bool started = false;
    {
      auto g = count(3, tracked{}, started);
      CHECK_FALSE(started);
      CHECK_FALSE(g.done());
      CHECK(drive(all_of(g)) == std::vector<int>{0, 1, 2});
      CHECK(started);
      CHECK(g.done());
      CHECK(tracked::alive == 1);  // the body has ended; the frame (with the parameter) lives with g
      CHECK(drive(step(g.next())) == std::nullopt);
      CHECK(drive(step(g.next())) == std::nullopt);
    }
    CHECK(tracked::alive == 0);
  });
}

TEST_CASE("an empty (default or moved-from) async generator is done and yields nothing") {
  run([] {
    weft::async_generator<int> empty;
    CHECK(empty.done());
    CHECK(drive(step(empty.next())) == std::nullopt);
    bool started = false;
    auto g = count(2, tracked{}, started);
    auto moved = std::move(g);
    CHECK(g.done());
    CHECK(drive(step(g.next())) == std::nullopt);
    CHECK(drive(all_of(moved)) == std::vector<int>{0, 1});
  });
}

TEST_CASE("an async generator's exception comes out of next(), once; then the generator is done") {
  run([] {
    auto g = []() -> weft::async_generator<int> {
      co_yield 1;
      throw test_error("generator failed");
    }();
    CHECK(drive(next_of(g)) == 1);
    CHECK_THROWS_WITH_AS(drive(step(g.next())), "generator failed", test_error);
    CHECK(g.done());
    CHECK(drive(step(g.next())) == std::nullopt);
  });
}

TEST_CASE("send: the value sent is the value of the co_yield expression; next() sends none") {
  run([] {
    auto g = []() -> weft::async_generator<int, int> {
      int total = 0;
      for (;;) {
        std::optional<int> sent = co_yield total;
        if (!sent) co_return;
        total += *sent;
      }
    }();
    CHECK(drive(step(g.next())) == 0);
    CHECK(drive(step(g.send(5))) == 5);
    CHECK(drive(step(g.send(2))) == 7);
    CHECK(drive(step(g.next())) == std::nullopt);  // nothing sent: it ends
    CHECK(g.done());
  });
}

TEST_CASE("throw_: the exception is raised at the co_yield; caught, the generator goes on; uncaught, it ends with it") {
  run([] {
    auto g = []() -> weft::async_generator<int> {
      for (int i = 0; i < 3; ++i) {
        bool thrown_in = false;
        try {
          co_yield i;
        } catch (const test_error&) {
          thrown_in = true;
        }
        if (thrown_in) co_yield -1;  // (a handler may not co_yield)
      }
      co_yield 100;  // uncaught here
    }();
    CHECK(drive(step(g.next())) == 0);
    CHECK(drive(step(g.throw_(std::make_exception_ptr(test_error("once"))))) == -1);
    CHECK(drive(step(g.next())) == 1);
    CHECK(drive(step(g.next())) == 2);
    CHECK(drive(step(g.next())) == 100);
    CHECK_THROWS_WITH_AS(drive(step(g.throw_(std::make_exception_ptr(test_error("uncaught"))))), "uncaught",
                         test_error);
    CHECK(g.done());
    // Into a finished generator: thrown back at once.
    CHECK_THROWS_WITH_AS(drive(step(g.throw_(std::make_exception_ptr(test_error("late"))))), "late", test_error);
  });
}

TEST_CASE("close raises generator_exit at the co_yield: the generator cleans up, close returns, next() is empty") {
  run([] {
    bool cleaned = false;
    bool swallowed = false;
    auto g = [](bool& cleaned, bool& swallowed) -> weft::async_generator<int> {
      tracked local;
      try {
        for (int i = 0;; ++i) co_yield i;
      } catch (const std::exception&) {
        swallowed = true;  // generator_exit is no std::exception
      } catch (const weft::generator_exit&) {
        cleaned = true;
        throw;
      }
    }(cleaned, swallowed);
    CHECK(drive(step(g.next())) == 0);
    CHECK(drive(step(g.next())) == 1);
    CHECK(tracked::alive == 1);
    drive([&]() -> weft::coro<void> { co_await g.close(); }());
    CHECK(cleaned);
    CHECK_FALSE(swallowed);
    CHECK(tracked::alive == 0);
    CHECK(g.done());
    CHECK(drive(step(g.next())) == std::nullopt);
    drive([&]() -> weft::coro<void> { co_await g.close(); }());  // closing again does nothing
  });
}

TEST_CASE("close of a generator that never started ends it without running it") {
  run([] {
    bool started = false;
    auto g = count(3, tracked{}, started);
    drive([&]() -> weft::coro<void> { co_await g.close(); }());
    CHECK(g.done());
    CHECK(drive(step(g.next())) == std::nullopt);
    CHECK_FALSE(started);
  });
}

TEST_CASE("before the first next(), send throws logic_error and changes nothing; throw_ ends the generator unrun") {
  run([] {
    bool started = false;
    auto make = [](bool& started) -> weft::async_generator<int, int> {
      started = true;
      std::optional<int> sent = co_yield 1;
      co_yield sent ? *sent : -1;
    };
    SUBCASE("send") {
      auto g = make(started);
      CHECK_THROWS_WITH_AS(g.send(5), doctest::Contains("has not started"), std::logic_error);
      CHECK_FALSE(started);
      CHECK_FALSE(g.done());
      // The value was not kept for later: the first co_yield receives what is sent to it.
      CHECK(drive(step(g.next())) == 1);
      CHECK(drive(step(g.send(7))) == 7);
    }
    SUBCASE("throw_") {
      auto g = make(started);
      CHECK_THROWS_WITH_AS(drive(step(g.throw_(std::make_exception_ptr(test_error("early"))))), "early", test_error);
      CHECK_FALSE(started);
      CHECK(g.done());
      CHECK(drive(step(g.next())) == std::nullopt);
      // Ended: a later throw_ is thrown back too, and send sends nothing.
      CHECK_THROWS_WITH_AS(drive(step(g.throw_(std::make_exception_ptr(test_error("again"))))), "again", test_error);
      CHECK(drive(step(g.send(1))) == std::nullopt);
    }
  });
}

TEST_CASE("a second consumer asking for a step while one runs gets busy_resource_error; the running step goes on") {
  run([] {
    auto g = []() -> weft::async_generator<int, int> {
      for (int i = 0;; ++i) {
        weft::sleep(1s);
        co_yield i;
      }
    }();
    std::optional<int> first, second;
    int refused = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { first = drive(step(g.next())); });
      weft::testing::wait_all_tasks_blocked();  // the first step sleeps in the generator
      auto refuse = [&](auto make_step) {
        try {
          drive(step(make_step()));
        } catch (const weft::busy_resource_error&) {
          ++refused;
        }
      };
      refuse([&] { return g.next(); });
      refuse([&] { return g.send(3); });
      refuse([&] { return g.throw_(std::make_exception_ptr(test_error("refused"))); });
      try {
        drive([&]() -> weft::coro<void> { co_await g.close(); }());
      } catch (const weft::busy_resource_error&) {
        ++refused;
      }
    });
    CHECK(refused == 4);
    CHECK(first == 0);
    second = drive(step(g.next()));
    CHECK(second == 1);
    CHECK(now_s() == 2);
  });
}

TEST_CASE("close: a generator that yields again throws logic_error; one that raises something else, that") {
  run([] {
    SUBCASE("it yields again") {
      auto g = []() -> weft::async_generator<int> {
        bool closing = false;
        try {
          co_yield 1;
        } catch (const weft::generator_exit&) {
          closing = true;
        }
        if (closing) co_yield 2;
      }();
      CHECK(drive(step(g.next())) == 1);
      CHECK_THROWS_AS(drive([&]() -> weft::coro<void> { co_await g.close(); }()), std::logic_error);
    }
    SUBCASE("it raises another exception") {
      auto g = []() -> weft::async_generator<int> {
        try {
          co_yield 1;
        } catch (const weft::generator_exit&) {
          throw test_error("while closing");
        }
      }();
      CHECK(drive(step(g.next())) == 1);
      CHECK_THROWS_WITH_AS(drive([&]() -> weft::coro<void> { co_await g.close(); }()), "while closing", test_error);
      CHECK(g.done());
    }
  });
}

TEST_CASE("a generator abandoned at a co_yield is destroyed with its frame, without running any further") {
  run([] {
    bool after = false;
    bool saw_exception = false;
    {
      auto g = [](bool& after, bool& saw_exception) -> weft::async_generator<int> {
        tracked local;
        try {
          co_yield 1;
          co_yield 2;
        } catch (...) {
          saw_exception = true;
        }
        after = true;
      }(after, saw_exception);
      CHECK(drive(step(g.next())) == 1);
      CHECK(tracked::alive == 1);
    }
    CHECK(tracked::alive == 0);
    CHECK_FALSE(after);
    CHECK_FALSE(saw_exception);
  });
}

TEST_CASE("a generator consumed from task code may call weft's blocking functions between its values") {
  run([] {
    auto g = []() -> weft::async_generator<double> {
      for (int i = 0; i < 3; ++i) {
        weft::sleep(1s);
        co_yield now_s();
      }
    }();
    std::vector<double> at;
    drive([&]() -> weft::coro<void> {
      while (auto v = co_await g.next()) at.push_back(*v);
    }());
    CHECK(at == std::vector<double>{1, 2, 3});
  });
}

TEST_CASE("cancelling a task while its generator blocks: next() throws cancelled, and the generator is done") {
  run([] {
    bool started = false;
    std::vector<int> got;
    {
      auto g = [](bool& started) -> weft::async_generator<int> {
        started = true;
        tracked local;
        for (int i = 0;; ++i) {
          weft::sleep(1s);
          co_yield i;
        }
      }(started);
      auto scope = weft::move_on_after(2.5s);
      scope.run([&] {
        drive([&]() -> weft::coro<void> {
          while (auto v = co_await g.next()) got.push_back(*v);
        }());
      });
      CHECK(scope.cancelled_caught());
      CHECK(g.done());
      CHECK(tracked::alive == 0);
      CHECK(drive(step(g.next())) == std::nullopt);
    }
    CHECK(started);
    CHECK(got == std::vector<int>{0, 1});
    CHECK(now_s() == 2.5);
  });
}

TEST_CASE("a generator awaiting a foreign awaitable resumes on its consumer's fiber") {
  hang_backstop backstop(20s, "a generator waiting for a thread");
  run([] {
    handoff h;
    std::thread::id resumed_on;
    auto g = [](handoff& h, std::thread::id& resumed_on) -> weft::async_generator<int> {
      const int v = co_await h;
      resumed_on = std::this_thread::get_id();
      co_yield v;
    }(h, resumed_on);
    std::optional<int> got;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { got = drive(step(g.next())); });
      weft::testing::wait_all_tasks_blocked();
      REQUIRE(h.waiting_now());
      std::thread([&] { h.resume(8); }).join();
    });
    CHECK(got == 8);
    CHECK(resumed_on == std::this_thread::get_id());
  });
}

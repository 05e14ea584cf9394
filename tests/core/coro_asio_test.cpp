// weft::coro and weft::async_generator awaiting Asio directly: asio::awaitable
// (a value, void, an exception), Asio operations made with asio::deferred
// (a timer, socket reads with their errors thrown or as values), the
// checkpoint before they start, a cancellation forwarded to them, and the
// readable error where no task runs the coroutine.
//
// Asio timers run on real time, so the timer test runs on the real clock;
// everything else runs on the manual clock over socket pairs.
#include "core/coro_support.hpp"
#include "support/support.hpp"

#include <weft/async_generator.hpp>
#include <weft/coro.hpp>
#include <weft/lowlevel/park.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace weft_test;
using namespace weft_coro_test;
namespace asio = boost::asio;
using local_socket = asio::local::stream_protocol::socket;
using error_code = boost::system::error_code;
using std::chrono::steady_clock;

namespace {

asio::io_context& io() { return weft::lowlevel::io_context(); }

struct socket_pair {
  local_socket a{io()};
  local_socket b{io()};
  socket_pair() { asio::local::connect_pair(a, b); }
};

// What an Asio operation or coroutine saw of its cancellation.
struct observation {
  bool started = false;
  bool aborted = false;   // it ended with operation_aborted
  bool finished = false;  // it ran to its end
};

asio::awaitable<int> posted_value(int v, bool& in_task) {
  in_task = weft::lowlevel::in_task();  // started as an Asio handler: no task is current
  co_await asio::post(asio::use_awaitable);
  co_return v;
}

asio::awaitable<void> posted_flag(bool& flag) {
  co_await asio::post(asio::use_awaitable);
  flag = true;
}

asio::awaitable<int> rethrow_later(std::exception_ptr e) {
  co_await asio::post(asio::use_awaitable);
  std::rethrow_exception(e);
}

asio::awaitable<std::size_t> observed_read(local_socket& s, observation& obs) {
  obs.started = true;
  std::array<char, 16> buf{};
  try {
    co_return co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
  } catch (const boost::system::system_error& e) {
    obs.aborted = e.code() == asio::error::operation_aborted;
    obs.finished = true;
    throw;
  }
}

// A deferred read whose completion is observed before the coroutine sees it.
auto observed_deferred_read(local_socket& s, std::array<char, 16>& buf, observation& obs) {
  obs.started = true;
  return s.async_read_some(asio::buffer(buf), asio::deferred([&obs](error_code ec, std::size_t n) {
                             obs.aborted = ec == asio::error::operation_aborted;
                             obs.finished = true;
                             return asio::deferred.values(ec, n);
                           }));
}

}  // namespace

TEST_CASE("a coro awaits an asio::awaitable directly: its value, or nothing for void") {
  run([] {
    bool in_task = true;
    bool flag = false;
    weft::lowlevel::task_ref resumed_in;
    auto body = [&]() -> weft::coro<int> {
      const int v = co_await posted_value(21, in_task);
      co_await posted_flag(flag);
      resumed_in = task_here();
      co_return v * 2;
    };
    CHECK(drive(body()) == 42);
    CHECK_FALSE(in_task);
    CHECK(flag);
    CHECK(resumed_in == weft::lowlevel::current_task());  // the coro went on on its task's fiber
    CHECK(now_s() == 0);
  });
}

TEST_CASE("an exception from an asio::awaitable comes out of co_await in the coro unchanged") {
  run([] {
    const std::exception_ptr original = std::make_exception_ptr(test_error("asio failure"));
    const test_error* caught = nullptr;
    auto body = [&]() -> weft::coro<void> {
      try {
        co_await rethrow_later(original);
      } catch (const test_error& e) {
        caught = &e;
      }
    };
    drive(body());
    REQUIRE(caught != nullptr);
    CHECK(caught == address_of<test_error>(original));
  });
}

TEST_CASE("a coro awaits a deferred Asio timer wait; the task parks, other tasks run") {
  run_real([] {
    bool other_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      asio::steady_timer timer(io(), 3ms);
      const auto start = steady_clock::now();
      drive([&]() -> weft::coro<void> { co_await timer.async_wait(asio::deferred); }());
      CHECK(steady_clock::now() - start >= 3ms);
      CHECK(other_ran);
    });
  });
}

TEST_CASE("a deferred operation's error is thrown as system_error, or given as a value with as_tuple") {
  run([] {
    socket_pair sp;
    std::array<char, 16> buf{};
    auto body = [&]() -> weft::coro<std::string> {
      const std::size_t written = co_await asio::async_write(sp.a, asio::buffer("ping", 4), asio::deferred);
      const std::size_t n = co_await sp.b.async_read_some(asio::buffer(buf), asio::deferred);
      std::string got(buf.data(), n);
      sp.a.close();
      auto [ec, none] = co_await sp.b.async_read_some(asio::buffer(buf), asio::as_tuple(asio::deferred));
      CHECK(ec == asio::error::eof);
      CHECK(none == 0);
      try {
        co_await sp.b.async_read_some(asio::buffer(buf), asio::deferred);
        FAIL("no error after end of stream");
      } catch (const boost::system::system_error& e) {
        CHECK(e.code() == asio::error::eof);
      }
      co_return got + " " + std::to_string(written);
    };
    CHECK(drive(body()) == "ping 4");
  });
}

TEST_CASE("awaiting Asio in a coro is a checkpoint: in a cancelled scope nothing is started") {
  run([] {
    socket_pair sp;
    asio::write(sp.a, asio::buffer("x", 1));
    observation awaitable_obs, op_obs;
    std::array<char, 16> buf{};
    int cancelled_at = 0;
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] {
      drive([&]() -> weft::coro<void> {
        try {
          co_await observed_read(sp.b, awaitable_obs);
        } catch (const weft::cancelled&) {
          ++cancelled_at;
        }
        try {
          co_await sp.b.async_read_some(asio::buffer(buf), asio::deferred([&](error_code ec, std::size_t n) {
            op_obs.finished = true;
            return asio::deferred.values(ec, n);
          }));
        } catch (const weft::cancelled&) {
          ++cancelled_at;
        }
        weft::checkpoint();
      }());
    });
    CHECK(scope.cancelled_caught());
    CHECK(cancelled_at == 2);
    CHECK_FALSE(awaitable_obs.started);
    CHECK_FALSE(op_obs.finished);
    CHECK(sp.b.available() == 1);  // the byte is still there: nothing read it
  });
}

TEST_CASE("a deadline cancels the Asio read a coro awaits: the operation is aborted, weft::cancelled comes out") {
  run([] {
    socket_pair sp;
    observation awaitable_obs, op_obs;
    bool cancelled_in_coro[2] = {false, false};
    std::array<char, 16> buf{};
    auto waits = [&](int which) -> weft::coro<void> {
      tracked local;
      try {
        if (which == 0)
          co_await observed_read(sp.b, awaitable_obs);
        else
          co_await observed_deferred_read(sp.b, buf, op_obs);
      } catch (const weft::cancelled&) {
        cancelled_in_coro[which] = true;
        throw;
      }
      FAIL("the read completed");
    };
    for (int which : {0, 1}) {
      CAPTURE(which);
      auto scope = weft::move_on_after(5s);
      scope.run([&] { drive(waits(which)); });
      CHECK(scope.cancelled_caught());
      CHECK(cancelled_in_coro[which]);
      CHECK(tracked::alive == 0);
    }
    CHECK(now_s() == 10);
    CHECK(awaitable_obs.aborted);
    CHECK(awaitable_obs.finished);
    CHECK(op_obs.aborted);
    CHECK(op_obs.finished);
    // Nothing is left reading: the next byte goes to the next read.
    asio::write(sp.a, asio::buffer("y", 1));
    char c = 0;
    drive([&]() -> weft::coro<void> { co_await sp.b.async_read_some(asio::buffer(&c, 1), asio::deferred); }());
    CHECK(c == 'y');
  });
}

TEST_CASE("co_await of Asio in a coro that no task runs throws a logic_error saying it needs a task") {
  auto body = [](asio::steady_timer& timer, int which) -> weft::coro<void> {
    bool flag = false;
    if (which == 0)
      co_await posted_flag(flag);
    else
      co_await timer.async_wait(asio::deferred);
    FAIL("awaited without a task");
  };
  auto check_refused = [&](asio::steady_timer& timer) {
    for (int which : {0, 1}) {
      CAPTURE(which);
      auto c = body(timer, which);
      c.handle().resume();  // started by hand, where no task runs
      REQUIRE(c.done());
      CHECK_THROWS_WITH_AS(c.handle().promise().take(), doctest::Contains("needs a weft task"), std::logic_error);
    }
    CHECK(timer.cancel() == 0);  // the timer wait was never started
  };
  SUBCASE("a thread without a runtime") {
    asio::io_context own;
    asio::steady_timer timer(own, 1s);
    check_refused(timer);
  }
  SUBCASE("an Asio handler of a runtime") {
    run([&] {
      asio::steady_timer timer(io(), 1s);
      bool ran = false;
      asio::post(io(), [&] {
        check_refused(timer);
        ran = true;
      });
      asio::post(io(), weft::use_fiber);  // parks until the handlers posted before have run
      CHECK(ran);
    });
  }
}

TEST_CASE("an async generator awaits Asio between its values, and a deadline cancels it mid-read") {
  run([] {
    socket_pair sp;
    observation obs;
    bool cancelled_in_generator = false;
    std::vector<std::string> got;
    auto g = [](socket_pair& sp, observation& obs, bool& cancelled) -> weft::async_generator<std::string> {
      tracked local;
      std::array<char, 16> buf{};
      bool flag = false;
      co_await posted_flag(flag);  // an asio::awaitable
      for (;;) {
        std::size_t n = 0;
        try {
          n = co_await observed_deferred_read(sp.b, buf, obs);  // an Asio operation
        } catch (const weft::cancelled&) {
          cancelled = true;
          throw;
        }
        co_yield std::string(buf.data(), n) + (flag ? "!" : "?");
      }
    }(sp, obs, cancelled_in_generator);
    asio::write(sp.a, asio::buffer("ab", 2));
    auto scope = weft::move_on_after(5s);
    scope.run([&] {
      drive([&]() -> weft::coro<void> {
        while (auto v = co_await g.next()) {
          got.push_back(*v);
          if (got.size() == 1) co_await asio::async_write(sp.a, asio::buffer("cd", 2), asio::deferred);
        }
      }());
    });
    CHECK(scope.cancelled_caught());
    CHECK(got == std::vector<std::string>{"ab!", "cd!"});
    CHECK(cancelled_in_generator);
    CHECK(obs.aborted);
    CHECK(g.done());
    CHECK(tracked::alive == 0);
    CHECK(now_s() == 5);
  });
}

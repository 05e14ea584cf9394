// greenback and Asio: await_ of asio::awaitable and of Asio operations,
// weft::use_fiber, with_portal_run_sync from asio::awaitable, and the echo
// scenario of behaviours §9 over socket pairs and loopback TCP.
//
// Asio timers run on real time, so tests that use them run on the real
// clock with short waits and assert on elapsed time only as lower bounds;
// everything else runs on the manual clock.
#include "support/support.hpp"

#include <weft/async_generator.hpp>
#include <weft/coro.hpp>
#include <weft/greenback/greenback.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;
namespace asio = boost::asio;
using local_socket = asio::local::stream_protocol::socket;
using tcp = asio::ip::tcp;
using std::chrono::steady_clock;

namespace {


asio::io_context& io() { return weft::lowlevel::io_context(); }

struct socket_pair {
  local_socket a{io()};
  local_socket b{io()};
  socket_pair() { asio::local::connect_pair(a, b); }
};

// Runs body(); if the scenario hangs because an operation is never
// cancelled, closing the sockets after 30 s of real time ends it (the test
// then fails on its checks instead of hanging). A real-time Asio timer is
// invisible to the manual clock, so it does not change virtual time.
template <class F>
void with_watchdog(socket_pair& sp, F&& body) {
  asio::steady_timer watchdog(io(), 30s);
  watchdog.async_wait([&](const boost::system::error_code& ec) {
    if (ec) return;
    boost::system::error_code ignored;
    sp.a.close(ignored);
    sp.b.close(ignored);
  });
  struct disarm {
    asio::steady_timer& t;
    ~disarm() { t.cancel(); }
  } guard{watchdog};
  body();
}


// --- asio::awaitable coroutines -------------------------------------------------------------

asio::awaitable<int> value_after(std::chrono::milliseconds d, int value) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
  co_return value;
}

asio::awaitable<void> flag_after(std::chrono::milliseconds d, bool& flag) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
  flag = true;
}

asio::awaitable<std::string> exchange(local_socket& from, local_socket& to, std::string message) {
  co_await asio::async_write(from, asio::buffer(message), asio::use_awaitable);
  std::string got(message.size(), '\0');
  co_await asio::async_read(to, asio::buffer(got), asio::use_awaitable);
  co_return got;
}

template <class Socket>
asio::awaitable<std::string> read_exactly(Socket& s, std::size_t n) {
  std::string got(n, '\0');
  co_await asio::async_read(s, asio::buffer(got), asio::use_awaitable);
  co_return got;
}

asio::awaitable<int> rethrow_in_asio(std::exception_ptr e) {
  std::rethrow_exception(e);
  co_return 0;
}

struct observation {
  bool aborted = false;   // the operation ended with operation_aborted
  bool finished = false;  // the coroutine ran to its end
};

asio::awaitable<std::size_t> observed_read(local_socket& s, observation& obs) {
  std::array<char, 16> buf{};
  try {
    co_return co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
  } catch (const boost::system::system_error& e) {
    obs.aborted = e.code() == asio::error::operation_aborted;
    obs.finished = true;
    throw;
  }
}

asio::awaitable<int> read_or_fallback(local_socket& s, observation& obs) {
  std::array<char, 16> buf{};
  bool aborted = false;
  try {
    co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
  } catch (const boost::system::system_error& e) {
    aborted = e.code() == asio::error::operation_aborted;
  }
  obs.aborted = aborted;
  obs.finished = true;
  co_return aborted ? -1 : 1;
}

asio::awaitable<void> observed_long_wait(observation& obs) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 10s);
  try {
    co_await timer.async_wait(asio::use_awaitable);
  } catch (const boost::system::system_error& e) {
    obs.aborted = e.code() == asio::error::operation_aborted;
    obs.finished = true;
    throw;
  }
  obs.finished = true;
}

// An operation that ignores cancellation: it completes when someone calls
// the stored handler.
struct manual_operation {
  std::function<void(boost::system::error_code, int)> handler;
  template <class Token>
  auto async_get(Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, int)>(
        [this](auto h) { handler = std::move(h); }, token);
  }
  void complete(boost::system::error_code ec, int v) {
    auto h = std::move(handler);
    handler = nullptr;
    h(ec, v);
  }
};

}  // namespace

// --- await_ of asio::awaitable ----------------------------------------------------------------

TEST_CASE("await_ of an asio::awaitable waiting on a steady_timer returns its value once the timer expired") {
  run_real([] {
    bool other_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      const auto start = steady_clock::now();
      CHECK(greenback::await_(value_after(3ms, 11)) == 11);
      CHECK(steady_clock::now() - start >= 3ms);
      CHECK(other_ran);  // the task was parked, not the thread
    });
    bool flag = false;
    greenback::await_(flag_after(1ms, flag));
    CHECK(flag);
    // A deferred timer wait.
    asio::steady_timer timer(io(), 2ms);
    const auto start = steady_clock::now();
    greenback::await_(timer.async_wait(asio::deferred));
    CHECK(steady_clock::now() - start >= 2ms);
  });
}

namespace {
asio::awaitable<int> ordered_steps(std::vector<std::string>& log) {
  log.push_back(greenback::has_portal() ? "start with portal" : "start without portal");
  asio::dispatch(io(), [&log] { log.push_back("dispatched"); });
  asio::post(io(), [&log] { log.push_back("posted"); });
  log.push_back("before suspending");
  co_await asio::post(asio::use_awaitable);
  log.push_back(greenback::has_portal() ? "resumed with portal" : "resumed without portal");
  co_return 3;
}

asio::awaitable<int> never_suspends(int v) { co_return v * 2; }
}  // namespace

TEST_CASE("an awaited asio::awaitable starts at once, as an Asio handler without a portal") {
  std::vector<std::string> log;
  run([&] {
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { log.push_back("other task"); });  // ready, runs when this task parks
      log.push_back("task before await_");
      const int v = greenback::await_(ordered_steps(log));
      log.push_back("await_ returned " + std::to_string(v));
    });
    CHECK(greenback::has_portal());
    CHECK(greenback::await_(never_suspends(21)) == 42);
    // The queued work of the inline start was handed to the io_context:
    // a later post still runs.
    bool ran = false;
    asio::post(io(), [&ran] { ran = true; });
    weft::sleep(1s);
    CHECK(ran);
  });
  const std::vector<std::string> expected{"task before await_", "start without portal",   "dispatched",
                                          "before suspending",  "other task",             "posted",
                                          "resumed without portal", "await_ returned 3"};
  CHECK(log == expected);
}

TEST_CASE("await_ of an asio::awaitable exchanging data over a connected socket pair returns what was read") {
  run([] {
    socket_pair sp;
    CHECK(greenback::await_(exchange(sp.a, sp.b, "ping")) == "ping");
    CHECK(greenback::await_(exchange(sp.b, sp.a, "pong")) == "pong");
    CHECK(now_s() == 0);
  });
}

TEST_CASE("an exception from an awaited asio::awaitable comes out of await_ unchanged") {
  run([] {
    const std::exception_ptr original = std::make_exception_ptr(test_error("asio failure"));
    bool caught = false;
    try {
      greenback::await_(rethrow_in_asio(original));
    } catch (const test_error& e) {
      caught = true;
      CHECK(&e == address_of<test_error>(original));
    }
    CHECK(caught);

    // Asio errors arrive as boost::system::system_error.
    socket_pair sp;
    sp.a.close();
    bool eof = false;
    try {
      greenback::await_(read_exactly(sp.b, 4));
    } catch (const boost::system::system_error& e) {
      eof = e.code() == asio::error::eof;
    }
    CHECK(eof);
  });
}

TEST_CASE("a weft deadline stops the Asio read inside an awaited asio::awaitable before await_ returns") {
  run([] {
    socket_pair sp;
    with_watchdog(sp, [&] {
      observation obs;
      bool finished_before_return = false;
      weft::cancel_scope scope = weft::move_on_after(5s);
      scope.run([&] {
        try {
          greenback::await_(observed_read(sp.b, obs));
        } catch (const weft::cancelled&) {
          finished_before_return = obs.finished;
          throw;
        }
      });
      CHECK(obs.aborted);
      CHECK(finished_before_return);
      CHECK(scope.cancelled_caught());
      CHECK(now_s() == 5);
      // The socket is still usable.
      CHECK(greenback::await_(exchange(sp.a, sp.b, "after")) == "after");
    });
  });
}

TEST_CASE("cancellation of await_ on an asio::awaitable is level-triggered") {
  run([] {
    socket_pair sp;
    with_watchdog(sp, [&] {
      std::array<observation, 3> obs;
      int caught = 0;
      weft::cancel_scope scope = weft::move_on_after(5s);
      scope.run([&] {
        for (auto& o : obs) {
          try {
            greenback::await_(observed_read(sp.b, o));
          } catch (const weft::cancelled&) {
            ++caught;
          }
        }
      });
      CHECK(caught == 3);
      // The first was started and aborted; the later ones, in a scope that
      // was already cancelled, were checkpoints that never started.
      CHECK(obs[0].aborted);
      CHECK(obs[0].finished);
      for (std::size_t i = 1; i < obs.size(); ++i) {
        CHECK_FALSE(obs[i].aborted);
        CHECK_FALSE(obs[i].finished);
      }
      CHECK(now_s() == 5);
    });
  });
}

TEST_CASE("an asio::awaitable that returns a value despite the cancellation gives it to await_") {
  run([] {
    socket_pair sp;
    with_watchdog(sp, [&] {
      observation obs;
      int got = 0;
      bool after_await = false;
      bool after_checkpoint = false;
      weft::cancel_scope scope = weft::move_on_after(5s);
      scope.run([&] {
        got = greenback::await_(read_or_fallback(sp.b, obs));
        after_await = true;
        weft::checkpoint();  // the cancellation is delivered here
        after_checkpoint = true;
      });
      CHECK(obs.aborted);
      CHECK(got == -1);
      CHECK(after_await);
      CHECK_FALSE(after_checkpoint);
      CHECK(scope.cancelled_caught());
    });
  });
}

TEST_CASE("a weft deadline stops a real Asio timer inside an awaited asio::awaitable") {
  run_real([] {
    observation obs;
    bool finished_before_return = false;
    const auto start = steady_clock::now();
    weft::cancel_scope scope = weft::move_on_after(5ms);
    scope.run([&] {
      try {
        greenback::await_(observed_long_wait(obs));
      } catch (const weft::cancelled&) {
        finished_before_return = obs.finished;
        throw;
      }
    });
    CHECK(obs.aborted);
    CHECK(finished_before_return);
    CHECK(scope.cancelled_caught());
    CHECK(steady_clock::now() - start >= 5ms);
  });
}

// --- weft::use_fiber ---------------------------------------------------------------------------

TEST_CASE("the runtime keeps running after someone stops its io_context") {
  run([] {
    io().stop();
    weft::sleep(1s);  // the loop restarts the io_context before it waits
    asio::post(io(), weft::use_fiber);  // parks until the posted handler ran
    // Stopped while tasks stay busy: their handlers still run.
    io().stop();
    socket_pair sp;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        char c = 0;
        CHECK(sp.b.async_read_some(asio::buffer(&c, 1), weft::use_fiber) == 1);
      });
      tg.start_soon([&] {
        for (int i = 0; i < 1000; ++i) weft::coro_yield();
      });
      asio::write(sp.a, asio::buffer("x", 1));
    });
  });
}

TEST_CASE("use_fiber waits for an Asio timer, with the throwing and the error-code forms") {
  run_real([] {
    const auto start = steady_clock::now();
    asio::steady_timer t1(io(), 3ms);
    t1.async_wait(weft::use_fiber);
    CHECK(steady_clock::now() - start >= 3ms);

    boost::system::error_code ec = asio::error::fault;  // must be overwritten
    asio::steady_timer t2(io(), 1ms);
    t2.async_wait(weft::use_fiber[ec]);
    CHECK_FALSE(ec);

    // Timers cancelled by someone else report operation_aborted, not weft::cancelled.
    asio::steady_timer t3(io(), 10s);
    asio::steady_timer t4(io(), 10s);
    boost::system::error_code ec3;
    bool system_error_aborted = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { t3.async_wait(weft::use_fiber[ec3]); });
      tg.start_soon([&] {
        try {
          t4.async_wait(weft::use_fiber);
        } catch (const boost::system::system_error& e) {
          system_error_aborted = e.code() == asio::error::operation_aborted;
        }
      });
      weft::testing::wait_all_tasks_blocked();
      t3.cancel();
      t4.cancel();
    });
    CHECK(ec3 == asio::error::operation_aborted);
    CHECK(system_error_aborted);
  });
}

TEST_CASE("use_fiber reads and writes a socket pair, parking only the reading task") {
  run([] {
    socket_pair sp;
    const std::string message = "hello";
    std::string got(message.size(), '\0');
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        order.push_back("reading");
        const std::size_t n = asio::async_read(sp.b, asio::buffer(got), weft::use_fiber);
        order.push_back("read " + std::to_string(n));
      });
      weft::testing::wait_all_tasks_blocked();
      order.push_back("writing");
      CHECK(asio::async_write(sp.a, asio::buffer(message), weft::use_fiber) == message.size());
    });
    CHECK(got == message);
    CHECK(order == std::vector<std::string>{"reading", "writing", "read 5"});

    // The members, and the error-code form.
    CHECK(sp.b.async_write_some(asio::buffer(message), weft::use_fiber) == message.size());
    std::array<char, 16> buf{};
    boost::system::error_code ec = asio::error::fault;
    const std::size_t n = sp.a.async_read_some(asio::buffer(buf), weft::use_fiber[ec]);
    CHECK_FALSE(ec);
    CHECK(std::string(buf.data(), n) == message);

    // End of stream: eof in ec, or a system_error.
    sp.a.close();
    const std::size_t none = sp.b.async_read_some(asio::buffer(buf), weft::use_fiber[ec]);
    CHECK(ec == asio::error::eof);
    CHECK(none == 0);
    bool threw_eof = false;
    try {
      sp.b.async_read_some(asio::buffer(buf), weft::use_fiber);
    } catch (const boost::system::system_error& e) {
      threw_eof = e.code() == asio::error::eof;
    }
    CHECK(threw_eof);
    CHECK(now_s() == 0);
  });
}

TEST_CASE("a cancelled use_fiber wait throws weft::cancelled, in the error-code form too") {
  run([] {
    socket_pair sp;
    with_watchdog(sp, [&] {
      std::array<char, 8> buf{};
      weft::cancel_scope scope = weft::move_on_after(5s);
      bool caught = false;
      scope.run([&] {
        try {
          sp.b.async_read_some(asio::buffer(buf), weft::use_fiber);
        } catch (const weft::cancelled&) {
          caught = true;
          throw;
        }
      });
      CHECK(caught);
      CHECK(scope.cancelled_caught());
      CHECK(now_s() == 5);

      weft::cancel_scope scope2 = weft::move_on_after(1s);
      boost::system::error_code ec;
      bool caught2 = false;
      scope2.run([&] {
        try {
          sp.b.async_read_some(asio::buffer(buf), weft::use_fiber[ec]);
        } catch (const weft::cancelled&) {
          caught2 = true;
          throw;
        }
      });
      CHECK(caught2);
      CHECK_FALSE(ec);
      CHECK(scope2.cancelled_caught());
      CHECK(now_s() == 6);

      // Cancelling the task that waits.
      weft::task<void> reader;
      weft::open_task_group([&](weft::task_group& tg) {
        reader = tg.start([&] { (void)sp.b.async_read_some(asio::buffer(buf), weft::use_fiber); });
        weft::testing::wait_all_tasks_blocked();
        reader.cancel();
      });
      CHECK(reader.cancelled());

      // The socket still works afterwards.
      const std::string message = "still works";
      asio::async_write(sp.a, asio::buffer(message), weft::use_fiber);
      std::string got(message.size(), '\0');
      asio::async_read(sp.b, asio::buffer(got), weft::use_fiber);
      CHECK(got == message);
    });
  });
}

TEST_CASE("a weft deadline cancels a use_fiber wait on a real Asio timer") {
  run_real([] {
    asio::steady_timer timer(io(), 10s);
    const auto start = steady_clock::now();
    bool after = false;
    weft::cancel_scope scope = weft::move_on_after(3ms);
    scope.run([&] {
      timer.async_wait(weft::use_fiber);
      after = true;
    });
    CHECK_FALSE(after);
    CHECK(scope.cancelled_caught());
    CHECK(steady_clock::now() - start >= 3ms);
  });
}

TEST_CASE("a use_fiber operation that completes despite the cancellation returns its result") {
  run([] {
    manual_operation op;
    int got = 0;
    double got_at = -1;
    bool after_checkpoint = false;
    weft::cancel_scope scope = weft::move_on_after(5s);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        weft::sleep(10s);
        op.complete({}, 42);
      });
      scope.run([&] {
        got = op.async_get(weft::use_fiber);
        got_at = now_s();
        weft::checkpoint();
        after_checkpoint = true;
      });
    });
    CHECK(got == 42);
    CHECK(got_at == 10);
    CHECK_FALSE(after_checkpoint);
    CHECK(scope.cancelled_caught());

    // An error other than operation_aborted is reported as such.
    weft::cancel_scope scope2 = weft::move_on_after(1s);
    bool reset = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        weft::sleep(2s);
        op.complete(asio::error::connection_reset, 0);
      });
      try {
        scope2.run([&] { op.async_get(weft::use_fiber); });
      } catch (const boost::system::system_error& e) {
        reset = e.code() == asio::error::connection_reset;
      }
    });
    CHECK(reset);
  });
}

// --- with_portal_run_sync from asio::awaitable --------------------------------------------------

namespace {
struct portal_results {
  bool outer_portal = true;
  bool inner_portal = false;
  int value = 0;
  double value_at = -1;
  std::string echoed;
  std::string error;
  const test_error* error_object = nullptr;
  int async_value = 0;
  int nested = 0;
  std::exception_ptr failure;
};

asio::awaitable<void> portal_user(local_socket& a, local_socket& b, portal_results& r, std::exception_ptr planted) {
  r.outer_portal = greenback::has_portal();
  r.value = co_await greenback::with_portal_run_sync(
      [&r](int x) {
        r.inner_portal = greenback::has_portal();
        weft::sleep(2s);
        return x + 1;
      },
      41);
  r.value_at = now_s();
  // await_ works on the portal's fiber: a deferred operation and an asio::awaitable.
  r.echoed = co_await greenback::with_portal_run_sync([&a, &b] {
    const std::string message = "through the portal";
    greenback::await_(asio::async_write(a, asio::buffer(message), asio::deferred));
    return greenback::await_(read_exactly(b, message.size()));
  });
  try {
    // Named, not written inside the co_await expression: GCC 12 destroys a
    // lambda temporary there twice, and this one holds a reference count
    // (see the README, "Compilers").
    auto rethrow_planted = [planted]() -> int { std::rethrow_exception(planted); };
    co_await greenback::with_portal_run_sync(std::move(rethrow_planted));
  } catch (const test_error& e) {
    r.error = e.what();
    r.error_object = &e;
  }
  r.async_value = co_await greenback::with_portal_run(answer_after, 1s, 5);
  // Nested: the inner call finds a portal and calls straight through.
  r.nested = co_await greenback::with_portal_run_sync(
      [] { return greenback::await_(greenback::with_portal_run_sync([] { return 7; })) + 1; });
}
}  // namespace

TEST_CASE("with_portal_run_sync from an asio::awaitable runs the function on a fiber where await_ works") {
  portal_results r;
  const std::exception_ptr planted = std::make_exception_ptr(test_error("sync failure"));
  run([&] {
    socket_pair sp;
    weft::event done;
    asio::co_spawn(io(), portal_user(sp.a, sp.b, r, planted), [&](std::exception_ptr e) {
      r.failure = e;
      done.set();
    });
    done.wait();
  });
  if (r.failure) FAIL_CHECK(message_of(r.failure));
  CHECK_FALSE(r.outer_portal);
  CHECK(r.inner_portal);
  CHECK(r.value == 42);
  CHECK(r.value_at == 2);
  CHECK(r.echoed == "through the portal");
  CHECK(r.error == "sync failure");
  CHECK(r.error_object == address_of<test_error>(planted));
  CHECK(r.async_value == 5);
  CHECK(r.nested == 8);
}

namespace {
asio::awaitable<int> asio_reaching_back(std::vector<std::string>& log) {
  log.push_back(greenback::has_portal() ? "asio with portal" : "asio without portal");
  const int v = co_await greenback::with_portal_run_sync([&log] {
    log.push_back(greenback::has_portal() ? "fiber with portal" : "fiber without portal");
    return greenback::await_(answer_after(1s, 20));
  });
  co_return v + 1;
}

asio::awaitable<int> reach_portal(int i) {
  co_return co_await greenback::with_portal_run_sync([i] { return greenback::await_(answer_after(1s, i)); });
}

asio::awaitable<void> portal_sleeper(std::vector<std::string>& log) {
  try {
    co_await greenback::with_portal_run_sync([&log]() -> int {
      try {
        weft::sleep_forever();
      } catch (const weft::cancelled&) {
        log.push_back("fiber cancelled");
        throw;
      }
    });
  } catch (const boost::system::system_error& e) {
    log.push_back(e.code() == asio::error::operation_aborted ? "coroutine saw operation_aborted"
                                                             : "coroutine saw another error");
    throw;
  }
}
}  // namespace

namespace {
asio::awaitable<int> read_token(std::shared_ptr<int> token, long& count_during) {
  auto read = [token] { return *token; };  // named: see the README, "Compilers"
  const int v = co_await greenback::with_portal_run_sync(std::move(read));
  count_during = token.use_count();  // the caller's and this parameter: the function is gone
  co_return v;
}
}  // namespace

TEST_CASE("with_portal_run_sync from an asio::awaitable takes its function over and destroys it once") {
  auto token = std::make_shared<int>(7);
  long count_during = 0;
  int value = 0;
  run([&] {
    weft::event done;
    asio::co_spawn(io(), read_token(token, count_during), [&](std::exception_ptr e, int v) {
      CHECK_FALSE(e);
      value = v;
      done.set();
    });
    done.wait();
  });
  CHECK(value == 7);
  CHECK(count_during == 2);
  CHECK(token.use_count() == 1);
}

TEST_CASE("task code can await_ an asio::awaitable that itself reaches a portal with with_portal_run_sync") {
  run([] {
    std::vector<std::string> log;
    CHECK(greenback::await_(asio_reaching_back(log)) == 21);
    CHECK(log == std::vector<std::string>{"asio without portal", "fiber with portal"});
    CHECK(now_s() == 1);
  });
}

TEST_CASE("cancelling an asio::awaitable waiting in with_portal_run_sync cancels the portal's fiber") {
  std::vector<std::string> log;
  std::exception_ptr outcome;
  bool completed = false;
  asio::cancellation_signal signal;
  weft::event done;
  run([&] {
    asio::co_spawn(io(), portal_sleeper(log), asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) {
                     outcome = e;
                     completed = true;
                     done.set();
                   }));
    weft::testing::wait_all_tasks_blocked();
    CHECK(log.empty());
    signal.emit(asio::cancellation_type::terminal);
    weft::cancel_scope bound = weft::move_on_after(1000s);
    bound.run([&] { done.wait(); });
    CHECK_FALSE(bound.cancelled_caught());
  });
  CHECK(completed);
  // The function was cancelled; the coroutine sees the Asio way of saying so.
  CHECK(log == std::vector<std::string>{"fiber cancelled", "coroutine saw operation_aborted"});
  bool aborted = false;
  try {
    if (outcome) std::rethrow_exception(outcome);
  } catch (const boost::system::system_error& e) {
    aborted = e.code() == asio::error::operation_aborted;
  } catch (...) {
  }
  CHECK(aborted);
}

TEST_CASE("asio::awaitables reaching portals over and over leave nothing behind") {
  int completed = 0;
  int failed = 0;
  run([&] {
    // Each round: 200 coroutines, each through with_portal_run_sync to await_.
    auto round = [&] {
      weft::event all_done;
      int finished = 0;
      for (int i = 0; i < 200; ++i) {
        asio::co_spawn(io(), reach_portal(i), [&, i](std::exception_ptr e, int v) {
          if (e || v != i)
            ++failed;
          else
            ++completed;
          if (++finished == 200) all_done.set();
        });
      }
      all_done.wait();
      weft::testing::wait_all_tasks_blocked();
      return weft::testing::live_task_objects();
    };
    const std::size_t before = weft::testing::live_task_objects();
    const std::size_t after_first = round();
    const double first_end = now_s();
    const std::size_t after_second = round();
    const std::size_t after_third = round();
    CHECK(first_end == 1);
    CHECK(now_s() == 3);
    // Whatever the runtime keeps for portals (idle workers) does not grow
    // with the number of calls, and is far from one object per call.
    CHECK(after_second == after_first);
    CHECK(after_third == after_first);
    CHECK(after_first - before < 200);
  });
  CHECK(completed == 600);
  CHECK(failed == 0);
}

TEST_CASE("a deadline that aborts an Asio operation is honoured before the clock jumps to a later deadline") {
  run([] {
    socket_pair sp;
    with_watchdog(sp, [&] {
      std::array<char, 8> buf{};
      double fiber_caught_at = -1;
      double portal_caught_at = -1;
      observation obs;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([] { weft::sleep(1000s); });  // a later deadline elsewhere in the program
        weft::cancel_scope first = weft::move_on_after(5s);
        first.run([&] {
          try {
            sp.b.async_read_some(asio::buffer(buf), weft::use_fiber);
          } catch (const weft::cancelled&) {
            fiber_caught_at = now_s();
            throw;
          }
        });
        weft::cancel_scope second = weft::move_on_after(5s);
        second.run([&] {
          try {
            greenback::await_(observed_read(sp.b, obs));
          } catch (const weft::cancelled&) {
            portal_caught_at = now_s();
            throw;
          }
        });
        tg.cancel();
      });
      CHECK(fiber_caught_at == 5);
      CHECK(portal_caught_at == 10);
      CHECK(obs.aborted);
    });
  });
}

// --- the echo scenario -------------------------------------------------------------------------

namespace {
// The connection as an async iterator of chunks; the generator runs on the
// fiber that iterates it, so it reads with weft::use_fiber.
template <class Socket>
weft::async_generator<std::string> chunks_of(Socket& sock) {
  std::array<char, 4> buf{};
  for (;;) {
    boost::system::error_code ec;
    const std::size_t n = sock.async_read_some(asio::buffer(buf), weft::use_fiber[ec]);
    if (ec == asio::error::eof) co_return;
    if (ec) throw boost::system::system_error(ec);
    co_yield std::string(buf.data(), n);
  }
}

// A plain synchronous connection handler.
template <class Socket>
void handle_echo_connection(Socket& sock, std::vector<std::string>& chunks) {
  auto connection = chunks_of(sock);
  for (const std::string& chunk : greenback::async_iter(connection)) {
    chunks.push_back(chunk);
    greenback::await_(asio::async_write(sock, asio::buffer(chunk), asio::deferred));
  }
  sock.shutdown(Socket::shutdown_send);
}

std::string joined(const std::vector<std::string>& parts) {
  std::string all;
  for (const auto& p : parts) all += p;
  return all;
}
}  // namespace

TEST_CASE("echo: a synchronous handler iterating async_iter echoes the client's bytes over a socket pair") {
  run([] {
    socket_pair sp;
    const std::string message = "hello from a synchronous client";
    std::vector<std::string> chunks;
    std::string reply;
    boost::system::error_code end;
    weft::task_group server;
    auto cm = greenback::async_cm(server);
    greenback::async_context(cm, [&](weft::task_group& tg) {
      tg.start_soon([&] { handle_echo_connection(sp.b, chunks); });
      // The client: synchronous code using await_.
      CHECK(greenback::await_(asio::async_write(sp.a, asio::buffer(message), asio::deferred)) == message.size());
      reply.assign(message.size(), '\0');
      CHECK(greenback::await_(asio::async_read(sp.a, asio::buffer(reply), asio::deferred)) == message.size());
      sp.a.shutdown(local_socket::shutdown_send);
      std::array<char, 8> buf{};
      sp.a.async_read_some(asio::buffer(buf), weft::use_fiber[end]);
    });
    CHECK(reply == message);
    CHECK(end == asio::error::eof);  // the handler ended and shut its side down
    CHECK(joined(chunks) == message);
    CHECK(chunks.size() >= 8);
    for (const auto& c : chunks) CHECK(c.size() <= 4);
    CHECK(server.running() == 0);
    CHECK(now_s() == 0);
  });
}

TEST_CASE("echo: a server on loopback TCP with synchronous handlers serves three clients that use await_") {
  run([] {
    tcp::acceptor acceptor(io(), tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    const tcp::endpoint endpoint = acceptor.local_endpoint();
    std::map<int, std::string> replies;
    std::map<int, std::string> expected;
    int served = 0;
    weft::task_group server;
    auto cm = greenback::async_cm(server);
    greenback::async_context(cm, [&](weft::task_group& tg) {
      tg.start_soon([&] {  // the listener, plain synchronous code
        for (int i = 0; i < 3; ++i) {
          auto sock = std::make_shared<tcp::socket>(greenback::await_(acceptor.async_accept(asio::deferred)));
          tg.start_soon([sock, &served] {
            std::vector<std::string> chunks;
            handle_echo_connection(*sock, chunks);
            ++served;
          });
        }
      });
      weft::open_task_group([&](weft::task_group& clients) {
        for (int i = 0; i < 3; ++i) {
          expected[i] = "client " + std::to_string(i) + " says hello";
          clients.start_soon([&, i] {
            tcp::socket s(io());
            greenback::await_(s.async_connect(endpoint, asio::deferred));
            const std::string message = expected[i];
            greenback::await_(asio::async_write(s, asio::buffer(message), asio::deferred));
            std::string reply(message.size(), '\0');
            greenback::await_(asio::async_read(s, asio::buffer(reply), asio::deferred));
            s.shutdown(tcp::socket::shutdown_send);
            replies[i] = reply;
          });
        }
      });
    });
    CHECK(replies == expected);
    CHECK(served == 3);
  });
}

TEST_CASE("await_ of an asio::awaitable in a cancelled scope raises cancelled and never starts it") {
  run([] {
    bool started = false;
    auto body = [&]() -> boost::asio::awaitable<int> {
      started = true;
      co_return 1;
    };
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] { greenback::await_(body()); });
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(started);
  });
}

TEST_CASE("a use_fiber operation in a cancelled scope raises cancelled before it is started") {
  run([] {
    auto& io = weft::lowlevel::io_context();
    bool ran = false;
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] {
      boost::asio::post(io, [&] { ran = true; });
      boost::asio::post(io, weft::use_fiber);  // would complete at the next pass
    });
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(ran);
    boost::asio::post(io, weft::use_fiber);  // outside the scope it waits, behind the first handler
    CHECK(ran);
  });
}

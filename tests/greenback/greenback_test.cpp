// greenback portals in weft: await_ from synchronous task code, portals,
// with_portal_run(_sync), cancellation, async_context, decorate_as_sync,
// async_iter (behaviours §9).
#include "support/support.hpp"

#include <weft/async_generator.hpp>
#include <weft/coro.hpp>
#include <weft/greenback/greenback.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/testing/sequencer.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <coroutine>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

using namespace weft_test;

namespace {


struct not_a_std_exception {
  int code;
};

// --- coroutines used throughout ---------------------------------------------------


weft::coro<int> ready_value(int value) { co_return value; }

weft::coro<void> ready_void(int& counter) {
  ++counter;
  co_return;
}

weft::coro<void> append_after(std::vector<std::string>& log, std::string entry, weft::duration d) {
  weft::sleep(d);
  log.push_back(std::move(entry));
  co_return;
}

weft::coro<int> rethrow_after(std::exception_ptr e, weft::duration d) {
  weft::sleep(d);
  std::rethrow_exception(e);
  co_return 0;
}

weft::coro<void> throw_code(int code) {
  throw not_a_std_exception{code};
  co_return;
}

weft::coro<void> sleep_forever_coro() {
  weft::sleep_forever();
  co_return;
}

weft::coro<void> checkpoint_coro() {
  weft::checkpoint();
  co_return;
}

weft::coro<bool> portal_probe() { co_return greenback::has_portal(); }

weft::coro<std::uint64_t> task_id_probe() { co_return weft::get_current_task().id; }

// --- custom awaitables -------------------------------------------------------------------

// Completes from an Asio handler posted to the runtime's io_context.
template <class T>
struct posted {
  T value;
  bool* resumed_without_portal = nullptr;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    boost::asio::post(weft::lowlevel::io_context(), [h, flag = resumed_without_portal] {
      if (flag != nullptr) *flag = !greenback::has_portal();
      h.resume();
    });
  }
  T await_resume() { return std::move(value); }
};

// Already complete: await_ready() is true.
struct ready_awaitable {
  int value;
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  int await_resume() const noexcept { return value; }
};

// An awaitable through a member operator co_await.
struct via_operator {
  int value;
  posted<int> operator co_await() const { return posted<int>{value}; }
};

// A one-shot slot: one coroutine waits, someone else (another task) completes it.
template <class T>
class handoff {
 public:
  struct awaiter {
    handoff& self;
    bool await_ready() const noexcept { return self.value_.has_value(); }
    void await_suspend(std::coroutine_handle<> h) noexcept { self.waiter_ = h; }
    T await_resume() { return std::move(*self.value_); }
  };
  awaiter wait() { return awaiter{*this}; }
  bool waiting() const noexcept { return static_cast<bool>(waiter_); }
  void complete(T v) {
    value_.emplace(std::move(v));
    if (auto h = std::exchange(waiter_, {})) h.resume();
  }

 private:
  std::optional<T> value_;
  std::coroutine_handle<> waiter_;
};

// Completes from a foreign thread (which the test joins afterwards).
struct from_thread {
  std::thread* thread;
  int value;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    *thread = std::thread([h] { h.resume(); });
  }
  int await_resume() const noexcept { return value; }
};

// A plain eager C++ coroutine, for coroutines that run outside any fiber.
struct detached_coroutine {
  struct promise_type {
    detached_coroutine get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

// --- helpers ----------------------------------------------------------------------------

// What a call that should fail for lack of a portal actually did.
template <class F>
std::string no_portal_message(F&& f) {
  try {
    f();
    return "no exception";
  } catch (const greenback::no_portal_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception: ") + e.what();
  } catch (...) {
    return "wrong exception";
  }
}

bool names_remedies(const std::string& message) {
  return message.find("ensure_portal") != std::string::npos && message.find("with_portal_run") != std::string::npos;
}

// Runs fn in a child process and returns its exit status, or minus the
// signal that killed it: for behaviour whose failure mode is a crash.
template <class F>
int exit_status_in_child(F fn) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) std::signal(sig, SIG_DFL);
    int rc = 99;
    try {
      rc = fn();
    } catch (...) {
      rc = 98;
    }
    std::_Exit(rc);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

// await_ accepts only awaitables.
template <class A>
constexpr bool can_await = requires(A a) { greenback::await_(std::move(a)); };
static_assert(can_await<weft::coro<int>>);
static_assert(can_await<posted<int>>);
static_assert(can_await<ready_awaitable>);
static_assert(can_await<via_operator>);
static_assert(!can_await<int>);
static_assert(!can_await<std::string>);
static_assert(std::is_base_of_v<std::logic_error, greenback::no_portal_error>);

}  // namespace

// --- await_ -------------------------------------------------------------------------------

TEST_CASE("await_ returns the value of a weft coroutine, which runs on the calling task") {
  run([] {
    CHECK(greenback::await_(answer_after(2s, 42)) == 42);
    CHECK(now_s() == 2);
    // The coroutine body runs on the caller's task.
    CHECK(greenback::await_(task_id_probe()) == weft::get_current_task().id);
    // An lvalue coroutine can be awaited too.
    weft::coro<int> c = answer_after(1s, 7);
    CHECK(greenback::await_(c) == 7);
    CHECK(c.done());
    CHECK(now_s() == 3);
  });
}

TEST_CASE("await_ of a void coroutine runs it to completion before returning") {
  run([] {
    std::vector<std::string> log;
    greenback::await_(append_after(log, "first", 1s));
    log.push_back("between");
    greenback::await_(append_after(log, "second", 2s));
    CHECK(log == std::vector<std::string>{"first", "between", "second"});
    CHECK(now_s() == 3);
  });
}

TEST_CASE("an exception from the awaited coroutine comes out of await_ unchanged and can be caught in sync code") {
  run([] {
    const std::exception_ptr original = std::make_exception_ptr(test_error("boom"));
    const test_error* original_object = address_of<test_error>(original);
    REQUIRE(original_object != nullptr);

    bool caught = false;
    try {
      greenback::await_(rethrow_after(original, 1s));
    } catch (const test_error& e) {
      caught = true;
      CHECK(&e == original_object);  // the same object, not a copy
      CHECK(std::string(e.what()) == "boom");
    }
    CHECK(caught);
    CHECK(now_s() == 1);

    // Exceptions of any type pass, not only std::exception.
    bool caught_code = false;
    try {
      greenback::await_(throw_code(17));
    } catch (const not_a_std_exception& e) {
      caught_code = true;
      CHECK(e.code == 17);
    }
    CHECK(caught_code);

    // The task goes on normally after catching.
    CHECK(greenback::await_(answer_after(1s, 5)) == 5);
  });
}

namespace {
int sync_descend(int depth, std::vector<int>& trail);

weft::coro<int> async_descend(int depth, std::vector<int>& trail) {
  co_await posted<int>{0};  // a real suspension on a foreign awaitable at every level
  trail.push_back(depth);
  co_return sync_descend(depth - 1, trail) + 1;
}

int sync_descend(int depth, std::vector<int>& trail) {
  weft::sleep(1s);  // a blocking call in plain synchronous code at every level
  if (depth == 0) {
    CHECK(greenback::has_portal());
    return 0;
  }
  return greenback::await_(async_descend(depth, trail));
}
}  // namespace

TEST_CASE("await_ works at any depth: await_, coroutine, sync code, await_ again, 50 levels deep") {
  run([] {
    std::vector<int> trail;
    weft::task_options deep;
    deep.stack_size = 1024 * 1024;
    int result = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon(deep, [&] { result = sync_descend(50, trail); });
    });
    CHECK(result == 50);
    REQUIRE(trail.size() == 50);
    CHECK(trail.front() == 50);
    CHECK(trail.back() == 1);
    CHECK(now_s() == 51);
    // Every nested drive was unwound: await_ still works at the top level.
    CHECK(greenback::await_(posted<int>{3}) == 3);
  });
}

namespace {
class remote_resource {
 public:
  explicit remote_resource(std::vector<std::string>& log)
      : log_(log), handle_(greenback::autoawait(answer_after)(1s, 99)) {
    greenback::autoawait(append_after)(log_, "opened", 1s);
  }
  ~remote_resource() { greenback::autoawait(append_after)(log_, "closed", 2s); }
  int handle() const { return handle_; }

 private:
  std::vector<std::string>& log_;
  int handle_;
};
}  // namespace

TEST_CASE("autoawait lets constructors and destructors wait for coroutines") {
  run([] {
    std::vector<std::string> log;
    {
      remote_resource r(log);
      CHECK(now_s() == 2);
      CHECK(r.handle() == 99);
      log.push_back("used");
    }
    CHECK(log == std::vector<std::string>{"opened", "used", "closed"});
    CHECK(now_s() == 4);
    // autoawait is a plain synchronous callable usable as a callback.
    auto fetch = greenback::autoawait([](int v) { return ready_value(v * 2); });
    CHECK(fetch(21) == 42);
  });
}

TEST_CASE("a coroutine that completes without suspending does not yield to other tasks") {
  run([] {
    bool other_ran = false;
    int counter = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      CHECK(greenback::await_(ready_value(5)) == 5);
      greenback::await_(ready_void(counter));
      CHECK(greenback::await_(ready_awaitable{7}) == 7);
      CHECK(greenback::await_(greenback::with_portal_run_sync([] { return 8; })) == 8);
      CHECK(counter == 1);
      CHECK_FALSE(other_ran);
      weft::testing::wait_all_tasks_blocked();
      CHECK(other_ran);
    });
    // Nor is it a cancel point.
    weft::cancel_scope scope;
    bool reached = false;
    scope.run([&] {
      scope.cancel();
      CHECK(greenback::await_(ready_value(1)) == 1);
      reached = true;
      weft::checkpoint();
    });
    CHECK(reached);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 0);
  });
}

TEST_CASE("a coroutine that suspends lets other tasks run while the caller waits in await_") {
  run([] {
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { order.push_back("other"); });
      order.push_back("before");
      CHECK(greenback::await_(posted<int>{4}) == 4);
      order.push_back("after");
    });
    CHECK(order == std::vector<std::string>{"before", "other", "after"});
  });
}

TEST_CASE("await_ of a custom awaitable completed from an Asio handler returns its value") {
  run([] {
    bool resumed_without_portal = false;
    CHECK(greenback::await_(posted<int>{11, &resumed_without_portal}) == 11);
    CHECK(resumed_without_portal);  // the completion really came from an Asio handler
    // Move-only values are returned by value.
    std::unique_ptr<int> p = greenback::await_(posted<std::unique_ptr<int>>{std::make_unique<int>(12)});
    REQUIRE(p);
    CHECK(*p == 12);
    // An awaitable through operator co_await.
    CHECK(greenback::await_(via_operator{13}) == 13);
    // The sync code after await_ is back on the task.
    CHECK(greenback::has_portal());
    CHECK(now_s() == 0);
  });
}

TEST_CASE("await_ of a custom awaitable completed by another task resumes the waiter on its own task") {
  run([] {
    handoff<std::string> slot;
    std::vector<std::string> order;
    std::uint64_t waiter_id = 0;
    std::uint64_t resumed_on = 1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        waiter_id = weft::get_current_task().id;
        order.push_back("waiting");
        std::string got = greenback::await_(slot.wait());
        resumed_on = weft::get_current_task().id;
        order.push_back("got " + got);
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK(slot.waiting());
      order.push_back("completing");
      slot.complete("payload");
      order.push_back("completed");  // the waiter runs later, on its own fiber
    });
    CHECK(order == std::vector<std::string>{"waiting", "completing", "completed", "got payload"});
    CHECK(resumed_on == waiter_id);
  });
}

TEST_CASE("await_ of a custom awaitable completed from another thread wakes the waiting task") {
  run([] {
    std::thread completer;
    bool other_ran = false;
    int value = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      value = greenback::await_(from_thread{&completer, 21});
    });
    completer.join();
    CHECK(value == 21);
    CHECK(other_ran);
    CHECK(greenback::has_portal());
  });
}

TEST_CASE("await_ of an empty coroutine throws invalid_argument") {
  run([] {
    weft::coro<int> empty;
    CHECK_THROWS_AS(greenback::await_(empty), std::invalid_argument);
    weft::coro<int> full = ready_value(1);
    weft::coro<int> taken = std::move(full);
    CHECK_THROWS_AS(greenback::await_(full), std::invalid_argument);
    CHECK(greenback::await_(taken) == 1);
  });
}

TEST_CASE("awaiting a coroutine that was already awaited throws invalid_argument instead of resuming it") {
  // A failure here may be a crash (resuming a finished coroutine), so the
  // scenario runs in a child process: 0 = invalid_argument was thrown.
  const int status = exit_status_in_child([] {
    return weft::run([] {
      weft::coro<int> c = ready_value(3);
      if (greenback::await_(c) != 3) return 2;
      try {
        greenback::await_(c);
      } catch (const std::invalid_argument&) {
        return 0;
      }
      return 1;
    });
  });
  CHECK(status == 0);
}

// --- no portal -------------------------------------------------------------------------

TEST_CASE("in an Asio handler there is no portal: has_portal is false and await_ throws no_portal_error") {
  run([] {
    weft::event done;
    bool portal = true;
    std::string await_coro, await_awaitable, await_asio, ensure;
    boost::asio::post(weft::lowlevel::io_context(), [&] {
      portal = greenback::has_portal();
      await_coro = no_portal_message([] { greenback::await_(ready_value(1)); });
      await_awaitable = no_portal_message([] { greenback::await_(ready_awaitable{1}); });
      await_asio = no_portal_message([] {
        greenback::await_([]() -> boost::asio::awaitable<int> { co_return 1; }());
      });
      ensure = no_portal_message([] { greenback::ensure_portal(); });
      done.set();
    });
    done.wait();
    CHECK_FALSE(portal);
    CHECK_MESSAGE(names_remedies(await_coro), await_coro);
    CHECK_MESSAGE(names_remedies(await_awaitable), await_awaitable);
    CHECK_MESSAGE(names_remedies(await_asio), await_asio);
    CHECK_MESSAGE(names_remedies(ensure), ensure);
    CHECK(greenback::has_portal());  // back in task code
  });
}

TEST_CASE("on a thread that runs no weft runtime there is no portal") {
  struct results {
    bool portal = true;
    bool task_portal = true;
    std::string await_coro, await_awaitable, ensure;
  };
  auto probe = [](results& r) {
    r.portal = greenback::has_portal();
    r.task_portal = greenback::has_portal(weft::task<void>());
    r.await_coro = no_portal_message([] { greenback::await_(ready_value(1)); });
    r.await_awaitable = no_portal_message([] { greenback::await_(ready_awaitable{1}); });
    r.ensure = no_portal_message([] { greenback::ensure_portal(); });
  };
  // A foreign thread while a runtime runs on this one.
  results during;
  run([&] {
    std::thread t([&] { probe(during); });
    t.join();
    CHECK(greenback::has_portal());
  });
  // And a thread with no runtime anywhere.
  results alone;
  std::thread t([&] { probe(alone); });
  t.join();
  for (const results* r : {&during, &alone}) {
    CHECK_FALSE(r->portal);
    CHECK_FALSE(r->task_portal);
    CHECK_MESSAGE(names_remedies(r->await_coro), r->await_coro);
    CHECK_MESSAGE(names_remedies(r->await_awaitable), r->await_awaitable);
    CHECK_MESSAGE(names_remedies(r->ensure), r->ensure);
  }
  // The main thread outside run() has no portal either.
  CHECK_FALSE(greenback::has_portal());
  CHECK(names_remedies(no_portal_message([] { greenback::await_(ready_value(1)); })));
}

namespace {
struct asio_probe_results {
  bool portal = true;
  std::string await_coro, await_asio, await_op, ensure;
  std::exception_ptr error;
};

boost::asio::awaitable<void> probe_from_asio(asio_probe_results& r) {
  r.portal = greenback::has_portal();
  r.await_coro = no_portal_message([] { greenback::await_(ready_value(1)); });
  r.await_asio = no_portal_message([] {
    greenback::await_([]() -> boost::asio::awaitable<int> { co_return 1; }());
  });
  r.await_op = no_portal_message([] {
    boost::asio::steady_timer t(weft::lowlevel::io_context());
    greenback::await_(t.async_wait(boost::asio::deferred));
  });
  r.ensure = no_portal_message([] { greenback::ensure_portal(); });
  co_return;
}
}  // namespace

TEST_CASE("in an asio::awaitable co_spawned on the runtime there is no portal") {
  run([] {
    asio_probe_results r;
    weft::event done;
    boost::asio::co_spawn(weft::lowlevel::io_context(), probe_from_asio(r), [&](std::exception_ptr e) {
      r.error = e;
      done.set();
    });
    done.wait();
    CHECK_FALSE(r.error);
    CHECK_FALSE(r.portal);
    CHECK_MESSAGE(names_remedies(r.await_coro), r.await_coro);
    CHECK_MESSAGE(names_remedies(r.await_asio), r.await_asio);
    CHECK_MESSAGE(names_remedies(r.await_op), r.await_op);
    CHECK_MESSAGE(names_remedies(r.ensure), r.ensure);
  });
}

// --- has_portal, ensure_portal, bestow_portal ------------------------------------------------

TEST_CASE("has_portal is true in task code, in coroutines awaited from it and in every child task") {
  run([] {
    CHECK(greenback::has_portal());
    CHECK(greenback::await_(portal_probe()));
    std::vector<bool> children(3, false);
    weft::open_task_group([&](weft::task_group& tg) {
      for (std::size_t i = 0; i < children.size(); ++i)
        tg.start_soon([&children, i] { children[i] = greenback::has_portal() && greenback::await_(portal_probe()); });
    });
    CHECK(children == std::vector<bool>{true, true, true});
  });
}

TEST_CASE("has_portal(task) is true while the task runs and false for finished tasks and empty handles") {
  run([] {
    static_assert(noexcept(greenback::has_portal(std::declval<const weft::task<int>&>())));
    CHECK_FALSE(greenback::has_portal(weft::task<int>()));
    weft::event go;
    weft::task<int> child;
    weft::open_task_group([&](weft::task_group& tg) {
      child = tg.start([&] {
        go.wait();
        return greenback::await_(answer_after(1s, 6));
      });
      CHECK(greenback::has_portal(child));
      go.set();
    });
    CHECK(child.join() == 6);
    CHECK_FALSE(greenback::has_portal(child));
  });
}

TEST_CASE("ensure_portal is a checkpoint even when the task already has a portal") {
  run([] {
    // A schedule point ...
    bool other_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      CHECK(greenback::has_portal());
      greenback::ensure_portal();
      CHECK(other_ran);
    });
    // ... and a cancel point.
    weft::cancel_scope scope;
    bool threw = false;
    scope.run([&] {
      scope.cancel();
      try {
        greenback::ensure_portal();
      } catch (const weft::cancelled&) {
        threw = true;
        throw;
      }
    });
    CHECK(threw);
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("ensure_portal is idempotent and the portal lasts for the rest of the task") {
  run([] {
    int switches = 0;
    weft::event stop;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        while (!stop.is_set()) {
          ++switches;
          weft::checkpoint();
        }
      });
      greenback::ensure_portal();
      greenback::ensure_portal();
      greenback::ensure_portal();
      CHECK(switches >= 3);  // each call let the other task run
      stop.set();
    });
    CHECK(greenback::has_portal());
    weft::sleep(1s);
    CHECK(greenback::await_(answer_after(1s, 4)) == 4);
    CHECK(greenback::has_portal());
    CHECK(now_s() == 2);
  });
}

TEST_CASE("bestow_portal is synchronous and idempotent, and the task can use await_ afterwards") {
  run([] {
    static_assert(noexcept(greenback::bestow_portal(std::declval<const weft::task<int>&>())));
    weft::event go;
    bool other_ran = false;
    weft::task<int> child;
    weft::open_task_group([&](weft::task_group& tg) {
      child = tg.start([&] {
        go.wait();
        return greenback::await_(answer_after(1s, 9));
      });
      tg.start_soon([&] { other_ran = true; });
      greenback::bestow_portal(child);
      greenback::bestow_portal(child);
      CHECK_FALSE(other_ran);  // no schedule point
      CHECK(greenback::has_portal(child));
      greenback::bestow_portal(weft::task<void>());  // an empty handle is fine too
      go.set();
    });
    CHECK(child.join() == 9);
    greenback::bestow_portal(child);  // and a finished task
  });
}

// --- with_portal_run / with_portal_run_sync ----------------------------------------------------

namespace {
weft::coro<std::string> describe(int a, std::string b, weft::duration d) {
  weft::sleep(d);
  co_return b + ":" + std::to_string(a);
}
}  // namespace

TEST_CASE("with_portal_run_sync passes arguments and the return value through") {
  run([] {
    auto joined = greenback::await_(greenback::with_portal_run_sync(
        [](int a, const std::string& b, double c) { return b + std::to_string(a) + (c > 0.25 ? "+" : "-"); }, 3,
        std::string("x"), 0.5));
    CHECK(joined == "x3+");
    // References pass through std::ref.
    int counter = 0;
    CHECK(greenback::await_(greenback::with_portal_run_sync(
              [](int& c, int by) {
                c += by;
                return c;
              },
              std::ref(counter), 4)) == 4);
    CHECK(counter == 4);
    // Move-only return values.
    auto p = greenback::await_(greenback::with_portal_run_sync([] { return std::make_unique<int>(5); }));
    REQUIRE(p);
    CHECK(*p == 5);
    // From a weft coroutine, with co_await.
    auto in_coro = [](int x) -> weft::coro<int> {
      co_return co_await greenback::with_portal_run_sync([](int y) { return greenback::await_(answer_after(1s, y + 1)); },
                                                         x);
    };
    CHECK(greenback::await_(in_coro(41)) == 42);
    CHECK(now_s() == 1);
  });
}

TEST_CASE("with_portal_run passes arguments and the return value through") {
  run([] {
    CHECK(greenback::await_(greenback::with_portal_run(describe, 7, std::string("seven"), 2s)) == "seven:7");
    CHECK(now_s() == 2);
    CHECK(greenback::await_(greenback::with_portal_run([](int v) { return ready_value(v); }, 3)) == 3);
    CHECK(greenback::await_(greenback::with_portal_run([] { return posted<int>{4}; })) == 4);
  });
}

TEST_CASE("with_portal_run_sync and with_portal_run propagate exceptions unchanged") {
  run([] {
    const std::exception_ptr original = std::make_exception_ptr(test_error("from sync"));
    const test_error* object = address_of<test_error>(original);
    bool caught_sync = false;
    try {
      greenback::await_(greenback::with_portal_run_sync([&]() -> int { std::rethrow_exception(original); }));
    } catch (const test_error& e) {
      caught_sync = true;
      CHECK(&e == object);
    }
    CHECK(caught_sync);
    bool caught_async = false;
    try {
      greenback::await_(greenback::with_portal_run(rethrow_after, original, 1s));
    } catch (const test_error& e) {
      caught_async = true;
      CHECK(&e == object);
    }
    CHECK(caught_async);
    auto throw_code_value = [](int code) -> weft::coro<int> {
      throw not_a_std_exception{code};
      co_return 0;
    };
    CHECK_THROWS_AS(greenback::await_(greenback::with_portal_run(throw_code_value, 3)), not_a_std_exception);

  });
}

TEST_CASE("with a portal present with_portal_run_sync calls straight through with no extra checkpoint") {
  run([] {
    bool other_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      std::uint64_t ran_on = 0;
      greenback::await_(greenback::with_portal_run_sync([&] { return ran_on = weft::get_current_task().id; }));
      CHECK(ran_on == weft::get_current_task().id);  // same task, no fresh fiber
      CHECK(greenback::await_(greenback::with_portal_run(ready_value, 2)) == 2);
      CHECK(greenback::await_(greenback::with_portal_run_tree(ready_value, 3)) == 3);
      CHECK_FALSE(other_ran);  // not a schedule point
    });
    weft::cancel_scope scope;
    bool reached = false;
    scope.run([&] {
      scope.cancel();
      CHECK(greenback::await_(greenback::with_portal_run_sync([] { return 1; })) == 1);
      CHECK(greenback::await_(greenback::with_portal_run(ready_value, 1)) == 1);
      reached = true;  // not a cancel point either
      weft::checkpoint();
    });
    CHECK(reached);
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("with_portal_run_sync and with_portal_run nest") {
  run([] {
    int result = greenback::await_(greenback::with_portal_run_sync([] {
      int inner = greenback::await_(greenback::with_portal_run_sync([] {
        return greenback::await_(greenback::with_portal_run(answer_after, 1s, 10)) +
               greenback::await_(greenback::with_portal_run_sync([] { return 5; }));
      }));
      return inner + greenback::await_(greenback::with_portal_run([] { return answer_after(1s, 100); }));
    }));
    CHECK(result == 115);
    CHECK(now_s() == 2);
  });
}

namespace {
struct plain_coroutine_results {
  int value = 0;
  bool outer_portal = true;
  bool inner_portal = false;
  std::uint64_t inner_task = 0;
  std::string error;
  std::string void_error;
  int void_calls = 0;
};

detached_coroutine use_portal_from_plain_coroutine(plain_coroutine_results& r, weft::event& done) {
  r.outer_portal = greenback::has_portal();
  r.value = co_await greenback::with_portal_run_sync(
      [&r](int x) {
        r.inner_portal = greenback::has_portal();
        r.inner_task = weft::get_current_task().id;
        weft::sleep(2s);
        return greenback::await_(answer_after(1s, x * 2));
      },
      21);
  try {
    co_await greenback::with_portal_run_sync([]() -> int { throw test_error("sync failure"); });
  } catch (const test_error& e) {
    r.error = e.what();
  }
  r.void_calls = co_await greenback::with_portal_run_sync([] {
    weft::sleep(1s);
    return 1;
  });
  try {
    co_await greenback::with_portal_run_sync([]() -> int { throw test_error("void failure"); });
  } catch (const test_error& e) {
    r.void_error = e.what();
  }
  done.set();
}
}  // namespace

TEST_CASE("with_portal_run_sync awaited from a plain C++ coroutine outside any fiber runs on a fresh fiber") {
  run([] {
    plain_coroutine_results r;
    weft::event done;
    boost::asio::post(weft::lowlevel::io_context(), [&] { use_portal_from_plain_coroutine(r, done); });
    done.wait();
    CHECK_FALSE(r.outer_portal);
    CHECK(r.inner_portal);
    CHECK(r.inner_task != 0);
    CHECK(r.inner_task != weft::get_current_task().id);
    CHECK(r.value == 42);
    CHECK(r.error == "sync failure");
    CHECK(r.void_calls == 1);
    CHECK(r.void_error == "void failure");
    CHECK(now_s() == 4);
  });
}

// --- cancellation ------------------------------------------------------------------------------

TEST_CASE("cancellation while parked in await_ throws cancelled into the synchronous caller") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(5s);
    bool caught_in_sync = false;
    bool after = false;
    scope.run([&] {
      try {
        greenback::await_(sleep_forever_coro());
        after = true;
      } catch (const weft::cancelled& c) {
        caught_in_sync = true;
        CHECK(c.reason() == weft::cancel_reason::deadline);
        CHECK(now_s() == 5);
        throw;
      }
    });
    CHECK(caught_in_sync);
    CHECK_FALSE(after);
    CHECK(scope.cancelled_caught());

    // Cancelling the task itself reaches its await_ as well.
    std::vector<std::string> log;
    weft::task<void> child;
    weft::open_task_group([&](weft::task_group& tg) {
      child = tg.start([&] {
        try {
          greenback::await_(sleep_forever_coro());
        } catch (const weft::cancelled&) {
          log.push_back("child saw cancelled");
          throw;
        }
      });
      weft::testing::wait_all_tasks_blocked();
      child.cancel();
    });
    CHECK(child.cancelled());
    CHECK(log == std::vector<std::string>{"child saw cancelled"});
  });
}

TEST_CASE("cancellation in await_ is level-triggered: catching it and calling await_ again throws again") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(5s);
    int caught = 0;
    bool after = false;
    scope.run([&] {
      for (int i = 0; i < 3; ++i) {
        try {
          greenback::await_(sleep_forever_coro());
        } catch (const weft::cancelled&) {
          ++caught;
        }
      }
      try {
        greenback::await_(checkpoint_coro());
      } catch (const weft::cancelled&) {
        ++caught;
      }
      greenback::await_(answer_after(1s, 0));
      after = true;
    });
    CHECK(caught == 4);
    CHECK_FALSE(after);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 5);
  });
}

TEST_CASE("an awaitable that cannot be withdrawn is waited for and the cancellation comes at the next checkpoint") {
  run([] {
    handoff<int> slot;
    int got = 0;
    double got_at = -1;
    bool after_checkpoint = false;
    weft::cancel_scope scope = weft::move_on_after(5s);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        weft::sleep(10s);
        slot.complete(7);
      });
      scope.run([&] {
        got = greenback::await_(slot.wait());
        got_at = now_s();
        weft::checkpoint();
        after_checkpoint = true;
      });
    });
    CHECK(got == 7);
    CHECK(got_at == 10);
    CHECK_FALSE(after_checkpoint);
    CHECK(scope.cancelled_caught());
  });
}

namespace {
weft::coro<std::string> scoped_work() {
  std::string out;
  weft::cancel_scope move_on = weft::move_on_after(1s);
  move_on.run([] { weft::sleep(10s); });
  if (move_on.cancelled_caught()) out += "moved-on ";
  try {
    weft::timeout(1s, [] { weft::sleep_forever(); });
  } catch (const weft::timeout_error&) {
    out += "timeout ";
  }
  weft::cancel_scope outer;
  outer.run([&] {
    outer.cancel();
    weft::ignore_cancellation([&] {
      weft::sleep(1s);
      out += "shielded ";
    });
    weft::checkpoint();
    out += "unreachable ";
  });
  int sum = 0;
  weft::open_task_group([&](weft::task_group& tg) {
    for (int i = 1; i <= 3; ++i) tg.start_soon([&sum, i] { sum += greenback::await_(answer_after(i * 1s, i)); });
  });
  out += "sum=" + std::to_string(sum);
  co_return out;
}
}  // namespace

TEST_CASE("cancel scopes, timeouts, shields and task groups opened inside a coroutine body work as in task code") {
  run([] {
    CHECK(greenback::await_(scoped_work()) == "moved-on timeout shielded sum=6");
    CHECK(now_s() == 6);
  });
}

// --- async_context over weft's scopes -----------------------------------------------------------

namespace {
struct noop_body {
  void operator()() const {}
};
template <class Scope>
constexpr bool accepts_temporary_cm =
    requires(Scope& s, noop_body body) { greenback::async_context(greenback::async_cm(s), body); };
template <class CM>
constexpr bool accepts_named_cm = requires(CM& cm, noop_body body) { greenback::async_context(cm, body); };
static_assert(accepts_named_cm<decltype(greenback::async_cm(std::declval<weft::cancel_scope&>()))>);
static_assert(accepts_named_cm<decltype(greenback::async_cm(std::declval<weft::task_group&>()))>);
}  // namespace

TEST_CASE("async_context accepts async_cm(scope) and async_cm(group) passed as temporaries") {
  // greenback::async_context(greenback::async_cm(scope), body) is the
  // documented spelling; it needs async_context to accept an rvalue manager.
  CHECK(accepts_temporary_cm<weft::cancel_scope>);
  CHECK(accepts_temporary_cm<weft::task_group>);
}

TEST_CASE("async_context over a cancel scope catches the scope's own deadline") {
  run([] {
    weft::cancel_scope deadline = weft::move_on_after(2s);
    auto cm = greenback::async_cm(deadline);
    auto r = greenback::async_context(cm, [](weft::cancel_scope& s) {
      CHECK(s.deadline() == at(2));
      weft::sleep(10s);
      return 5;
    });
    CHECK_FALSE(r.has_value());
    CHECK(deadline.cancelled_caught());
    CHECK(now_s() == 2);

    weft::cancel_scope roomy = weft::move_on_after(10s);
    auto cm2 = greenback::async_cm(roomy);
    auto r2 = greenback::async_context(cm2, [] {
      weft::sleep(1s);
      return 6;
    });
    REQUIRE(r2.has_value());
    CHECK(*r2 == 6);
    CHECK_FALSE(roomy.cancelled_caught());
    CHECK(now_s() == 3);

    // Explicit cancel() from the body; a void body.
    weft::cancel_scope explicit_cancel;
    auto cm3 = greenback::async_cm(explicit_cancel);
    bool after = false;
    greenback::async_context(cm3, [&](weft::cancel_scope& s) {
      s.cancel();
      weft::checkpoint();
      after = true;
    });
    CHECK_FALSE(after);
    CHECK(explicit_cancel.cancelled_caught());
  });
}

TEST_CASE("async_context over a cancel scope lets an outer cancellation propagate") {
  run([] {
    weft::cancel_scope outer = weft::move_on_after(2s);
    weft::cancel_scope inner;
    bool after_inner = false;
    outer.run([&] {
      auto cm = greenback::async_cm(inner);
      greenback::async_context(cm, [] { weft::sleep(10s); });
      after_inner = true;
    });
    CHECK_FALSE(after_inner);
    CHECK(outer.cancelled_caught());
    CHECK_FALSE(inner.cancelled_caught());
    CHECK(now_s() == 2);
  });
}

TEST_CASE("async_context over a shielded cancel scope protects the body from an outer cancellation") {
  run([] {
    weft::cancel_scope outer;
    weft::cancel_scope shield(weft::inf_time, true);
    bool body_done = false;
    bool after = false;
    outer.run([&] {
      outer.cancel();
      auto cm = greenback::async_cm(shield);
      greenback::async_context(cm, [&] {
        weft::sleep(3s);
        body_done = true;
      });
      weft::checkpoint();
      after = true;
    });
    CHECK(body_done);
    CHECK_FALSE(after);
    CHECK(now_s() == 3);
    CHECK(outer.cancelled_caught());
  });
}

TEST_CASE("async_context over a task group waits for the children and reports their failures") {
  run([] {
    weft::task_group group;
    auto cm = greenback::async_cm(group);
    std::vector<int> finished;
    greenback::async_context(cm, [&](weft::task_group& tg) {
      CHECK(&tg == &group);
      for (int i = 3; i >= 1; --i)
        tg.start_soon([&finished, i] { finished.push_back(greenback::await_(answer_after(i * 1s, i))); });
    });
    CHECK(finished == std::vector<int>{1, 2, 3});
    CHECK(now_s() == 3);

    weft::task_group failing;
    auto cm2 = greenback::async_cm(failing);
    bool sibling_cancelled = false;
    bool caught = false;
    try {
      greenback::async_context(cm2, [&](weft::task_group& tg) {
        tg.start_soon([] { greenback::await_(rethrow_after(std::make_exception_ptr(test_error("child")), 1s)); });
        tg.start_soon([&] {
          try {
            greenback::await_(sleep_forever_coro());
          } catch (const weft::cancelled&) {
            sibling_cancelled = true;
            throw;
          }
        });
        weft::sleep_forever();
      });
    } catch (const weft::exception_group& eg) {
      caught = true;
      CHECK(eg.size() == 1);
      const test_error* e = eg.find<test_error>();
      REQUIRE(e != nullptr);
      CHECK(std::string(e->what()) == "child");
    }
    CHECK(caught);
    CHECK(sibling_cancelled);
    CHECK(now_s() == 4);
  });
}

// --- decorate_as_sync ---------------------------------------------------------------------------

namespace {
weft::coro<int> slow_square(int x, int* calls) {
  ++*calls;
  weft::sleep(1s);
  co_return x * x;
}

// A plain synchronous memoizing decorator: knows nothing about coroutines.
auto memoize = [](auto fn) {
  return [fn = std::move(fn), cache = std::map<int, int>{}](int x, int* calls) mutable -> int {
    if (auto it = cache.find(x); it != cache.end()) return it->second;
    int v = fn(x, calls);
    cache.emplace(x, v);
    return v;
  };
};

struct cache_trace {
  bool portal = true;
  double t0 = -1, t1 = -1, t2 = -1, t3 = -1;
  int first = 0, second = 0, third = 0;
};

template <class Fn>
boost::asio::awaitable<void> use_memoized(Fn& cached, int* calls, cache_trace& tr) {
  tr.portal = greenback::has_portal();
  tr.t0 = now_s();
  tr.first = co_await cached(7, calls);
  tr.t1 = now_s();
  tr.second = co_await cached(7, calls);
  tr.t2 = now_s();
  tr.third = co_await cached(3, calls);
  tr.t3 = now_s();
}
}  // namespace

TEST_CASE("decorate_as_sync with a memoizing decorator serves a repeated call from the cache in zero time") {
  run([] {
    int calls = 0;
    auto cached_square = greenback::decorate_as_sync(memoize)(slow_square);

    // From task code.
    CHECK(greenback::await_(cached_square(4, &calls)) == 16);
    CHECK(now_s() == 1);
    CHECK(greenback::await_(cached_square(4, &calls)) == 16);
    CHECK(now_s() == 1);
    CHECK(calls == 1);

    // From a weft coroutine.
    auto from_coro = [](auto& fn, int* c) -> weft::coro<int> { co_return co_await fn(5, c) + co_await fn(5, c); };
    CHECK(greenback::await_(from_coro(cached_square, &calls)) == 50);
    CHECK(calls == 2);
    CHECK(now_s() == 2);
  });
}

TEST_CASE("a decorate_as_sync function is awaitable from an asio::awaitable, which has no portal") {
  run([] {
    int calls = 0;
    auto cached_square = greenback::decorate_as_sync(memoize)(slow_square);
    cache_trace tr;
    std::exception_ptr error;
    weft::event done;
    boost::asio::co_spawn(weft::lowlevel::io_context(), use_memoized(cached_square, &calls, tr),
                          [&](std::exception_ptr e) {
                            error = e;
                            done.set();
                          });
    done.wait();
    if (error) FAIL_CHECK(message_of(error));
    CHECK_FALSE(tr.portal);
    CHECK(tr.first == 49);
    CHECK(tr.second == 49);
    CHECK(tr.third == 9);
    CHECK(tr.t1 - tr.t0 == 1);
    CHECK(tr.t2 == tr.t1);  // served from the cache
    CHECK(tr.t3 - tr.t2 == 1);
    CHECK(calls == 2);
    // The cache is shared with task callers.
    CHECK(greenback::await_(cached_square(7, &calls)) == 49);
    CHECK(calls == 2);
  });
}

// --- async_context with a user-defined async context manager ----------------------------------

namespace {
struct recording_cm {
  explicit recording_cm(std::vector<std::string>& l) : log(l) {}
  std::vector<std::string>& log;
  bool fail_enter = false;
  bool suppress = false;
  bool fail_exit = false;
  std::exception_ptr exit_saw;
  std::exception_ptr enter_error = std::make_exception_ptr(test_error("enter failed"));
  std::exception_ptr exit_error = std::make_exception_ptr(test_error("exit failed"));

  weft::coro<int> aenter() { return enter_impl(this); }
  weft::coro<bool> aexit(std::exception_ptr e) { return exit_impl(this, std::move(e)); }

  static weft::coro<int> enter_impl(recording_cm* self) {
    weft::sleep(1s);
    self->log.push_back("enter");
    if (self->fail_enter) std::rethrow_exception(self->enter_error);
    co_return 42;
  }
  static weft::coro<bool> exit_impl(recording_cm* self, std::exception_ptr e) {
    self->log.push_back(e ? "exit with exception" : "exit");
    self->exit_saw = e;
    co_await posted<int>{0};
    weft::sleep(1s);
    if (self->fail_exit) std::rethrow_exception(self->exit_error);
    co_return self->suppress;
  }
};
static_assert(greenback::async_context_manager<recording_cm>);
}  // namespace

TEST_CASE("async_context enters, runs the body with the entered value and exits") {
  run([] {
    std::vector<std::string> log;
    recording_cm cm{log};
    std::optional<std::string> r = greenback::async_context(cm, [&](int entered) {
      log.push_back("body " + std::to_string(entered));
      return std::string("result");
    });
    REQUIRE(r.has_value());
    CHECK(*r == "result");
    CHECK(log == std::vector<std::string>{"enter", "body 42", "exit"});
    CHECK_FALSE(cm.exit_saw);
    CHECK(now_s() == 2);

    // A body that ignores the entered value, returning void.
    log.clear();
    greenback::async_context(cm, [&] { log.push_back("body"); });
    CHECK(log == std::vector<std::string>{"enter", "body", "exit"});
  });
}

TEST_CASE("async_context: an exception from aenter propagates and neither the body nor aexit runs") {
  run([] {
    std::vector<std::string> log;
    recording_cm cm{log};
    cm.fail_enter = true;
    bool caught = false;
    try {
      greenback::async_context(cm, [&] { log.push_back("body"); });
    } catch (const test_error& e) {
      caught = true;
      CHECK(&e == address_of<test_error>(cm.enter_error));
    }
    CHECK(caught);
    CHECK(log == std::vector<std::string>{"enter"});
  });
}

TEST_CASE("async_context: aexit may suppress the body's exception") {
  run([] {
    std::vector<std::string> log;
    recording_cm cm{log};
    cm.suppress = true;
    const std::exception_ptr body_error = std::make_exception_ptr(test_error("body failed"));
    std::optional<int> r;
    CHECK_NOTHROW(r = greenback::async_context(cm, [&]() -> int { std::rethrow_exception(body_error); }));
    CHECK_FALSE(r.has_value());
    CHECK(cm.exit_saw == body_error);
    CHECK(log == std::vector<std::string>{"enter", "exit with exception"});
    // Suppression with no exception in flight keeps the value.
    auto r2 = greenback::async_context(cm, [] { return 3; });
    REQUIRE(r2.has_value());
    CHECK(*r2 == 3);
  });
}

TEST_CASE("async_context: the body's exception propagates unchanged when aexit does not suppress it") {
  run([] {
    std::vector<std::string> log;
    recording_cm cm{log};
    const std::exception_ptr body_error = std::make_exception_ptr(test_error("body failed"));
    bool caught = false;
    try {
      greenback::async_context(cm, [&] { std::rethrow_exception(body_error); });
    } catch (const test_error& e) {
      caught = true;
      CHECK(&e == address_of<test_error>(body_error));
    }
    CHECK(caught);
    CHECK(cm.exit_saw == body_error);
    CHECK(log == std::vector<std::string>{"enter", "exit with exception"});

    // A cancellation of the body reaches aexit and goes on propagating.
    weft::cancel_scope scope = weft::move_on_after(5s);
    scope.run([&] { greenback::async_context(cm, [] { weft::sleep_forever(); }); });
    CHECK(scope.cancelled_caught());
    CHECK(weft::is_cancelled(cm.exit_saw));
  });
}

TEST_CASE("async_context: an exception from aexit replaces the body's exception") {
  run([] {
    std::vector<std::string> log;
    recording_cm cm{log};
    cm.fail_exit = true;
    const std::exception_ptr body_error = std::make_exception_ptr(test_error("body failed"));
    bool caught = false;
    try {
      greenback::async_context(cm, [&] { std::rethrow_exception(body_error); });
    } catch (const test_error& e) {
      caught = true;
      CHECK(&e == address_of<test_error>(cm.exit_error));
    }
    CHECK(caught);
    CHECK(cm.exit_saw == body_error);
  });
}

TEST_CASE("async_context: an exception from aexit propagates when the body succeeded") {
  run([] {
    std::vector<std::string> log;
    recording_cm cm{log};
    cm.fail_exit = true;
    bool caught = false;
    bool body_ran = false;
    try {
      greenback::async_context(cm, [&] {
        body_ran = true;
        return 1;
      });
    } catch (const test_error& e) {
      caught = true;
      CHECK(&e == address_of<test_error>(cm.exit_error));
    }
    CHECK(body_ran);
    CHECK(caught);
    CHECK_FALSE(cm.exit_saw);
    CHECK(log == std::vector<std::string>{"enter", "exit"});
  });
}

// --- portal tree helpers ---------------------------------------------------------------------

TEST_CASE("portals_for_tree enters and exits at schedule points that are not cancel points") {
  run([] {
    std::vector<std::string> order;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { order.push_back("other"); });
      greenback::portals_for_tree tree;
      greenback::async_context(tree, [&] {
        order.push_back("body");
        weft::task_group inner;
        auto cm = greenback::async_cm(inner);
        greenback::async_context(cm, [&](weft::task_group& g) {
          g.start_soon([&] { order.push_back(greenback::has_portal() ? "child portal" : "child without portal"); });
        });
      });
    });
    CHECK(order == std::vector<std::string>{"other", "body", "child portal"});

    weft::cancel_scope scope;
    bool entered = false, exited = false, after = false;
    scope.run([&] {
      scope.cancel();
      greenback::portals_for_tree tree;
      greenback::async_context(tree, [&] { entered = true; });
      exited = true;
      weft::checkpoint();
      after = true;
    });
    CHECK(entered);
    CHECK(exited);
    CHECK_FALSE(after);
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("with_portal_run_tree and portals_for_children give child tasks portals") {
  run([] {
    std::vector<bool> portals;
    auto spawn_children = [](std::vector<bool>& out) -> weft::coro<int> {
      weft::open_task_group([&](weft::task_group& tg) {
        for (int i = 0; i < 3; ++i)
          tg.start_soon([&out] { out.push_back(greenback::await_(portal_probe()) && greenback::has_portal()); });
      });
      co_return static_cast<int>(out.size());
    };
    CHECK(greenback::await_(greenback::with_portal_run_tree(spawn_children, std::ref(portals))) == 3);
    CHECK(portals == std::vector<bool>{true, true, true});

    [[maybe_unused]] greenback::portals_for_children scope;
    bool child_portal = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { child_portal = greenback::has_portal() && greenback::await_(answer_after(1s, 1)) == 1; });
    });
    CHECK(child_portal);
  });
}

// --- async_iter -----------------------------------------------------------------------------

namespace {
weft::async_generator<int> count_slowly(int n) {
  for (int i = 0; i < n; ++i) {
    weft::sleep(1s);
    co_yield i;
  }
}

weft::async_generator<int> via_foreign_awaitables(int n) {
  for (int i = 0; i < n; ++i) co_yield co_await posted<int>{i * 10};
}

weft::async_generator<int> fail_after_two() {
  co_yield 1;
  co_yield 2;
  throw test_error("generator failed");
}

weft::async_generator<int, int> running_total() {
  int total = 0;
  for (;;) {
    std::optional<int> add = co_yield total;
    if (!add) co_return;
    total += *add;
  }
}

weft::async_generator<std::string> resilient() {
  for (int i = 0;; ++i) {
    std::string note;
    try {
      co_yield "value " + std::to_string(i);
    } catch (const test_error& e) {
      note = e.what();
    }
    if (!note.empty()) co_yield "recovered from " + note;
  }
}

weft::async_generator<int> with_cleanup(std::vector<std::string>& log) {
  log.push_back("started");
  try {
    for (int i = 0;; ++i) {
      try {
        co_yield i;
      } catch (const std::exception&) {
        log.push_back("std::exception handler must not see generator_exit");
      }
    }
  } catch (const weft::generator_exit&) {
    log.push_back("closing");
    weft::sleep(1s);  // cleanup may block
    log.push_back("closed");
    throw;
  }
}

weft::async_generator<int> swallows_exit(std::vector<std::string>& log) {
  try {
    co_yield 1;
  } catch (const weft::generator_exit&) {
    log.push_back("swallowed");
  }
}

weft::async_generator<int> stubborn() {
  for (;;) {
    try {
      co_yield 1;
    } catch (const weft::generator_exit&) {
    }
  }
}
}  // namespace

TEST_CASE("async_iter iterates an async generator from synchronous code until it ends") {
  run([] {
    auto gen = count_slowly(4);
    std::vector<int> seen;
    std::vector<double> times;
    for (int v : greenback::async_iter(gen)) {
      seen.push_back(v);
      times.push_back(now_s());
    }
    CHECK(seen == std::vector<int>{0, 1, 2, 3});
    CHECK(times == std::vector<double>{1, 2, 3, 4});
    CHECK(gen.done());

    auto foreign = via_foreign_awaitables(3);
    std::vector<int> tens;
    for (int v : greenback::async_iter(foreign)) tens.push_back(v);
    CHECK(tens == std::vector<int>{0, 10, 20});

    auto empty = count_slowly(0);
    int iterations = 0;
    for ([[maybe_unused]] int v : greenback::async_iter(empty)) ++iterations;
    CHECK(iterations == 0);

    auto manual = count_slowly(1);
    greenback::async_iter it(manual);
    CHECK(it.next() == std::optional<int>(0));
    CHECK(it.next() == std::nullopt);
    CHECK(it.next() == std::nullopt);  // the end stays the end
  });
}

TEST_CASE("async_iter propagates an exception raised by the generator") {
  run([] {
    auto gen = fail_after_two();
    std::vector<int> seen;
    bool caught = false;
    try {
      for (int v : greenback::async_iter(gen)) seen.push_back(v);
    } catch (const test_error& e) {
      caught = true;
      CHECK(std::string(e.what()) == "generator failed");
    }
    CHECK(caught);
    CHECK(seen == std::vector<int>{1, 2});
  });
}

TEST_CASE("async_iter send delivers values to the generator's co_yield") {
  run([] {
    auto gen = running_total();
    greenback::async_iter it(gen);
    CHECK(it.next() == std::optional<int>(0));
    CHECK(it.send(5) == std::optional<int>(5));
    CHECK(it.send(10) == std::optional<int>(15));
    CHECK(it.send(-3) == std::optional<int>(12));
    CHECK(it.next() == std::nullopt);  // nothing sent: the generator returns
    CHECK(gen.done());
  });
}

TEST_CASE("async_iter throw_ raises an exception at the generator's co_yield") {
  run([] {
    auto gen = resilient();
    greenback::async_iter it(gen);
    CHECK(it.next() == std::optional<std::string>("value 0"));
    CHECK(it.throw_(std::make_exception_ptr(test_error("oops"))) == std::optional<std::string>("recovered from oops"));
    CHECK(it.next() == std::optional<std::string>("value 1"));
    // An exception the generator does not handle comes back out of throw_ unchanged.
    const std::exception_ptr fatal = std::make_exception_ptr(std::logic_error("fatal"));
    bool caught = false;
    try {
      it.throw_(fatal);
    } catch (const std::logic_error& e) {
      caught = true;
      CHECK(&e == address_of<std::logic_error>(fatal));
    }
    CHECK(caught);
    CHECK(gen.done());
    CHECK(it.next() == std::nullopt);
  });
}

TEST_CASE("async_iter close throws generator_exit at the co_yield and the generator can clean up") {
  run([] {
    std::vector<std::string> log;
    auto gen = with_cleanup(log);
    greenback::async_iter it(gen);
    CHECK(it.next() == std::optional<int>(0));
    CHECK(it.next() == std::optional<int>(1));
    it.close();
    CHECK(log == std::vector<std::string>{"started", "closing", "closed"});
    CHECK(now_s() == 1);
    CHECK(gen.done());
    CHECK(it.next() == std::nullopt);
    it.close();  // closing again is a no-op

    // A generator may swallow generator_exit and return.
    log.clear();
    auto quiet = swallows_exit(log);
    greenback::async_iter q(quiet);
    CHECK(q.next() == std::optional<int>(1));
    CHECK_NOTHROW(q.close());
    CHECK(log == std::vector<std::string>{"swallowed"});

    // Closing a generator that never started runs nothing of it.
    log.clear();
    auto unstarted = with_cleanup(log);
    greenback::async_iter u(unstarted);
    u.close();
    CHECK(log.empty());
    CHECK(u.next() == std::nullopt);
    CHECK(log.empty());
  });
}

TEST_CASE("async_iter close of a generator that yields again throws logic_error") {
  run([] {
    auto gen = stubborn();
    greenback::async_iter it(gen);
    CHECK(it.next() == std::optional<int>(1));
    CHECK_THROWS_AS(it.close(), std::logic_error);
  });
}

namespace {
// The same conversation with running_total/resilient, once through co_await
// and once through async_iter: the traces must be identical.
template <class Step>
std::vector<std::string> converse(Step&& step) {
  std::vector<std::string> trace;
  auto show = [&](const auto& v) {
    if constexpr (std::is_same_v<std::decay_t<decltype(*v)>, int>)
      trace.push_back(v ? std::to_string(*v) : "end");
    else
      trace.push_back(v ? *v : "end");
  };
  step(show);
  return trace;
}

weft::coro<std::vector<std::string>> async_conversation() {
  auto totals = running_total();
  auto words = resilient();
  std::vector<std::string> trace;
  auto put = [&](const auto& v) {
    if constexpr (std::is_same_v<std::decay_t<decltype(*v)>, int>)
      trace.push_back(v ? std::to_string(*v) : "end");
    else
      trace.push_back(v ? *v : "end");
  };
  put(co_await totals.next());
  put(co_await totals.send(2));
  put(co_await totals.send(3));
  put(co_await words.next());
  put(co_await words.throw_(std::make_exception_ptr(test_error("e"))));
  put(co_await words.next());
  co_await words.close();
  put(co_await words.next());
  put(co_await totals.next());
  co_return trace;
}
}  // namespace

TEST_CASE("synchronous code delegates to an async generator through async_iter as async code would") {
  run([] {
    const std::vector<std::string> async_trace = greenback::await_(async_conversation());
    const std::vector<std::string> sync_trace = converse([](auto put) {
      auto totals = running_total();
      auto words = resilient();
      greenback::async_iter t(totals);
      greenback::async_iter w(words);
      put(t.next());
      put(t.send(2));
      put(t.send(3));
      put(w.next());
      put(w.throw_(std::make_exception_ptr(test_error("e"))));
      put(w.next());
      w.close();
      put(w.next());
      put(t.next());
    });
    CHECK(async_trace ==
          std::vector<std::string>{"0", "2", "5", "value 0", "recovered from e", "value 1", "end", "end"});
    CHECK(sync_trace == async_trace);
  });
}

TEST_CASE("a cancellation inside a generator driven by async_iter ends the loop with cancelled") {
  run([] {
    auto gen = count_slowly(10);
    std::vector<int> seen;
    weft::cancel_scope scope = weft::move_on_after(3500ms);
    scope.run([&] {
      for (int v : greenback::async_iter(gen)) seen.push_back(v);
    });
    CHECK(seen == std::vector<int>{0, 1, 2});
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 3.5);
  });
}

// --- bookkeeping ---------------------------------------------------------------------------

TEST_CASE("a thousand tasks each using await_ leave no task objects or stacks behind") {
  run([] {
    const std::size_t tasks_before = weft::testing::live_task_objects();
    int completed = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 1000; ++i) {
        tg.start_soon([&completed, i] {
          const int v = greenback::await_(answer_after(1s, i)) + greenback::await_(posted<int>{1});
          greenback::ensure_portal();
          if (v == i + 1 && greenback::has_portal()) ++completed;
        });
      }
    });
    CHECK(completed == 1000);
    CHECK(now_s() == 1);
    CHECK(weft::testing::live_task_objects() == tasks_before);
    CHECK(greenback::await_(posted<int>{5}) == 5);
    // Stacks of finished fibers are returned lazily; the check after the
    // test case counts them once the runtime has ended.
  });
}

TEST_CASE("await_ of a suspending awaitable in a cancelled scope raises cancelled before it starts") {
  run([] {
    handoff<int> slot;
    bool returned = false;
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] {
      greenback::await_(slot.wait());
      returned = true;
    });
    CHECK_FALSE(returned);
    CHECK_FALSE(slot.waiting());  // await_suspend was never called
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("await_ of an awaitable that is ready at once is no checkpoint, even in a cancelled scope") {
  run([] {
    handoff<int> slot;
    slot.complete(5);
    int got = 0;
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] { got = greenback::await_(slot.wait()); });
    CHECK(got == 5);
    CHECK_FALSE(scope.cancelled_caught());
  });
}

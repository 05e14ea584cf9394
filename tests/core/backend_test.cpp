#include "support/support.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;

namespace {

weft::run_options manual_options(std::shared_ptr<weft::testing::manual_clock>& clock) {
  clock = std::make_shared<weft::testing::manual_clock>(weft::time_point{}, true);
  weft::run_options options;
  options.clock = clock;
  options.stack_size = 64 * 1024;
  return options;
}

}  // namespace

// --- obtaining a backend ---------------------------------------------------------------

TEST_CASE("the builtin backend is called weft and is always the same object") {
  CHECK(weft::builtin_backend().name() == "weft");
  CHECK(&weft::builtin_backend() == &weft::builtin_backend());
}

TEST_CASE("new_builtin_backend creates a working weft backend by name") {
  std::unique_ptr<weft::async_backend> backend = weft::new_builtin_backend("weft");
  REQUIRE(backend != nullptr);
  CHECK(backend->name() == "weft");
  CHECK(backend.get() != &weft::builtin_backend());
  std::shared_ptr<weft::testing::manual_clock> clock;
  double finished_at = -1;
  backend->bootstrap([&] {
    backend->sleep(3s);
    finished_at = backend->current_time().time_since_epoch().count();
  }, manual_options(clock));
  CHECK(finished_at == 3);
}

TEST_CASE("an unknown backend name is an invalid_argument error that lists the supported names") {
  CHECK_THROWS_WITH_AS(weft::new_builtin_backend("asyncio"), doctest::Contains("\"weft\""), std::invalid_argument);
  CHECK_THROWS_WITH_AS(weft::new_builtin_backend("asyncio"), doctest::Contains("asyncio"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(weft::ensure_backend(std::string_view("trio")), doctest::Contains("\"weft\""),
                       std::invalid_argument);
  CHECK(&weft::ensure_backend(std::string_view("weft")) == &weft::builtin_backend());
}

TEST_CASE("ensure_backend(nullptr) is the current runtime's backend, and outside a runtime a logic_error") {
  CHECK_THROWS_AS(weft::ensure_backend(nullptr), std::logic_error);
  CHECK_THROWS_AS(weft::ensure_backend(), std::logic_error);
  CHECK_THROWS_AS(weft::current_backend(), std::logic_error);
  run([] {
    weft::async_backend& current = weft::ensure_backend(nullptr);
    CHECK(&current == &weft::current_backend());
    CHECK(&current == &weft::builtin_backend());
    CHECK(current.name() == "weft");
    CHECK(&weft::ensure_backend() == &current);
  });
}

TEST_CASE("ensure_backend(&backend) returns that backend, inside a runtime or not") {
  auto mine = weft::new_builtin_backend("weft");
  CHECK(&weft::ensure_backend(mine.get()) == mine.get());
  run([&] {
    CHECK(&weft::ensure_backend(mine.get()) == mine.get());
    CHECK(&weft::ensure_backend(&weft::builtin_backend()) == &weft::builtin_backend());
  });
}

TEST_CASE("every weft object exposes the backend it runs on") {
  run([] {
    weft::async_backend& current = weft::current_backend();
    weft::open_task_group([&](weft::task_group& tg) {
      CHECK(&tg.backend() == &current);
      auto t = tg.start([] { return 1; });
      CHECK(&t.backend() == &current);
      t.join();
    });
    weft::cancel_scope scope;
    CHECK(&scope.backend() == &current);
    weft::lock l;
    CHECK(&l.backend() == &current);
    weft::fair_lock fl;
    CHECK(&fl.backend() == &current);
    weft::event e;
    CHECK(&e.backend() == &current);
    weft::condition_variable cv;
    CHECK(&cv.backend() == &current);
    weft::semaphore s(1);
    CHECK(&s.backend() == &current);
  });
}

// --- the interface ---------------------------------------------------------------------

TEST_CASE("bootstrap runs a function as the root task of a fresh runtime and rethrows its exception") {
  weft::async_backend& b = weft::builtin_backend();
  std::shared_ptr<weft::testing::manual_clock> clock;
  bool ran = false;
  weft::task_info root;
  b.bootstrap([&] {
    root = b.get_current_task();
    b.sleep(10s);
    ran = true;
  }, manual_options(clock));
  CHECK(ran);
  CHECK(root.id != 0);
  CHECK(clock->now().time_since_epoch().count() == 10);  // the options' clock was used
  CHECK_THROWS_WITH_AS(b.bootstrap([] { throw std::runtime_error("root failed"); }, manual_options(clock)),
                       "root failed", std::runtime_error);
  b.bootstrap([&] {
    CHECK_THROWS_AS(b.bootstrap([] {}), std::logic_error);  // one runtime per thread
  }, manual_options(clock));
}

TEST_CASE("the backend's checkpoints and time functions are weft's") {
  run([] {
    weft::async_backend& b = weft::current_backend();
    CHECK(b.current_time() == weft::current_time());

    b.sleep(2s);
    CHECK(now_s() == 2);
    b.sleep_until(at(5));
    CHECK(now_s() == 5);
    CHECK(b.current_time() == at(5));

    std::vector<std::string> log;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { log.push_back("other"); });
      b.coro_yield();
      log.push_back("after yield");
    });
    CHECK(log == std::vector<std::string>{"other", "after yield"});

    weft::cancel_scope cs;
    bool shielded_yield_returned = false;
    bool yield_threw = false;
    cs.run([&] {
      cs.cancel();
      b.cancel_shielded_coro_yield();
      shielded_yield_returned = true;
      try {
        b.coro_yield();
      } catch (const weft::cancelled&) {
        yield_threw = true;
        throw;
      }
    });
    CHECK(shielded_yield_returned);
    CHECK(yield_threw);
    CHECK(cs.cancelled_caught());

    auto forever = b.move_on_after(3s);
    forever.run([&] { b.sleep_forever(); });
    CHECK(forever.cancelled_caught());
    CHECK(now_s() == 8);
  });
}

TEST_CASE("the backend's ignore_cancellation shields work from an outer cancellation") {
  run([] {
    weft::async_backend& b = weft::current_backend();
    bool finished = false;
    bool cancelled_after = false;
    auto cs = b.move_on_after(1s);
    cs.run([&] {
      b.ignore_cancellation([&] {
        b.sleep(3s);
        finished = true;
      });
      try {
        b.coro_yield();
      } catch (const weft::cancelled&) {
        cancelled_after = true;
        throw;
      }
    });
    CHECK(finished);
    CHECK(cancelled_after);  // delivered at the next checkpoint after the shield
    CHECK(cs.cancelled_caught());
    CHECK(now_s() == 3);
  });
}

TEST_CASE("the backend's cancel scope factories and timeouts are weft's") {
  run([] {
    weft::async_backend& b = weft::current_backend();
    auto open = b.open_cancel_scope(at(2));
    CHECK(open.deadline() == at(2));
    open.run([&] { b.sleep(10s); });
    CHECK(open.cancelled_caught());
    CHECK(now_s() == 2);

    auto after = b.move_on_after(1s);
    CHECK(after.deadline() == at(3));
    auto at_scope = b.move_on_at(at(7));
    CHECK(at_scope.deadline() == at(7));

    CHECK_THROWS_AS(b.timeout(1s, [&] { b.sleep(5s); }), weft::timeout_error);
    CHECK(now_s() == 3);
    CHECK(b.timeout(1s, [] { return 4; }) == 4);
    CHECK_THROWS_AS(b.timeout_at(at(4), [&] { b.sleep_forever(); }), weft::timeout_error);
    CHECK(now_s() == 4);
  });
}

TEST_CASE("the backend's get_current_task is weft's") {
  run([] {
    weft::async_backend& b = weft::current_backend();
    CHECK(b.get_current_task() == weft::get_current_task());
    weft::open_task_group([&](weft::task_group& tg) {
      weft::task_info inside;
      auto t = tg.start(weft::task_options{.name = "child"}, [&] { inside = b.get_current_task(); });
      CHECK(inside == t.info());
      CHECK(inside.name == "child");
    });
  });
}

TEST_CASE("with_task_group opens a task group that waits for its children and reports their failures") {
  run([] {
    weft::async_backend& b = weft::current_backend();
    std::vector<double> finished;
    b.with_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        b.sleep(2s);
        finished.push_back(now_s());
      });
      tg.start_soon([&] {
        b.sleep(1s);
        finished.push_back(now_s());
      });
    });
    CHECK(finished == std::vector<double>{1, 2});
    CHECK(now_s() == 2);

    bool caught_group = false;
    try {
      b.with_task_group([&](weft::task_group& tg) { tg.start_soon([] { throw std::runtime_error("child"); }); });
    } catch (const weft::exception_group& g) {
      caught_group = true;
      CHECK(g.count<std::runtime_error>() == 1);
    }
    CHECK(caught_group);
  });
}

TEST_CASE("the backend creates working locks, events and condition variables") {
  run([] {
    weft::async_backend& b = weft::current_backend();
    auto l = b.create_lock();
    auto fl = b.create_fair_lock();
    auto e = b.create_event();
    auto cv = b.create_condition_var();

    std::vector<std::string> log;
    bool ready = false;
    weft::open_task_group([&](weft::task_group& tg) {
      l.acquire();
      CHECK(l.locked());
      tg.start_soon([&] {
        l.acquire();
        log.push_back("lock taken");
        l.release();
      });
      fl.acquire();
      tg.start_soon([&] {
        fl.acquire();
        log.push_back("fair lock taken");
        fl.release();
      });
      tg.start_soon([&] {
        e.wait();
        log.push_back("event seen");
      });
      tg.start_soon([&] {
        cv.acquire();
        cv.wait([&] { return ready; });
        log.push_back("condition seen");
        cv.release();
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK(log.empty());

      l.release();
      weft::testing::wait_all_tasks_blocked();
      fl.release();
      weft::testing::wait_all_tasks_blocked();
      e.set();
      CHECK(e.is_set());
      weft::testing::wait_all_tasks_blocked();
      cv.acquire();
      ready = true;
      cv.notify_all();
      cv.release();
    });
    CHECK(log == std::vector<std::string>{"lock taken", "fair lock taken", "event seen", "condition seen"});
    CHECK_FALSE(l.locked());
    CHECK_FALSE(fl.locked());
  });
}

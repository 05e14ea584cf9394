#include "support/support.hpp"

#include <weft/testing/sequencer.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;

// Functions with external linkage, whose names the default task name derives from.
namespace weft_task_test {

weft::task_info plain_worker_function() { return weft::get_current_task(); }

struct named_functor {
  weft::task_info operator()() const { return weft::get_current_task(); }
};

}  // namespace weft_task_test

// --- identity ------------------------------------------------------------------------

TEST_CASE("info() gives a task's id and name, and task_info compares by id only") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto a = tg.start(weft::task_options{.name = "alpha"}, [] { weft::sleep(1s); });
      auto b = tg.start(weft::task_options{.name = "beta"}, [] { weft::sleep(1s); });
      CHECK(a.info().name == "alpha");
      CHECK(b.info().name == "beta");
      CHECK(a.info().id != 0);
      CHECK(a.info().id != b.info().id);
      CHECK(a.info() == a.info());
      CHECK_FALSE(a.info() == b.info());

      auto copy = a;
      CHECK(copy.info() == a.info());
      CHECK(weft::task_info{a.info().id, "another name"} == a.info());
      CHECK_FALSE(weft::task_info{b.info().id, "alpha"} == a.info());

      a.join();
      CHECK(a.info().name == "alpha");  // still available once the task is done
    });
  });
}

TEST_CASE("get_current_task() inside a task is that task's info") {
  run([] {
    const weft::task_info root = weft::get_current_task();
    CHECK(root.id != 0);
    weft::task_info seen;
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start(weft::task_options{.name = "worker"}, [&] {
        seen = weft::get_current_task();
        weft::sleep(1s);
        CHECK(weft::get_current_task() == seen);  // stable across switches
      });
      CHECK(seen == t.info());
      CHECK(seen.id == t.info().id);
      CHECK(seen.name == "worker");
      CHECK_FALSE(seen == root);
      CHECK(weft::get_current_task() == root);
    });
  });
}

TEST_CASE("get_current_task() outside a task is a clear std::logic_error") {
  CHECK_THROWS_WITH_AS(weft::get_current_task(), doctest::Contains("must be called from a weft task"),
                       std::logic_error);
  CHECK_THROWS_WITH_AS(weft::get_current_task(), doctest::Contains("get_current_task"), std::logic_error);
}

TEST_CASE("a task's default name is derived from its function, and explicit names are kept") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto plain = tg.start(weft_task_test::plain_worker_function);
      CHECK(plain.info().name.find("plain_worker_function") != std::string::npos);
      CHECK(plain.join().name == plain.info().name);

      auto functor = tg.start(weft_task_test::named_functor{});
      CHECK(functor.info().name.find("named_functor") != std::string::npos);
      CHECK(functor.join().name == functor.info().name);

      auto lambda = tg.start([] { return weft::get_current_task(); });
      CHECK(lambda.info().name.find("lambda") != std::string::npos);
      CHECK(lambda.join().name == lambda.info().name);

      auto named = tg.start(weft::task_options{.name = "explicit"}, weft_task_test::plain_worker_function);
      CHECK(named.info().name == "explicit");
      CHECK(named.join().name == "explicit");

      std::string soon_name;
      tg.start_soon(weft::task_options{.name = "soon"}, [&] { soon_name = weft::get_current_task().name; });
      weft::testing::wait_all_tasks_blocked();
      CHECK(soon_name == "soon");
    });
  });
}

// --- state -----------------------------------------------------------------------------

TEST_CASE("done() is false while the task runs and true once it returned or threw") {
  run([] {
    weft::task<int> ok;
    weft::task<void> failed;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        ok = tg.start([] {
          weft::sleep(1s);
          return 1;
        });
        failed = tg.start([] {
          weft::sleep(2s);
          throw std::runtime_error("failed");
        });
        CHECK_FALSE(ok.done());
        CHECK_FALSE(failed.done());
        weft::sleep(1.5s);
        CHECK(ok.done());
        CHECK_FALSE(failed.done());
      });
    } catch (const weft::exception_group&) {
    }
    CHECK(now_s() == 2);
    CHECK(ok.done());
    CHECK(failed.done());
  });
}

TEST_CASE("cancel() returns true when it takes effect and false once the task is done") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto sleeper = tg.start([] {
        try {
          weft::sleep_forever();
        } catch (const weft::cancelled& c) {
          CHECK(c.reason() == weft::cancel_reason::task_cancelled);
          throw;
        }
      });
      weft::sleep(1s);
      CHECK_FALSE(sleeper.done());
      CHECK(sleeper.cancel());
      sleeper.wait();
      CHECK(now_s() == 1);
      CHECK(sleeper.done());
      CHECK_FALSE(sleeper.cancel());

      auto finished = tg.start([] { return 3; });
      CHECK(finished.done());
      CHECK_FALSE(finished.cancel());
      CHECK(finished.join() == 3);
    });
  });
}

TEST_CASE("cancelled() is true only if the task ended by a cancellation") {
  run([] {
    weft::task<void> was_cancelled;
    weft::task<int> absorbed;
    weft::task<int> returned;
    weft::task<void> failed;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        was_cancelled = tg.start([] { weft::sleep_forever(); });
        absorbed = tg.start([] {
          try {
            weft::sleep_forever();
          } catch (const weft::cancelled&) {
            return 2;
          }
        });
        returned = tg.start([] {
          weft::sleep(1s);
          return 1;
        });
        CHECK_FALSE(was_cancelled.cancelled());  // not done yet
        CHECK(was_cancelled.cancel());
        CHECK_FALSE(was_cancelled.cancelled());  // requested, not yet ended
        CHECK(absorbed.cancel());
        was_cancelled.wait();
        absorbed.wait();
        CHECK(was_cancelled.cancelled());
        CHECK_FALSE(absorbed.cancelled());
        CHECK(absorbed.join() == 2);
        CHECK(returned.join() == 1);
        CHECK_FALSE(returned.cancelled());
        failed = tg.start([] {
          weft::sleep(1s);
          throw std::runtime_error("failed");
        });
      });
    } catch (const weft::exception_group& g) {
      CHECK(g.count<std::runtime_error>() == 1);
    }
    CHECK(failed.done());
    CHECK_FALSE(failed.cancelled());
    CHECK_THROWS_AS(was_cancelled.join(), weft::cancelled);
  });
}

TEST_CASE("a task ended by its own cancel() is no failure of its group") {
  run([] {
    bool body_finished = false;
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([] { weft::sleep_forever(); });
      auto sibling = tg.start([] {
        weft::sleep(2s);
        return 9;
      });
      weft::sleep(1s);
      t.cancel();
      t.wait();
      CHECK(sibling.join() == 9);  // the sibling was not cancelled
      body_finished = true;
    });
    CHECK(body_finished);
    CHECK(now_s() == 2);
  });
}

// --- wait --------------------------------------------------------------------------------

TEST_CASE("wait() blocks until the task is done without unwrapping its outcome") {
  run([] {
    weft::task<int> failing;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        auto cancelled = tg.start([] { weft::sleep_forever(); });
        auto slow = tg.start([] {
          weft::sleep(2s);
          return 4;
        });
        slow.wait();
        CHECK(now_s() == 2);
        CHECK(slow.done());
        cancelled.cancel();
        CHECK_NOTHROW(cancelled.wait());
        CHECK(cancelled.cancelled());
        failing = tg.start([]() -> int {
          weft::sleep(1s);
          throw std::runtime_error("failed");
        });
      });
    } catch (const weft::exception_group&) {
    }
    CHECK(failing.done());
    CHECK_NOTHROW(failing.wait());
    CHECK_THROWS_WITH_AS(failing.join(), "failed", std::runtime_error);
  });
}

TEST_CASE("wait() on a task that is already done returns without yielding, and is still a cancel point") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([] { return 1; });  // runs to completion before start returns
      REQUIRE(t.done());

      std::vector<std::string> log;
      tg.start_soon([&] { log.push_back("other task"); });
      t.wait();
      log.push_back("after wait");
      CHECK(t.join() == 1);
      log.push_back("after join");
      weft::coro_yield();
      log.push_back("after yield");
      CHECK(log == std::vector<std::string>{"after wait", "after join", "other task", "after yield"});

      weft::cancel_scope cs;
      cs.cancel();
      bool reached = false;
      cs.run([&] {
        t.wait();
        reached = true;
      });
      CHECK_FALSE(reached);
      CHECK(cs.cancelled_caught());
    });
  });
}

TEST_CASE("wait() on a running task lets the other tasks run") {
  run([] {
    weft::testing::sequencer seq;
    std::vector<std::string> log;
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([&] { seq(1, [&] { log.push_back("task"); }); });
      tg.start_soon([&] { seq(0, [&] { log.push_back("other"); }); });
      t.wait();
      log.push_back("waiter");
      CHECK(t.done());
    });
    CHECK(log == std::vector<std::string>{"other", "task", "waiter"});
  });
}

TEST_CASE("cancelling a task's waiter does not cancel the task") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([] {
        weft::sleep(5s);
        return 7;
      });
      auto cs = weft::move_on_after(1s);
      cs.run([&] { t.wait(); });
      CHECK(cs.cancelled_caught());
      CHECK(now_s() == 1);
      CHECK_FALSE(t.done());
      CHECK(t.join() == 7);
      CHECK(now_s() == 5);
      CHECK_FALSE(t.cancelled());
    });
  });
}

// --- join ----------------------------------------------------------------------------------

TEST_CASE("join() waits and returns the task's value, as often as asked") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([] {
        weft::sleep(2s);
        return std::string("value");
      });
      CHECK(t.join() == "value");
      CHECK(now_s() == 2);
      CHECK(t.join() == "value");
      auto copy = t;
      CHECK(copy.join() == "value");

      auto v = tg.start([] { weft::sleep(1s); });
      v.join();
      CHECK(v.done());
      CHECK(now_s() == 3);
    });
  });
}

TEST_CASE("join() rethrows the task's exception, the same object on every join") {
  run([] {
    weft::task<int> t;
    const std::runtime_error* in_group = nullptr;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        t = tg.start([]() -> int {
          weft::sleep(1s);
          throw std::runtime_error("task failed");
        });
      });
    } catch (const weft::exception_group& g) {
      in_group = g.find<std::runtime_error>();
      REQUIRE(in_group != nullptr);

      const std::runtime_error* first = nullptr;
      const std::runtime_error* second = nullptr;
      try {
        t.join();
      } catch (const std::runtime_error& e) {
        first = &e;
        CHECK(std::string(e.what()) == "task failed");
      }
      try {
        t.join();
      } catch (const std::runtime_error& e) {
        second = &e;
      }
      REQUIRE(first != nullptr);
      CHECK(first == second);
      CHECK(first == in_group);
    }
    CHECK(in_group != nullptr);
  });
}

TEST_CASE("join() of a cancelled task throws weft::cancelled") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([] {
        weft::sleep_forever();
        return 1;
      });
      t.cancel();
      bool threw = false;
      try {
        t.join();
      } catch (const weft::cancelled&) {
        threw = true;
      }
      CHECK(threw);
      weft::coro_yield();  // that cancellation was the task's, not ours
    });
  });
}

TEST_CASE("cancelling a task's joiner does not cancel the task") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([] {
        weft::sleep(5s);
        return 7;
      });
      bool joined = false;
      auto cs = weft::move_on_after(1s);
      cs.run([&] {
        t.join();
        joined = true;
      });
      CHECK_FALSE(joined);
      CHECK(cs.cancelled_caught());
      CHECK(now_s() == 1);
      CHECK_FALSE(t.done());
      CHECK(t.join() == 7);
      CHECK(now_s() == 5);
      CHECK_FALSE(t.cancelled());
    });
  });
}

// --- join_or_cancel --------------------------------------------------------------------------

TEST_CASE("join_or_cancel() without a cancellation is join()") {
  run([] {
    weft::task<int> failing;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        auto t = tg.start([] {
          weft::sleep(1s);
          return 11;
        });
        CHECK(t.join_or_cancel() == 11);
        CHECK(now_s() == 1);
        failing = tg.start([]() -> int {
          weft::sleep(1s);
          throw std::runtime_error("failed");
        });
      });
    } catch (const weft::exception_group&) {
    }
    CHECK_THROWS_WITH_AS(failing.join_or_cancel(), "failed", std::runtime_error);
  });
}

TEST_CASE("cancelling join_or_cancel() cancels the task and waits for it before the cancellation propagates") {
  run([] {
    std::vector<std::pair<std::string, double>> log;
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([&] {
        try {
          weft::sleep(10s);
        } catch (const weft::cancelled& c) {
          CHECK(c.reason() == weft::cancel_reason::task_cancelled);
          weft::ignore_cancellation([] { weft::sleep(1s); });
          log.emplace_back("task cleaned up", now_s());
          throw;
        }
        return 1;
      });
      auto cs = weft::move_on_after(2s);
      cs.run([&] {
        try {
          t.join_or_cancel();
          log.emplace_back("joined", now_s());
        } catch (const weft::cancelled&) {
          log.emplace_back("joiner cancelled", now_s());
          throw;
        }
      });
      CHECK(cs.cancelled_caught());
      CHECK(t.done());
      CHECK(t.cancelled());
    });
    CHECK(log == std::vector<std::pair<std::string, double>>{{"task cleaned up", 3}, {"joiner cancelled", 3}});
  });
}

TEST_CASE("join_or_cancel() returns the value of a task that absorbed the cancellation") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([] {
        try {
          weft::sleep(10s);
          return 1;
        } catch (const weft::cancelled&) {
          return 2;
        }
      });
      int value = 0;
      auto cs = weft::move_on_after(2s);
      cs.run([&] { value = t.join_or_cancel(); });
      CHECK(value == 2);
      CHECK(cs.cancel_called());
      CHECK(now_s() == 2);
      CHECK(t.done());
      CHECK_FALSE(t.cancelled());
    });
  });
}

// --- resources -------------------------------------------------------------------------------

TEST_CASE("a task can ask for its own stack size") {
  auto clock = std::make_shared<weft::testing::manual_clock>(weft::time_point{}, true);
  weft::run_options options;
  options.clock = clock;
  options.stack_size = 32 * 1024;
  options.stacks = weft::stack_kind::guarded;  // an overflow faults at once
  const auto depth = weft::run(options, [] {
    std::uintptr_t span = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start(weft::task_options{.name = "big", .stack_size = 1024 * 1024}, [&] {
        char top = 0;
        volatile char buffer[512 * 1024];
        for (std::size_t i = 0; i < sizeof(buffer); i += 4096) buffer[i] = static_cast<char>(i / 4096 + 1);
        buffer[sizeof(buffer) - 1] = 1;
        span = reinterpret_cast<std::uintptr_t>(&top) - reinterpret_cast<std::uintptr_t>(&buffer[0]);
        return static_cast<int>(buffer[4096]);
      });
      CHECK(t.join() == 2);
      CHECK(t.info().name == "big");
    });
    return span;
  });
  CHECK(depth >= 512 * 1024);
}

TEST_CASE("a finished task releases its function and captured state while handles remain") {
  run([] {
    auto resource = std::make_shared<int>(5);
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([held = resource] {
        weft::sleep(1s);
        return *held;
      });
      CHECK(resource.use_count() == 2);
      CHECK(t.join() == 5);
      CHECK(resource.use_count() == 1);
    });
  });
}

namespace weft_task_test {
namespace {
weft::task_info internal_linkage_worker() { return weft::get_current_task(); }
}  // namespace
}  // namespace weft_task_test

TEST_CASE("default names are computed once per function, not at every get_current_task") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      auto first = tg.start(weft_task_test::internal_linkage_worker);
      const std::string name = first.join().name;
      CHECK(name.find("internal_linkage_worker") != std::string::npos);
      const std::size_t reads = weft::detail::symbol_table_reads();
      CHECK(reads > 0);  // the name came from the ELF symbol table (internal linkage)
      for (int i = 0; i < 20; ++i) {
        auto again = tg.start(weft_task_test::internal_linkage_worker);
        CHECK(again.join().name == name);
        CHECK(again.info().name == name);
      }
      CHECK(weft::detail::symbol_table_reads() == reads);
    });
  });
}

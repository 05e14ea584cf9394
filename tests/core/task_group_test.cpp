#include "support/support.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

using namespace weft_test;

namespace {

using event_log = std::vector<std::pair<std::string, double>>;

// Sleeps `d`; if cancelled meanwhile, records `name` and the time, and rethrows.
void sleep_or_record(weft::duration d, event_log& log, const std::string& name) {
  try {
    weft::sleep(d);
  } catch (const weft::cancelled&) {
    log.emplace_back(name + " cancelled", now_s());
    throw;
  }
}

std::size_t occurrences(const event_log& log, const std::string& what) {
  return static_cast<std::size_t>(
      std::count_if(log.begin(), log.end(), [&](const auto& entry) { return entry.first == what; }));
}

}  // namespace

// --- waiting for children --------------------------------------------------------

TEST_CASE("a task group waits for every child before its block ends") {
  run([] {
    std::vector<double> finished;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int seconds : {3, 1, 2}) {
        tg.start_soon([&finished, seconds] {
          weft::sleep(weft::duration(seconds));
          finished.push_back(now_s());
        });
      }
      CHECK(tg.running() == 3);
    });
    CHECK(now_s() == 3);
    CHECK(finished == std::vector<double>{1, 2, 3});
  });
}

TEST_CASE("children started by a child join the same group and are waited for") {
  run([] {
    event_log log;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        weft::sleep(1s);
        tg.start_soon([&] {
          weft::sleep(3s);
          log.emplace_back("grandchild", now_s());
        });
        CHECK(tg.running() == 2);
        log.emplace_back("child", now_s());
      });
      weft::sleep(2s);
      log.emplace_back("body", now_s());
    });
    log.emplace_back("group", now_s());
    CHECK(log == event_log{{"child", 1}, {"body", 2}, {"grandchild", 4}, {"group", 4}});
  });
}

TEST_CASE("a task group accepts new children while it waits for the others at the end of its block") {
  run([] {
    event_log log;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        weft::sleep(1s);
        tg.start_soon([&] {
          weft::sleep(2s);
          log.emplace_back("late child", now_s());
        });
      });
      log.emplace_back("body", now_s());
    });
    log.emplace_back("group", now_s());
    CHECK(log == event_log{{"body", 0}, {"late child", 3}, {"group", 3}});
  });
}

TEST_CASE("start_soon and start pass their arguments to the function") {
  run([] {
    std::vector<std::string> seen;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&seen](int n, std::string s) { seen.push_back(s + std::to_string(n)); }, 1, std::string("a"));
      auto t = tg.start([](int a, int b) { return a * b; }, 6, 7);
      CHECK(t.join() == 42);
    });
    CHECK(seen == std::vector<std::string>{"a1"});
  });
}

// --- failures --------------------------------------------------------------------

TEST_CASE("a child's failure cancels the body and the siblings, then comes out as an exception group") {
  run([] {
    event_log log;
    bool body_finished = false;
    bool caught_group = false;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([] {
          weft::sleep(1s);
          throw std::runtime_error("child failed");
        });
        tg.start_soon([&] {
          try {
            weft::sleep(10s);
          } catch (const weft::cancelled& c) {
            CHECK(c.reason() == weft::cancel_reason::task_group_failure);
            log.emplace_back("sibling cancelled", now_s());
            throw;
          }
        });
        sleep_or_record(10s, log, "body");
        body_finished = true;
      });
    } catch (const weft::exception_group& g) {
      caught_group = true;
      REQUIRE(g.size() == 1);
      REQUIRE(g.exceptions().size() == 1);
      CHECK(message_of(g.exceptions()[0]) == "child failed");
      REQUIRE(g.find<std::runtime_error>() != nullptr);
      CHECK(std::string(g.find<std::runtime_error>()->what()) == "child failed");
      CHECK(g.contains<std::runtime_error>());
      CHECK(g.count<std::runtime_error>() == 1);
      CHECK(g.count<std::exception>() == 1);
      CHECK_FALSE(g.contains<std::logic_error>());
      CHECK(g.find<std::logic_error>() == nullptr);
      CHECK(g.count<std::logic_error>() == 0);
    }
    CHECK(caught_group);
    CHECK_FALSE(body_finished);
    CHECK(now_s() == 1);
    CHECK(occurrences(log, "sibling cancelled") == 1);
    CHECK(occurrences(log, "body cancelled") == 1);
    for (const auto& entry : log) CHECK(entry.second == 1);
  });
}

TEST_CASE("every failure of a task group comes out together in one exception group") {
  run([] {
    bool caught_group = false;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([] {
          weft::sleep(1s);
          throw std::runtime_error("first");
        });
        tg.start_soon([] {
          try {
            weft::sleep_forever();
          } catch (const weft::cancelled&) {
            throw std::invalid_argument("cleanup failed");
          }
        });
        tg.start_soon([] {
          try {
            weft::sleep_forever();
          } catch (const weft::cancelled&) {
            throw std::runtime_error("second");
          }
        });
        tg.start_soon([] { weft::sleep_forever(); });  // ends cancelled: no failure
      });
    } catch (const weft::exception_group& g) {
      caught_group = true;
      CHECK(g.size() == 3);
      REQUIRE(g.exceptions().size() == 3);
      CHECK(message_of(g.exceptions()[0]) == "first");
      CHECK(g.count<std::runtime_error>() == 2);
      CHECK(g.count<std::invalid_argument>() == 1);
      CHECK(g.count<std::logic_error>() == 1);
      CHECK(g.count<std::exception>() == 3);
      CHECK(g.count<weft::cancelled>() == 0);
      CHECK_FALSE(g.contains<weft::cancelled>());
      REQUIRE(g.find<std::logic_error>() != nullptr);
      CHECK(std::string(g.find<std::logic_error>()->what()) == "cleanup failed");
      std::vector<std::string> messages;
      for (const auto& e : g.exceptions()) messages.push_back(message_of(e));
      std::sort(messages.begin(), messages.end());
      CHECK(messages == std::vector<std::string>{"cleanup failed", "first", "second"});
    }
    CHECK(caught_group);
    CHECK(now_s() == 1);
  });
}

TEST_CASE("a body's failure and a child's failure come out together in one exception group") {
  run([] {
    bool caught_group = false;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([] {
          weft::sleep(1s);
          throw std::runtime_error("child");
        });
        try {
          weft::sleep_forever();
        } catch (const weft::cancelled&) {
          throw std::domain_error("body");
        }
      });
    } catch (const weft::exception_group& g) {
      caught_group = true;
      CHECK(g.size() == 2);
      CHECK(g.count<std::runtime_error>() == 1);
      CHECK(g.count<std::domain_error>() == 1);
      REQUIRE(g.find<std::domain_error>() != nullptr);
      CHECK(std::string(g.find<std::domain_error>()->what()) == "body");
    }
    CHECK(caught_group);
    CHECK(now_s() == 1);
  });
}

TEST_CASE("a lone exception from the body comes out bare, and the children are cancelled") {
  run([] {
    event_log log;
    bool caught_bare = false;
    bool caught_group = false;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] { sleep_or_record(10s, log, "child"); });
        tg.start_soon([&] { sleep_or_record(10s, log, "other child"); });
        weft::sleep(1s);
        throw std::runtime_error("body failed");
      });
    } catch (const std::runtime_error& e) {
      caught_bare = true;
      CHECK(std::string(e.what()) == "body failed");
    } catch (const weft::exception_group&) {
      caught_group = true;
    }
    CHECK(caught_bare);
    CHECK_FALSE(caught_group);
    CHECK(now_s() == 1);
    CHECK(occurrences(log, "child cancelled") == 1);
    CHECK(occurrences(log, "other child cancelled") == 1);
  });
}

TEST_CASE("when only cancellations happened, a single weft::cancelled propagates out of the group") {
  run([] {
    event_log log;
    int cancelled_out = 0;
    int groups_out = 0;
    auto cs = weft::move_on_after(1s);
    cs.run([&] {
      try {
        weft::open_task_group([&](weft::task_group& tg) {
          tg.start_soon([&] { sleep_or_record(10s, log, "a"); });
          tg.start_soon([&] { sleep_or_record(10s, log, "b"); });
          sleep_or_record(10s, log, "body");
        });
      } catch (const weft::cancelled& c) {
        ++cancelled_out;
        CHECK(c.reason() == weft::cancel_reason::deadline);
        throw;
      } catch (const weft::exception_group&) {
        ++groups_out;
        throw;
      }
    });
    CHECK(cancelled_out == 1);
    CHECK(groups_out == 0);
    CHECK(cs.cancelled_caught());
    CHECK(now_s() == 1);
    CHECK(log.size() == 3);
    weft::coro_yield();  // nothing is left pending
  });
}

// --- cancelling the group ------------------------------------------------------------

TEST_CASE("cancel() cancels the body and every child, and the group catches that cancellation itself") {
  run([] {
    int children_cancelled = 0;
    bool body_cancelled = false;
    bool body_finished = false;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 3; ++i) {
        tg.start_soon([&] {
          try {
            weft::sleep_forever();
          } catch (const weft::cancelled& c) {
            CHECK(c.reason() == weft::cancel_reason::explicit_request);
            ++children_cancelled;
            throw;
          }
        });
      }
      weft::sleep(1s);
      CHECK_FALSE(tg.cancel_called());
      tg.cancel();
      CHECK(tg.cancel_called());
      try {
        weft::coro_yield();
      } catch (const weft::cancelled&) {
        body_cancelled = true;
        throw;
      }
      body_finished = true;
    });
    CHECK(body_cancelled);
    CHECK_FALSE(body_finished);
    CHECK(children_cancelled == 3);
    CHECK(now_s() == 1);
    weft::coro_yield();  // the cancellation did not leak out of the group
  });
}

TEST_CASE("a child can cancel its own group while the group waits at the end of its block") {
  run([] {
    event_log log;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { sleep_or_record(100s, log, "sleeper"); });
      tg.start_soon([&] {
        weft::sleep(2s);
        tg.cancel();
      });
    });
    CHECK(now_s() == 2);
    CHECK(log == event_log{{"sleeper cancelled", 2}});
  });
}

// --- misuse ------------------------------------------------------------------------

TEST_CASE("start_soon and start on a group that was never entered are logic errors and the function never runs") {
  run([] {
    bool ran = false;
    weft::task_group tg;
    CHECK_THROWS_WITH_AS(tg.start_soon([&] { ran = true; }), doctest::Contains("entered"), std::logic_error);
    CHECK_THROWS_AS(tg.start([&] { ran = true; }), std::logic_error);
    CHECK(tg.running() == 0);
    weft::sleep(1s);
    CHECK_FALSE(ran);
  });
}

TEST_CASE("start_soon and start on a group that has exited are logic errors and the function never runs") {
  run([] {
    bool ran = false;
    bool child_ran = false;
    weft::task_group tg;
    tg.enter();
    tg.start_soon([&] { child_ran = true; });
    CHECK(tg.exit(nullptr) == nullptr);
    CHECK(child_ran);
    CHECK_THROWS_WITH_AS(tg.start_soon([&] { ran = true; }), doctest::Contains("exited"), std::logic_error);
    CHECK_THROWS_AS(tg.start([&] { ran = true; }), std::logic_error);
    CHECK(tg.running() == 0);
    weft::sleep(1s);
    CHECK_FALSE(ran);
  });
}

TEST_CASE("the low-level enter and exit protocol waits for the children and returns what must propagate") {
  run([] {
    {
      weft::task_group tg;
      tg.enter();
      CHECK_THROWS_AS(tg.enter(), std::logic_error);
      tg.start_soon([] {
        weft::sleep(1s);
        throw std::runtime_error("child");
      });
      std::exception_ptr out = tg.exit(nullptr);
      CHECK(now_s() == 1);
      REQUIRE(out != nullptr);
      try {
        std::rethrow_exception(out);
      } catch (const weft::exception_group& g) {
        CHECK(g.count<std::runtime_error>() == 1);
      } catch (...) {
        FAIL_CHECK("exit did not return an exception group");
      }
    }
    {
      weft::task_group tg;
      tg.enter();
      bool child_cancelled = false;
      tg.start_soon([&] {
        try {
          weft::sleep_forever();
        } catch (const weft::cancelled&) {
          child_cancelled = true;
          throw;
        }
      });
      auto body_error = std::make_exception_ptr(std::runtime_error("body"));
      std::exception_ptr out = tg.exit(body_error);
      CHECK(out == body_error);  // the body's exception, bare
      CHECK(child_cancelled);
      CHECK(now_s() == 1);
    }
  });
}

// --- start and start_soon ---------------------------------------------------------------

TEST_CASE("start_soon returns before the child runs") {
  run([] {
    std::vector<std::string> log;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { log.push_back("child runs"); });
      log.push_back("start_soon returned");
    });
    CHECK(log == std::vector<std::string>{"start_soon returned", "child runs"});
  });
}

TEST_CASE("start returns a handle once the child is running, after the child ran until its first block") {
  run([] {
    std::vector<std::string> log;
    weft::open_task_group([&](weft::task_group& tg) {
      auto t = tg.start([&] {
        log.push_back("child begins");
        weft::sleep(1s);
        log.push_back("child ends");
        return 5;
      });
      log.push_back("start returned");
      CHECK(now_s() == 0);
      CHECK_FALSE(t.done());
      CHECK(t.join() == 5);
      CHECK(now_s() == 1);
    });
    CHECK(log == std::vector<std::string>{"child begins", "start returned", "child ends"});
  });
}

TEST_CASE("start in a caller that is already cancelled never creates the child") {
  run([] {
    bool entered = false;
    bool returned = false;
    weft::open_task_group([&](weft::task_group& tg) {
      weft::cancel_scope cs;
      cs.cancel();
      const auto objects_before = weft::testing::live_task_objects();
      const auto stacks_before = weft::testing::live_stacks();
      cs.run([&] {
        tg.start([&] { entered = true; });
        returned = true;
      });
      CHECK(cs.cancelled_caught());
      CHECK(tg.running() == 0);
      CHECK(weft::testing::live_task_objects() == objects_before);
      CHECK(weft::testing::live_stacks() == stacks_before);
    });
    CHECK_FALSE(entered);
    CHECK_FALSE(returned);
  });
}

TEST_CASE("a caller cancelled while start waits cancels the child and joins it before the cancellation propagates") {
  run([] {
    event_log log;
    weft::open_task_group([&](weft::task_group& tg) {
      weft::cancel_scope cs;
      // Scheduled before the child: runs while start() waits for the child.
      tg.start_soon([&] {
        log.emplace_back("canceller", now_s());
        cs.cancel();
      });
      cs.run([&] {
        try {
          tg.start([&] {
            log.emplace_back("child begins", now_s());
            try {
              weft::sleep_forever();
            } catch (const weft::cancelled& c) {
              CHECK(c.reason() == weft::cancel_reason::task_cancelled);
              weft::ignore_cancellation([] { weft::sleep(2s); });
              log.emplace_back("child cleaned up", now_s());
              throw;
            }
          });
          log.emplace_back("start returned", now_s());
        } catch (const weft::cancelled&) {
          log.emplace_back("start cancelled", now_s());
          throw;
        }
      });
      CHECK(cs.cancelled_caught());
      CHECK(tg.running() == 0);
    });
    CHECK(log == event_log{{"canceller", 0}, {"child begins", 0}, {"child cleaned up", 2}, {"start cancelled", 2}});
  });
}

// --- gather -------------------------------------------------------------------------

TEST_CASE("gather with no functions returns an empty tuple") {
  run([] {
    auto result = weft::gather();
    static_assert(std::is_same_v<decltype(result), std::tuple<>>);
    CHECK(now_s() == 0);
  });
}

TEST_CASE("gather runs the functions concurrently and returns their results in argument order") {
  run([] {
    std::vector<int> finish_order;
    auto [a, b, c] = weft::gather(
        [&] {
          weft::sleep(3s);
          finish_order.push_back(1);
          return 1;
        },
        [&] {
          weft::sleep(1s);
          finish_order.push_back(2);
          return std::string("two");
        },
        [&] {
          weft::sleep(2s);
          finish_order.push_back(3);
        });
    static_assert(std::is_same_v<decltype(a), int>);
    static_assert(std::is_same_v<decltype(b), std::string>);
    static_assert(std::is_same_v<decltype(c), std::monostate>);
    CHECK(a == 1);
    CHECK(b == "two");
    CHECK(now_s() == 3);  // concurrently: the longest, not the sum
    CHECK(finish_order == std::vector<int>{2, 3, 1});
  });
}

TEST_CASE("gather: any failure cancels the others and every failure comes out in an exception group") {
  run([] {
    event_log log;
    bool caught_group = false;
    try {
      weft::gather(
          [] {
            weft::sleep(1s);
            throw std::runtime_error("first");
            return 1;
          },
          [&] {
            try {
              weft::sleep(10s);
            } catch (const weft::cancelled&) {
              throw std::logic_error("second");
            }
          },
          [&] {
            sleep_or_record(10s, log, "third");
            return std::string("never");
          });
    } catch (const weft::exception_group& g) {
      caught_group = true;
      CHECK(g.size() == 2);
      CHECK(g.count<std::runtime_error>() == 1);
      CHECK(g.count<std::logic_error>() == 1);
      REQUIRE(g.find<std::runtime_error>() != nullptr);
      CHECK(std::string(g.find<std::runtime_error>()->what()) == "first");
    }
    CHECK(caught_group);
    CHECK(now_s() == 1);
    CHECK(log == event_log{{"third cancelled", 1}});
  });
}

TEST_CASE("gather over a vector of functions returns their results in order") {
  run([] {
    std::vector<std::function<int()>> fns;
    for (int i = 0; i < 4; ++i) {
      fns.push_back([i] {
        weft::sleep(weft::duration(4 - i));
        return i * 10;
      });
    }
    CHECK(weft::gather(fns) == std::vector<int>{0, 10, 20, 30});
    CHECK(now_s() == 4);

    int calls = 0;
    std::vector<std::function<void()>> voids(3, [&calls] { ++calls; });
    auto none = weft::gather(voids);
    static_assert(std::is_same_v<decltype(none), std::vector<std::monostate>>);
    CHECK(none.size() == 3);
    CHECK(calls == 3);

    std::vector<std::function<int()>> empty;
    CHECK(weft::gather(empty).empty());
  });
}

TEST_CASE("gather over a vector: a failure cancels the others and comes out in an exception group") {
  run([] {
    event_log log;
    std::vector<std::function<int()>> fns;
    fns.push_back([&] {
      sleep_or_record(10s, log, "slow");
      return 0;
    });
    fns.push_back([]() -> int {
      weft::sleep(2s);
      throw std::runtime_error("failed");
    });
    bool caught_group = false;
    try {
      weft::gather(fns);
    } catch (const weft::exception_group& g) {
      caught_group = true;
      CHECK(g.size() == 1);
      CHECK(g.count<std::runtime_error>() == 1);
    }
    CHECK(caught_group);
    CHECK(now_s() == 2);
    CHECK(log == event_log{{"slow cancelled", 2}});
  });
}

// --- nesting and outer cancellation ------------------------------------------------------

TEST_CASE("nested task groups each wait for their own children") {
  run([] {
    event_log log;
    weft::open_task_group([&](weft::task_group& outer) {
      outer.start_soon([&] {
        weft::open_task_group([&](weft::task_group& inner) {
          inner.start_soon([&] {
            weft::sleep(2s);
            log.emplace_back("inner child", now_s());
          });
        });
        log.emplace_back("inner group", now_s());
      });
      weft::open_task_group([&](weft::task_group& inner) {
        inner.start_soon([&] {
          weft::sleep(1s);
          log.emplace_back("body's inner child", now_s());
        });
      });
      log.emplace_back("body's inner group", now_s());
    });
    log.emplace_back("outer group", now_s());
    CHECK(log == event_log{{"body's inner child", 1},
                           {"body's inner group", 1},
                           {"inner child", 2},
                           {"inner group", 2},
                           {"outer group", 2}});
  });
}

TEST_CASE("cancelling an outer group cancels the children of a nested group") {
  run([] {
    event_log log;
    weft::open_task_group([&](weft::task_group& outer) {
      outer.start_soon([&] {
        weft::open_task_group([&](weft::task_group& inner) {
          inner.start_soon([&] {
            try {
              weft::sleep_forever();
            } catch (const weft::cancelled& c) {
              CHECK(c.reason() == weft::cancel_reason::explicit_request);
              log.emplace_back("inner child cancelled", now_s());
              throw;
            }
          });
          sleep_or_record(100s, log, "inner body");
        });
        log.emplace_back("after inner group", now_s());
      });
      weft::sleep(1s);
      outer.cancel();
    });
    CHECK(now_s() == 1);
    CHECK(occurrences(log, "inner child cancelled") == 1);
    CHECK(occurrences(log, "inner body cancelled") == 1);
    CHECK(occurrences(log, "after inner group") == 0);
  });
}

TEST_CASE("a failure inside a nested group comes out as an exception group nested in the outer one") {
  run([] {
    bool caught_group = false;
    try {
      weft::open_task_group([&](weft::task_group& outer) {
        outer.start_soon([] {
          weft::open_task_group([](weft::task_group& inner) {
            inner.start_soon([] {
              weft::sleep(1s);
              throw std::runtime_error("deep");
            });
          });
        });
        weft::sleep_forever();
      });
    } catch (const weft::exception_group& g) {
      caught_group = true;
      CHECK(g.size() == 1);
      CHECK(g.count<weft::exception_group>() == 1);
      CHECK(g.count<std::runtime_error>() == 0);  // not directly in the outer group
      CHECK(g.contains<std::runtime_error>());    // but found in the nested one
      REQUIRE(g.find<std::runtime_error>() != nullptr);
      CHECK(std::string(g.find<std::runtime_error>()->what()) == "deep");
    }
    CHECK(caught_group);
    CHECK(now_s() == 1);
  });
}

TEST_CASE("an exception group thrown by the body of a group comes out as it is, not wrapped again") {
  run([] {
    bool caught_group = false;
    try {
      weft::open_task_group([](weft::task_group&) {
        weft::open_task_group([](weft::task_group& inner) {
          inner.start_soon([] { throw std::runtime_error("inner"); });
        });
      });
    } catch (const weft::exception_group& g) {
      caught_group = true;
      CHECK(g.size() == 1);
      CHECK(g.count<std::runtime_error>() == 1);
      CHECK(g.count<weft::exception_group>() == 0);
    }
    CHECK(caught_group);
  });
}

TEST_CASE("an outer cancel scope cancels the children inside a task group") {
  run([] {
    int cancelled = 0;
    auto cs = weft::move_on_after(2s);
    cs.run([&] {
      weft::open_task_group([&](weft::task_group& tg) {
        for (int i = 0; i < 3; ++i) {
          tg.start_soon([&] {
            try {
              weft::sleep(10s);
            } catch (const weft::cancelled& c) {
              CHECK(c.reason() == weft::cancel_reason::deadline);
              ++cancelled;
              throw;
            }
          });
        }
      });
    });
    CHECK(cs.cancelled_caught());
    CHECK(cancelled == 3);
    CHECK(now_s() == 2);
  });
}

TEST_CASE("running() counts the children that have not finished yet") {
  run([] {
    weft::open_task_group([&](weft::task_group& tg) {
      CHECK(tg.running() == 0);
      for (int seconds : {1, 2, 3}) tg.start_soon([seconds] { weft::sleep(weft::duration(seconds)); });
      weft::testing::wait_all_tasks_blocked();
      CHECK(tg.running() == 3);
      weft::sleep(1.5s);
      CHECK(tg.running() == 2);
      weft::sleep(1s);
      CHECK(tg.running() == 1);
    });
    CHECK(now_s() == 3);
  });
}

// --- where start_soon puts the task object ---------------------------------------------
// A start_soon task has no handle: a small task object lives at the top of its
// own stack, a large or over-aligned one on the heap. Either way the function,
// its arguments and its captures behave the same.

namespace {
struct throws_when_copied {
  int* copies_tried;
  throws_when_copied(int* c) : copies_tried(c) {}
  throws_when_copied(const throws_when_copied& o) : copies_tried(o.copies_tried) {
    ++*copies_tried;
    throw std::runtime_error("copy failed");
  }
  void operator()() const {}
};

struct destruction_counter {
  int* destroyed;
  explicit destruction_counter(int* d) : destroyed(d) {}
  destruction_counter(destruction_counter&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)) {}
  ~destruction_counter() {
    if (destroyed != nullptr) ++*destroyed;
  }
};
}  // namespace

TEST_CASE("start_soon: a function whose copy throws throws from start_soon and leaves nothing behind") {
  run([] {
    int copies_tried = 0;
    int ran = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      const throws_when_copied fn(&copies_tried);
      CHECK_THROWS_WITH_AS(tg.start_soon(fn), "copy failed", std::runtime_error);
      CHECK(copies_tried == 1);
      CHECK(tg.running() == 0);
      // The group still works.
      tg.start_soon([&] { ++ran; });
      CHECK(tg.running() == 1);
    });
    CHECK(ran == 1);
  });
}

TEST_CASE("start_soon: small, large and over-aligned task objects all run and release their captures when done") {
  run([] {
    int destroyed = 0;
    std::vector<std::string> seen;
    struct alignas(64) aligned_int {
      int v;
    };
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&seen, c = destruction_counter(&destroyed)] {
        weft::sleep(1s);
        seen.push_back("small");
      });
      std::array<char, 4096> big{};
      big[4095] = 'x';
      tg.start_soon([&seen, big, c = destruction_counter(&destroyed)] {
        weft::sleep(2s);
        seen.push_back(std::string("large ") + big[4095]);
      });
      const aligned_int a{7};
      tg.start_soon([&seen, a, c = destruction_counter(&destroyed)] {
        CHECK(reinterpret_cast<std::uintptr_t>(&a) % 64 == 0);
        weft::sleep(3s);
        seen.push_back("aligned " + std::to_string(a.v));
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK(weft::testing::live_stacks() >= 3);
      CHECK(destroyed == 0);
      weft::sleep(1.5s);
      CHECK(destroyed == 1);  // the first task ended: its captures are gone
    });
    CHECK(destroyed == 3);
    CHECK(seen == std::vector<std::string>{"small", "large x", "aligned 7"});
  });
}

TEST_CASE("start_soon: a task whose function throws still reaches its group, and its object goes with its stack") {
  run([] {
    CHECK_THROWS_AS(weft::open_task_group([&](weft::task_group& tg) {
                      for (int i = 0; i < 100; ++i) tg.start_soon([] { weft::sleep(1s); });
                      tg.start_soon([] { throw std::runtime_error("child failed"); });
                    }),
                    weft::exception_group);
  });
}

TEST_CASE("a failure the body joined and let through is in the exception group once") {
  run([] {
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        auto child = tg.start([] {
          weft::sleep(1s);
          throw std::runtime_error("child failed");
        });
        child.join();  // rethrows the child's exception, which the body lets through
      });
      FAIL("no exception");
    } catch (const weft::exception_group& g) {
      REQUIRE(g.size() == 1);
      CHECK_THROWS_WITH(std::rethrow_exception(g.exceptions()[0]), "child failed");
    }
  });
}

TEST_CASE("a failure a sibling joined and let through is in the exception group once") {
  run([] {
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        auto failing = tg.start([] {
          weft::sleep(1s);
          throw std::runtime_error("first failed");
        });
        tg.start_soon([failing] { failing.join(); });
      });
      FAIL("no exception");
    } catch (const weft::exception_group& g) {
      REQUIRE(g.size() == 1);
      CHECK_THROWS_WITH(std::rethrow_exception(g.exceptions()[0]), "first failed");
    }
  });
}

#include "support/support.hpp"

#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

using namespace weft_test;

namespace {


// Runs a checkpoint and returns the reason of the `cancelled` it throws, or
// nullopt if it did not throw.
std::optional<weft::cancel_reason> reason_at_checkpoint() {
  try {
    weft::coro_yield();
  } catch (const weft::cancelled& c) {
    return c.reason();
  }
  return std::nullopt;
}

}  // namespace

// --- factories ---------------------------------------------------------------------

TEST_CASE("a new cancel scope has no deadline, is not cancelled and caught nothing") {
  run([] {
    weft::cancel_scope plain;
    CHECK(plain.deadline() == weft::inf_time);
    CHECK_FALSE(plain.cancel_called());
    CHECK_FALSE(plain.cancelled_caught());
    CHECK_FALSE(plain.shield());

    weft::cancel_scope opened = weft::open_cancel_scope();
    CHECK(opened.deadline() == weft::inf_time);
    CHECK_FALSE(opened.cancel_called());
    CHECK_FALSE(opened.cancelled_caught());

    // A scope that is never cancelled runs its body to the end.
    bool finished = false;
    opened.run([&] {
      weft::sleep(3s);
      finished = true;
    });
    CHECK(finished);
    CHECK_FALSE(opened.cancel_called());
    CHECK_FALSE(opened.cancelled_caught());
    CHECK(now_s() == 3);
  });
}

TEST_CASE("open_cancel_scope with a deadline cancels the body at that deadline") {
  run([] {
    weft::cancel_scope scope = weft::open_cancel_scope(at(5));
    CHECK(scope.deadline() == at(5));
    bool after = false;
    scope.run([&] {
      weft::sleep(10s);
      after = true;
    });
    CHECK_FALSE(after);
    CHECK(scope.cancel_called());
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 5);
  });
}

TEST_CASE("move_on_after fixes the deadline when the scope is created, not when it is entered") {
  run([] {
    weft::sleep(1s);
    weft::cancel_scope scope = weft::move_on_after(10s);
    CHECK(scope.deadline() == at(11));
    weft::sleep(4s);  // not entered yet: the deadline does not move
    CHECK(scope.deadline() == at(11));
    scope.run([] { weft::sleep_forever(); });
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 11);
  });
}

TEST_CASE("move_on_at cancels the body at the absolute deadline and the scope returns normally") {
  run([] {
    weft::sleep(2s);
    weft::cancel_scope scope = weft::move_on_at(at(5));
    CHECK(scope.deadline() == at(5));
    bool after = false;
    scope.run([&] {
      weft::sleep(10s);
      after = true;
    });
    CHECK_FALSE(after);
    CHECK(scope.cancel_called());
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 5);
  });
}

TEST_CASE("the scope factories reject negative and NaN delays and NaN deadlines") {
  run([] {
    CHECK_THROWS_AS(weft::move_on_after(-1s), std::invalid_argument);
    CHECK_THROWS_AS(weft::move_on_after(weft::duration(nan_seconds)), std::invalid_argument);
    CHECK_THROWS_AS(weft::move_on_at(at(nan_seconds)), std::invalid_argument);
    CHECK_THROWS_AS(weft::open_cancel_scope(at(nan_seconds)), std::invalid_argument);
    CHECK_THROWS_AS(weft::cancel_scope(at(nan_seconds)), std::invalid_argument);
    bool ran = false;
    CHECK_THROWS_AS(weft::timeout(-1s, [&] { ran = true; }), std::invalid_argument);
    CHECK_THROWS_AS(weft::timeout(weft::duration(nan_seconds), [&] { ran = true; }), std::invalid_argument);
    CHECK_THROWS_AS(weft::timeout_at(at(nan_seconds), [&] { ran = true; }), std::invalid_argument);
    CHECK_FALSE(ran);
    // A zero delay is allowed.
    weft::cancel_scope zero = weft::move_on_after(0s);
    CHECK(zero.deadline() == at(0));
  });
}

TEST_CASE("cancel_scope::run returns the body's value, or nothing when the scope caught its cancellation") {
  run([] {
    weft::cancel_scope kept;
    std::optional<int> value = kept.run([] { return 42; });
    REQUIRE(value.has_value());
    CHECK(*value == 42);

    // The body may take the scope itself.
    weft::cancel_scope self;
    std::optional<std::string> cancelled_value = self.run([](weft::cancel_scope& s) {
      s.cancel();
      weft::coro_yield();
      return std::string("unreachable");
    });
    CHECK_FALSE(cancelled_value.has_value());
    CHECK(self.cancelled_caught());
  });
}

TEST_CASE("timeout raises timeout_error when its deadline ends the body") {
  run([] {
    bool after = false;
    CHECK_THROWS_AS(weft::timeout(2s,
                                  [&] {
                                    weft::sleep(1s);
                                    weft::sleep(5s);
                                    after = true;
                                  }),
                    weft::timeout_error);
    CHECK_FALSE(after);
    CHECK(now_s() == 2);
  });
}

TEST_CASE("timeout_at raises timeout_error at the absolute deadline") {
  run([] {
    weft::sleep(1s);
    CHECK_THROWS_AS(weft::timeout_at(at(4), [] { weft::sleep_forever(); }), weft::timeout_error);
    CHECK(now_s() == 4);
    // A deadline already passed: the first checkpoint inside ends the body.
    bool reached = false;
    CHECK_THROWS_AS(weft::timeout_at(at(2),
                                     [&] {
                                       reached = true;
                                       weft::coro_yield();
                                     }),
                    weft::timeout_error);
    CHECK(reached);
    CHECK(now_s() == 4);
  });
}

TEST_CASE("timeout returns the body's value and raises nothing when the deadline is not reached") {
  run([] {
    int value = weft::timeout(5s, [] {
      weft::sleep(3s);
      return 7;
    });
    CHECK(value == 7);
    CHECK(now_s() == 3);
    std::string text = weft::timeout_at(at(10), [] { return std::string("in time"); });
    CHECK(text == "in time");
    CHECK_NOTHROW(weft::timeout(1s, [] { weft::sleep(0.5s); }));
    // Nothing left armed: sleeping past the old deadlines is uneventful.
    weft::sleep(20s);
    CHECK(now_s() == 23.5);
  });
}

TEST_CASE("timeout lets other exceptions through unchanged and then raises no timeout_error") {
  run([] {
    // An exception before the deadline.
    CHECK_THROWS_WITH_AS(weft::timeout(5s, [] { throw std::runtime_error("early"); }), "early", std::runtime_error);
    // An exception that replaces the cancellation after the deadline.
    CHECK_THROWS_WITH_AS(weft::timeout(1s,
                                       [] {
                                         try {
                                           weft::sleep_forever();
                                         } catch (const weft::cancelled&) {
                                           throw std::runtime_error("cleanup failed");
                                         }
                                       }),
                         "cleanup failed", std::runtime_error);
    CHECK(now_s() == 1);
  });
}

TEST_CASE("a timeout inside a cancelled outer scope lets the outer cancellation through without timeout_error") {
  run([] {
    weft::cancel_scope outer = weft::move_on_after(1s);
    bool timeout_raised = false;
    outer.run([&] {
      try {
        weft::timeout(5s, [] { weft::sleep_forever(); });
      } catch (const weft::timeout_error&) {
        timeout_raised = true;
      }
    });
    CHECK_FALSE(timeout_raised);
    CHECK(outer.cancelled_caught());
    CHECK(now_s() == 1);

    // Both deadlines at the same time: the outer scope wins.
    weft::cancel_scope outer2 = weft::move_on_after(1s);
    outer2.run([&] {
      try {
        weft::timeout(1s, [] { weft::sleep_forever(); });
      } catch (const weft::timeout_error&) {
        timeout_raised = true;
      }
    });
    CHECK_FALSE(timeout_raised);
    CHECK(outer2.cancelled_caught());
    CHECK(now_s() == 2);
  });
}

// --- members -----------------------------------------------------------------------

TEST_CASE("cancel is idempotent") {
  run([] {
    weft::cancel_scope scope;
    int thrown = 0;
    scope.run([&] {
      scope.cancel();
      scope.cancel();
      CHECK(scope.cancel_called());
      try {
        weft::coro_yield();
      } catch (const weft::cancelled& c) {
        ++thrown;
        CHECK(c.reason() == weft::cancel_reason::explicit_request);
      }
      scope.cancel();
      weft::coro_yield();
    });
    CHECK(thrown == 1);
    CHECK(scope.cancel_called());
    CHECK(scope.cancelled_caught());

    // cancel() after the deadline fired keeps the deadline as the reason.
    weft::cancel_scope expired = weft::move_on_after(1s);
    std::optional<weft::cancel_reason> reason;
    expired.run([&] {
      try {
        weft::sleep_forever();
      } catch (const weft::cancelled&) {  // swallowed: the next checkpoint throws again
      }
      expired.cancel();
      reason = reason_at_checkpoint();
      weft::coro_yield();
    });
    REQUIRE(reason.has_value());
    CHECK(*reason == weft::cancel_reason::deadline);
    CHECK(expired.cancelled_caught());
    CHECK(now_s() == 1);
  });
}

TEST_CASE("cancel disarms the deadline: the deadline passing later changes nothing") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(1s);
    std::optional<weft::cancel_reason> reason;
    scope.run([&] {
      scope.cancel();
      weft::ignore_cancellation([] { weft::sleep(3s); });  // past the deadline
      reason = reason_at_checkpoint();
      weft::coro_yield();
    });
    REQUIRE(reason.has_value());
    CHECK(*reason == weft::cancel_reason::explicit_request);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 3);

    // Cancelled before entry: the deadline is never armed.
    weft::cancel_scope early = weft::move_on_after(1s);
    early.cancel();
    early.run([&] {
      weft::ignore_cancellation([] { weft::sleep(3s); });
      reason = reason_at_checkpoint();
      weft::coro_yield();
    });
    REQUIRE(reason.has_value());
    CHECK(*reason == weft::cancel_reason::explicit_request);
    CHECK(now_s() == 6);
  });
}

TEST_CASE("deadline is inf_time without a deadline and follows reschedule") {
  run([] {
    weft::cancel_scope scope;
    CHECK(scope.deadline() == weft::inf_time);
    scope.reschedule(at(4));
    CHECK(scope.deadline() == at(4));
    scope.run([&] {
      CHECK(scope.deadline() == at(4));
      scope.reschedule(at(6));
      CHECK(scope.deadline() == at(6));
      scope.reschedule(weft::inf_time);
      CHECK(scope.deadline() == weft::inf_time);
    });
    CHECK_FALSE(scope.cancel_called());
  });
}

TEST_CASE("reschedule rejects NaN and leaves the deadline as it was") {
  run([] {
    weft::cancel_scope scope = weft::move_on_at(at(3));
    CHECK_THROWS_AS(scope.reschedule(at(nan_seconds)), std::invalid_argument);
    CHECK(scope.deadline() == at(3));
    scope.run([&] {
      CHECK_THROWS_AS(scope.reschedule(at(nan_seconds)), std::invalid_argument);
      CHECK(scope.deadline() == at(3));
      weft::sleep_forever();
    });
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 3);
  });
}

TEST_CASE("reschedule before entry sets the deadline that entry arms") {
  run([] {
    weft::cancel_scope scope;
    scope.reschedule(at(2));
    weft::sleep(1s);
    scope.run([] { weft::sleep_forever(); });
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 2);
  });
}

TEST_CASE("moving the deadline later while the scope is active delays the cancellation") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(5s);
    scope.run([&] {
      weft::sleep(1s);
      scope.reschedule(at(8));
      weft::sleep_forever();
    });
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 8);
  });
}

TEST_CASE("moving the deadline earlier while the scope is active cancels at the new time") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(10s);
    scope.run([&] {
      weft::sleep(1s);
      scope.reschedule(at(3));
      weft::sleep_forever();
    });
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 3);
  });
}

TEST_CASE("moving the deadline of an active scope into the past cancels it at once") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(10s);
    bool cancelled_at_once = false;
    std::optional<weft::cancel_reason> reason;
    scope.run([&] {
      weft::sleep(2s);
      scope.reschedule(at(1));
      cancelled_at_once = scope.cancel_called();
      reason = reason_at_checkpoint();
      weft::coro_yield();
    });
    CHECK(cancelled_at_once);
    REQUIRE(reason.has_value());
    CHECK(*reason == weft::cancel_reason::deadline);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 2);
  });
}

TEST_CASE("removing the deadline while the scope is active means it never fires") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(5s);
    bool finished = false;
    scope.run([&] {
      weft::sleep(1s);
      scope.reschedule(weft::inf_time);
      weft::sleep(10s);
      finished = true;
    });
    CHECK(finished);
    CHECK_FALSE(scope.cancel_called());
    CHECK_FALSE(scope.cancelled_caught());
    CHECK(now_s() == 11);
  });
}

// --- entry ---------------------------------------------------------------------------

TEST_CASE("a scope cancelled before entry delivers the cancellation at the first checkpoint inside") {
  run([] {
    weft::cancel_scope scope;
    scope.cancel();
    CHECK(scope.cancel_called());
    CHECK_FALSE(scope.cancelled_caught());
    CHECK_NOTHROW(weft::coro_yield());  // not entered: nothing is cancelled yet
    bool before_checkpoint = false;
    bool after_checkpoint = false;
    scope.run([&] {
      before_checkpoint = true;
      weft::coro_yield();
      after_checkpoint = true;
    });
    CHECK(before_checkpoint);
    CHECK_FALSE(after_checkpoint);
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("a deadline that passed before entry cancels the scope on entry") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(1s);
    weft::sleep(2s);  // not entered: the deadline passes harmlessly
    CHECK_FALSE(scope.cancel_called());
    bool cancelled_on_entry = false;
    std::optional<weft::cancel_reason> reason;
    scope.run([&] {
      cancelled_on_entry = scope.cancel_called();
      reason = reason_at_checkpoint();
      weft::coro_yield();
    });
    CHECK(cancelled_on_entry);
    REQUIRE(reason.has_value());
    CHECK(*reason == weft::cancel_reason::deadline);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 2);
  });
}

// --- delivery -----------------------------------------------------------------------

TEST_CASE("cancellation is delivered only at checkpoints, never asynchronously") {
  run(
      [](weft::testing::manual_clock& clock) {
        weft::cancel_scope scope = weft::move_on_after(1s);
        int steps = 0;
        scope.run([&] {
          clock.jump(5s);  // the deadline passes while the body is running
          CHECK(scope.cancel_called());
          ++steps;  // ordinary code keeps running
          (void)weft::current_time();
          weft::cancel_shielded_coro_yield();
          ++steps;
          weft::coro_yield();
          ++steps;
        });
        CHECK(steps == 2);
        CHECK(scope.cancelled_caught());
        CHECK(now_s() == 5);
      },
      false);
}

TEST_CASE("cancellation is level-triggered: every checkpoint in a cancelled scope throws again") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(1s);
    int thrown = 0;
    scope.run([&] {
      try {
        weft::sleep_forever();
      } catch (const weft::cancelled&) {
        ++thrown;
      }
      try {
        weft::coro_yield();
      } catch (const weft::cancelled&) {
        ++thrown;
      }
      try {
        weft::sleep(0s);
      } catch (const weft::cancelled&) {
        ++thrown;
      }
      try {
        weft::sleep(5s);
      } catch (const weft::cancelled&) {
        ++thrown;
      }
      try {
        weft::sleep_until(at(100));
      } catch (const weft::cancelled&) {
        ++thrown;
      }
      weft::checkpoint();
      FAIL("the last checkpoint did not throw");
    });
    CHECK(thrown == 5);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 1);
  });
}

TEST_CASE("with several cancelled scopes nested, the outermost cancelled one catches the cancellation") {
  run([] {
    weft::cancel_scope scope1;
    weft::cancel_scope scope2;
    weft::cancel_scope scope3;
    bool passed_scope3 = false;
    scope1.run([&] {
      scope2.run([&] {
        scope3.run([&] {
          scope3.cancel();
          scope2.cancel();
          weft::sleep_forever();
        });
        passed_scope3 = true;
      });
    });
    CHECK_FALSE(passed_scope3);
    CHECK(scope3.cancel_called());
    CHECK_FALSE(scope3.cancelled_caught());
    CHECK(scope2.cancel_called());
    CHECK(scope2.cancelled_caught());
    CHECK_FALSE(scope1.cancel_called());
    CHECK_FALSE(scope1.cancelled_caught());

    // The outer scope wins even when the inner deadline fired first.
    weft::cancel_scope outer = weft::move_on_after(3s);
    weft::cancel_scope inner = weft::move_on_after(1s);
    std::optional<weft::cancel_reason> reason;
    outer.run([&] {
      inner.run([&] {
        weft::ignore_cancellation([] { weft::sleep(5s); });
        outer.cancel();  // too late for the deadline: outer was cancelled at 3
        reason = reason_at_checkpoint();
        weft::coro_yield();
      });
    });
    CHECK(inner.cancel_called());
    CHECK_FALSE(inner.cancelled_caught());
    CHECK(outer.cancel_called());
    CHECK(outer.cancelled_caught());
    REQUIRE(reason.has_value());
    CHECK(*reason == weft::cancel_reason::deadline);
    CHECK(now_s() == 5);
  });
}

TEST_CASE("a cancellation that never reached a checkpoint does not leak out of its scope") {
  run([] {
    weft::cancel_scope scope;
    bool finished = false;
    scope.run([&] {
      scope.cancel();
      weft::cancel_shielded_coro_yield();
      finished = true;
    });
    CHECK(finished);
    CHECK(scope.cancel_called());
    CHECK_FALSE(scope.cancelled_caught());
    CHECK_NOTHROW(weft::coro_yield());
    CHECK_NOTHROW(weft::sleep(1s));
    CHECK(now_s() == 1);
  });
}

TEST_CASE("timeout(0) around fully shielded work raises no timeout_error") {
  run([] {
    bool finished = false;
    CHECK_NOTHROW(weft::timeout(0s, [&] {
      weft::ignore_cancellation([] { weft::sleep(1s); });
      finished = true;
    }));
    CHECK(finished);
    CHECK(now_s() == 1);
    CHECK_NOTHROW(weft::coro_yield());
    int value = weft::timeout(0s, [] { return weft::ignore_cancellation([] { return 5; }); });
    CHECK(value == 5);
  });
}

TEST_CASE("cancelled_caught is true even if the body caught the cancellation and threw a fresh cancelled") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(1s);
    bool escaped = false;
    try {
      scope.run([] {
        try {
          weft::sleep_forever();
        } catch (const weft::cancelled&) {
          throw weft::cancelled(weft::cancel_reason::explicit_request);
        }
      });
    } catch (const weft::cancelled&) {
      escaped = true;
    }
    CHECK_FALSE(escaped);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 1);
    CHECK_NOTHROW(weft::coro_yield());
  });
}

TEST_CASE("an unrelated exception thrown while cancelling propagates and the scope caught nothing") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(1s);
    CHECK_THROWS_WITH_AS(scope.run([] {
      try {
        weft::sleep_forever();
      } catch (const weft::cancelled&) {
        throw std::runtime_error("cleanup failed");
      }
    }),
                         "cleanup failed", std::runtime_error);
    CHECK(scope.cancel_called());
    CHECK_FALSE(scope.cancelled_caught());
    CHECK(now_s() == 1);
    CHECK_NOTHROW(weft::coro_yield());
  });
}

// --- misuse --------------------------------------------------------------------------

TEST_CASE("entering a cancel scope twice is a logic_error") {
  run([] {
    weft::cancel_scope scope;
    scope.enter();
    CHECK_THROWS_AS(scope.enter(), std::logic_error);
    CHECK(scope.exit(nullptr) == nullptr);
    // Done: neither enter() nor run() may enter it again.
    CHECK_THROWS_AS(scope.enter(), std::logic_error);
    bool ran = false;
    CHECK_THROWS_AS(scope.run([&] { ran = true; }), std::logic_error);
    CHECK_FALSE(ran);
  });
}

TEST_CASE("exiting a cancel scope that is not the innermost one is a logic_error") {
  run([] {
    weft::cancel_scope outer;
    weft::cancel_scope inner;
    outer.enter();
    inner.enter();
    CHECK_THROWS_AS((void)outer.exit(nullptr), std::logic_error);
    // The misuse changed nothing: the scopes still work, in the right order.
    outer.cancel();
    CHECK_THROWS_AS(weft::coro_yield(), weft::cancelled);
    std::exception_ptr e;
    try {
      weft::coro_yield();
    } catch (...) {
      e = std::current_exception();
    }
    REQUIRE(e);
    e = inner.exit(e);
    CHECK(e);  // the inner scope is not the one that was cancelled
    CHECK(outer.exit(e) == nullptr);
    CHECK(outer.cancelled_caught());
    CHECK_FALSE(inner.cancelled_caught());
    // A scope never entered cannot be exited either.
    weft::cancel_scope never;
    CHECK_THROWS_AS((void)never.exit(nullptr), std::logic_error);
  });
}

TEST_CASE("exiting a cancel scope in a task other than the one that entered it is a logic_error") {
  run([] {
    weft::cancel_scope scope;
    scope.enter();
    bool other_threw = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon(
          [&other_threw](weft::cancel_scope& s) {
            try {
              (void)s.exit(nullptr);
            } catch (const std::logic_error&) {
              other_threw = true;
            }
          },
          std::ref(scope));
    });
    CHECK(other_threw);
    // The scope is still active in its own task and exits normally there.
    scope.cancel();
    std::exception_ptr e;
    try {
      weft::coro_yield();
    } catch (...) {
      e = std::current_exception();
    }
    CHECK(scope.exit(e) == nullptr);
    CHECK(scope.cancelled_caught());
  });
}

// --- shielding -------------------------------------------------------------------------

TEST_CASE("ignore_cancellation runs its function in the current task and returns its value") {
  run([] {
    const weft::task_info me = weft::get_current_task();
    weft::task_info inside;
    int value = weft::ignore_cancellation([&] {
      inside = weft::get_current_task();
      return 11;
    });
    CHECK(value == 11);
    CHECK(inside == me);
  });
}

TEST_CASE("ignore_cancellation keeps an outside cancellation away from the shielded work") {
  run([] {
    weft::cancel_scope scope;
    bool shielded_finished = false;
    scope.run([&] {
      scope.cancel();
      weft::ignore_cancellation([&] {
        weft::coro_yield();
        weft::sleep(3s);
        weft::sleep_until(at(4));
        shielded_finished = true;
      });
      weft::coro_yield();
    });
    CHECK(shielded_finished);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 4);
  });
}

TEST_CASE("a cancellation that arrives during ignore_cancellation is delivered at the next checkpoint after it") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(1s);
    bool shielded_finished = false;
    bool after_shield = false;
    bool after_checkpoint = false;
    scope.run([&] {
      weft::ignore_cancellation([&] {
        weft::sleep(3s);
        shielded_finished = true;
      });
      after_shield = true;
      weft::coro_yield();
      after_checkpoint = true;
    });
    CHECK(shielded_finished);
    CHECK(after_shield);
    CHECK_FALSE(after_checkpoint);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 3);
  });
}

TEST_CASE("a cancel scope inside ignore_cancellation can still be cancelled") {
  run([] {
    weft::cancel_scope inner = weft::move_on_after(1s);
    weft::ignore_cancellation([&] { inner.run([] { weft::sleep_forever(); }); });
    CHECK(inner.cancelled_caught());
    CHECK(now_s() == 1);
  });
}

TEST_CASE("ignore_cancellation lets the same exception object out") {
  run([] {
    const void* thrown = nullptr;
    const void* caught = nullptr;
    try {
      weft::ignore_cancellation([&] {
        try {
          throw std::runtime_error("inside");
        } catch (const std::runtime_error& e) {
          thrown = &e;
          throw;
        }
      });
    } catch (const std::runtime_error& e) {
      caught = &e;
      CHECK(std::string(e.what()) == "inside");
    }
    REQUIRE(thrown != nullptr);
    CHECK(caught == thrown);

    // The same while an outside cancellation is pending.
    weft::cancel_scope scope;
    thrown = caught = nullptr;
    scope.run([&] {
      scope.cancel();
      try {
        weft::ignore_cancellation([&] {
          try {
            throw std::runtime_error("inside again");
          } catch (const std::runtime_error& e) {
            thrown = &e;
            throw;
          }
        });
      } catch (const std::runtime_error& e) {
        caught = &e;
      }
      weft::coro_yield();
    });
    REQUIRE(thrown != nullptr);
    CHECK(caught == thrown);
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("a cancellation that ended the shielded work is delivered once, as that same exception") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(1s);
    const void* thrown = nullptr;
    const void* caught = nullptr;
    int deliveries = 0;
    scope.run([&] {
      try {
        weft::ignore_cancellation([&] {
          weft::sleep(2s);  // the outer deadline passes meanwhile
          try {
            throw weft::cancelled(weft::cancel_reason::deadline);
          } catch (const weft::cancelled& c) {
            thrown = &c;
            throw;
          }
        });
      } catch (const weft::cancelled& c) {
        ++deliveries;
        caught = &c;
        throw;
      }
    });
    CHECK(deliveries == 1);
    REQUIRE(thrown != nullptr);
    CHECK(caught == thrown);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 2);
    CHECK_NOTHROW(weft::coro_yield());
  });
}

// --- edge cases: outer and inner scopes around shielded work --------------------------

TEST_CASE("edge case a: the outer deadline expires during a shielded sleep, then the inner scope is cancelled; the outer catches") {
  run([] {
    weft::cancel_scope outer = weft::move_on_after(1s);
    weft::cancel_scope inner;
    outer.run([&] {
      inner.run([&] {
        weft::ignore_cancellation([] { weft::sleep(2s); });
        inner.cancel();
        weft::coro_yield();
      });
    });
    CHECK(outer.cancel_called());
    CHECK(outer.cancelled_caught());
    CHECK(inner.cancel_called());
    CHECK_FALSE(inner.cancelled_caught());
    CHECK(now_s() == 2);
  });
}

TEST_CASE("edge case b: the inner deadline expires during a shield inside a longer outer scope; the outer catches later") {
  run([] {
    weft::cancel_scope outer = weft::move_on_after(5s);
    weft::cancel_scope inner = weft::move_on_after(1s);
    double inner_left_at = -1;
    outer.run([&] {
      inner.run([&] { weft::ignore_cancellation([] { weft::sleep(2s); }); });
      inner_left_at = now_s();
      weft::sleep_forever();
    });
    CHECK(inner.cancel_called());
    CHECK_FALSE(inner.cancelled_caught());
    CHECK(inner_left_at == 2);
    CHECK(outer.cancel_called());
    CHECK(outer.cancelled_caught());
    CHECK(now_s() == 5);
  });
}

TEST_CASE("edge case c: move_on_after(0) with an empty body is cancelled, catches nothing and leaks nothing") {
  run([] {
    weft::cancel_scope scope = weft::move_on_after(0s);
    scope.run([] {});
    CHECK(scope.cancel_called());
    CHECK_FALSE(scope.cancelled_caught());
    CHECK_NOTHROW(weft::coro_yield());
    CHECK_NOTHROW(weft::sleep(1s));
    CHECK(now_s() == 1);
  });
}

TEST_CASE("edge case d: cancel with no checkpoint inside is cancelled, catches nothing and leaks nothing") {
  run([] {
    weft::cancel_scope scope;
    scope.run([&] { scope.cancel(); });
    CHECK(scope.cancel_called());
    CHECK_FALSE(scope.cancelled_caught());
    CHECK_NOTHROW(weft::coro_yield());
    CHECK_NOTHROW(weft::sleep(1s));
    CHECK(now_s() == 1);
  });
}

TEST_CASE("edge case e: outer cancelled, shielded sleep, inner cancelled with no checkpoint; the outer catches") {
  run([] {
    weft::cancel_scope outer;
    weft::cancel_scope inner;
    bool inner_finished = false;
    bool after_inner = false;
    outer.run([&] {
      outer.cancel();
      weft::ignore_cancellation([] { weft::sleep(1s); });
      inner.run([&] {
        inner.cancel();
        inner_finished = true;
      });
      after_inner = true;
      weft::coro_yield();
    });
    CHECK(inner_finished);
    CHECK(after_inner);
    CHECK(inner.cancel_called());
    CHECK_FALSE(inner.cancelled_caught());
    CHECK(outer.cancelled_caught());
    CHECK(now_s() == 1);
  });
}

TEST_CASE("edge case f: inner cancelled, shielded yield, outer cancelled, shielded yield; the outer catches") {
  run([] {
    weft::cancel_scope outer;
    weft::cancel_scope inner;
    int shielded = 0;
    outer.run([&] {
      inner.run([&] {
        inner.cancel();
        weft::cancel_shielded_coro_yield();
        ++shielded;
        outer.cancel();
        weft::cancel_shielded_coro_yield();
        ++shielded;
        weft::coro_yield();
      });
    });
    CHECK(shielded == 2);
    CHECK(inner.cancel_called());
    CHECK_FALSE(inner.cancelled_caught());
    CHECK(outer.cancel_called());
    CHECK(outer.cancelled_caught());
    CHECK_NOTHROW(weft::coro_yield());
  });
}

// --- reasons and cross-task cancellation ----------------------------------------------

TEST_CASE("cancelled tells a deadline from an explicit request") {
  run([] {
    std::optional<weft::cancel_reason> reason;
    std::string what;
    weft::cancel_scope by_deadline = weft::move_on_after(1s);
    by_deadline.run([&] {
      try {
        weft::sleep_forever();
      } catch (const weft::cancelled& c) {
        reason = c.reason();
        what = c.what();
        throw;
      }
    });
    REQUIRE(reason.has_value());
    CHECK(*reason == weft::cancel_reason::deadline);
    CHECK(what == weft::to_string(weft::cancel_reason::deadline));

    reason.reset();
    weft::cancel_scope by_request;
    by_request.run([&] {
      by_request.cancel();
      try {
        weft::sleep_forever();
      } catch (const weft::cancelled& c) {
        reason = c.reason();
        what = c.what();
        throw;
      }
    });
    REQUIRE(reason.has_value());
    CHECK(*reason == weft::cancel_reason::explicit_request);
    CHECK(what == weft::to_string(weft::cancel_reason::explicit_request));
    CHECK(std::strcmp(weft::to_string(weft::cancel_reason::deadline),
                      weft::to_string(weft::cancel_reason::explicit_request)) != 0);

    // Nested: the reason is the outermost cancelled scope's.
    weft::cancel_scope outer;
    weft::cancel_scope inner = weft::move_on_after(1s);
    reason.reset();
    outer.run([&] {
      inner.run([&] {
        weft::ignore_cancellation([] { weft::sleep(2s); });
        outer.cancel();
        reason = reason_at_checkpoint();
        weft::coro_yield();
      });
    });
    REQUIRE(reason.has_value());
    CHECK(*reason == weft::cancel_reason::explicit_request);
    CHECK(outer.cancelled_caught());
    CHECK_FALSE(inner.cancelled_caught());
  });
}

TEST_CASE("cancelling a scope from another task wakes its parked task at once") {
  run([] {
    weft::cancel_scope backstop = weft::move_on_after(100s);
    weft::cancel_scope scope;
    std::optional<weft::cancel_reason> reason;
    double woke_at = -1;
    backstop.run([&] {
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          scope.run([&] {
            try {
              weft::sleep_forever();
            } catch (const weft::cancelled& c) {
              reason = c.reason();
              woke_at = now_s();
              throw;
            }
          });
        });
        tg.start_soon([&] {
          weft::testing::wait_all_tasks_blocked();
          scope.cancel();
        });
      });
    });
    CHECK_FALSE(backstop.cancel_called());
    CHECK(scope.cancelled_caught());
    REQUIRE(reason.has_value());
    CHECK(*reason == weft::cancel_reason::explicit_request);
    CHECK(woke_at == 0);
    CHECK(now_s() == 0);
  });
}

TEST_CASE("cancelling a scope wakes every task parked inside it, children of a task group included") {
  run([] {
    weft::cancel_scope backstop = weft::move_on_after(100s);
    weft::cancel_scope scope;
    int woken = 0;
    backstop.run([&] {
      scope.run([&] {
        weft::open_task_group([&](weft::task_group& tg) {
          for (int i = 0; i < 3; ++i) {
            tg.start_soon([&] {
              try {
                weft::sleep_forever();
              } catch (const weft::cancelled&) {
                ++woken;
                throw;
              }
            });
          }
          weft::testing::wait_all_tasks_blocked();
          scope.cancel();
        });
      });
    });
    CHECK(woken == 3);
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(backstop.cancel_called());
    CHECK(now_s() == 0);
  });
}

TEST_CASE("deadlines set in any order fire in time order, each at its time, and a withdrawn one never fires") {
  run([] {
    // 40 tasks: each sleeps, or waits forever in a scope with a deadline,
    // or leaves such a scope before its deadline (early, or at once without
    // a checkpoint); the delays are a permutation of 1..40 seconds, set in
    // a scrambled order.
    const int n = 40;
    std::vector<std::pair<double, int>> fired;  // (time, task)
    std::vector<weft::cancel_scope*> left;
    int withdrawn_fired = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int k = 0; k < n; ++k) {
        const int i = (k * 17) % n;  // 17 is coprime with 40
        const double d = i + 1;
        tg.start_soon([&, i, d] {
          switch (i % 4) {
            case 0:
              weft::sleep(weft::duration(d));
              fired.emplace_back(now_s(), i);
              break;
            case 1: {
              auto scope = weft::move_on_after(weft::duration(d));
              scope.run([] { weft::sleep_forever(); });
              if (scope.cancelled_caught()) fired.emplace_back(now_s(), i);
              break;
            }
            case 2: {
              auto scope = weft::move_on_after(weft::duration(d));
              scope.run([&] { weft::sleep(weft::duration(d / 2)); });
              if (scope.cancel_called()) ++withdrawn_fired;
              break;
            }
            default: {
              auto scope = weft::move_on_after(weft::duration(d));
              scope.run([] {});
              weft::sleep(weft::duration(2 * n));
              if (scope.cancel_called()) ++withdrawn_fired;
              break;
            }
          }
        });
      }
    });
    CHECK(withdrawn_fired == 0);
    REQUIRE(fired.size() == n / 2);
    for (std::size_t j = 0; j < fired.size(); ++j) {
      CHECK(fired[j].first == fired[j].second + 1);
      if (j > 0) CHECK(fired[j - 1].first < fired[j].first);
    }
  });
}

TEST_CASE("a deadline that passes while its task runs without a checkpoint cancels it at the next one") {
  run_frozen([](weft::testing::manual_clock& clock) {
    auto scope = weft::move_on_after(1s);
    bool reached = false;
    scope.run([&] {
      clock.jump(2s);  // no checkpoint since the scope was entered
      weft::coro_yield();
      reached = true;
    });
    CHECK_FALSE(reached);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 2);
  });
}

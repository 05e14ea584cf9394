#include "support/support.hpp"

#include <weft/sync/single_flight.hpp>

#include <exception>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;

namespace {

using flight_map = weft::single_flight<std::string, std::string>;

// A caller's fn: records that caller `id` ran it, takes `latency`, and
// returns a value naming the caller.
std::function<std::string()> slow_fn(std::vector<int>& ran, int id, weft::duration latency) {
  return [&ran, id, latency] {
    ran.push_back(id);
    weft::sleep(latency);
    return "from " + std::to_string(id);
  };
}

}  // namespace

TEST_CASE("concurrent calls for one key run fn once and every caller gets its value") {
  run([] {
    flight_map flights;
    std::vector<int> ran;
    std::vector<std::string> got;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 6; ++i) tg.start_soon([&, i] { got.push_back(flights.call("k", slow_fn(ran, i, 1s))); });
      weft::testing::wait_all_tasks_blocked();
      CHECK(flights.in_flight("k"));
      CHECK(flights.waiting("k") == 5);
      CHECK(flights.flights() == 1);
    });
    CHECK(ran == std::vector<int>{0});
    CHECK(got == std::vector<std::string>(6, "from 0"));
    CHECK(now_s() == 1);
    CHECK_FALSE(flights.in_flight("k"));
    CHECK(flights.flights() == 0);
  });
}

TEST_CASE("calls for different keys run concurrently and each key's callers get that key's value") {
  run([] {
    flight_map flights;
    int calls = 0;
    std::map<std::string, std::vector<std::string>> got;
    auto fetch = [&](const std::string& key) {
      got[key].push_back(flights.call(key, [&] {
        ++calls;
        weft::sleep(1s);
        return key + " value";
      }));
    };
    weft::open_task_group([&](weft::task_group& tg) {
      for (const char* key : {"a", "b", "a", "b", "c"}) tg.start_soon([&, key] { fetch(key); });
      weft::testing::wait_all_tasks_blocked();
      CHECK(flights.flights() == 3);
      CHECK(flights.waiting("a") == 1);
      CHECK(flights.waiting("b") == 1);
      CHECK(flights.waiting("c") == 0);
    });
    CHECK(calls == 3);
    CHECK(now_s() == 1);  // side by side, not one after the other
    CHECK(got["a"] == std::vector<std::string>(2, "a value"));
    CHECK(got["b"] == std::vector<std::string>(2, "b value"));
    CHECK(got["c"] == std::vector<std::string>{"c value"});
    CHECK(flights.flights() == 0);
  });
}

TEST_CASE("a call after a flight has ended runs fn again: results are not cached") {
  run([] {
    weft::single_flight<int, int> flights;
    int calls = 0;
    auto count = [&] {
      weft::sleep(1s);
      return ++calls;
    };
    CHECK(flights.call(7, count) == 1);
    CHECK(flights.call(7, count) == 2);
    std::vector<int> got;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 3; ++i) tg.start_soon([&] { got.push_back(flights.call(7, count)); });
    });
    CHECK(got == std::vector<int>{3, 3, 3});
    CHECK(flights.call(7, count) == 4);
    CHECK(calls == 4);
    CHECK(now_s() == 4);
    CHECK(flights.flights() == 0);
  });
}

TEST_CASE("a cancelled leader gets cancelled, and the first waiting caller runs its own fn for the others") {
  run([] {
    flight_map flights;
    std::vector<int> ran;
    std::map<int, std::string> got;
    bool leader_got_cancelled = false;
    weft::cancel_scope leader_scope;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        leader_scope.run([&] {
          try {
            got[0] = flights.call("k", slow_fn(ran, 0, 5s));
          } catch (const weft::cancelled&) {
            leader_got_cancelled = true;
            throw;
          }
        });
      });
      for (int i = 1; i <= 3; ++i) tg.start_soon([&, i] { got[i] = flights.call("k", slow_fn(ran, i, 5s)); });
      weft::sleep(1s);
      CHECK(flights.waiting("k") == 3);
      leader_scope.cancel();
      weft::testing::wait_all_tasks_blocked();
      CHECK(leader_got_cancelled);
      CHECK(ran == std::vector<int>{0, 1});  // caller 1 leads now
      CHECK(flights.waiting("k") == 2);
      // A caller arriving now joins caller 1's flight.
      tg.start_soon([&] { got[4] = flights.call("k", slow_fn(ran, 4, 5s)); });
      weft::testing::wait_all_tasks_blocked();
      CHECK(flights.waiting("k") == 3);
    });
    CHECK(leader_scope.cancelled_caught());
    CHECK(ran == std::vector<int>{0, 1});
    CHECK(got == std::map<int, std::string>{{1, "from 1"}, {2, "from 1"}, {3, "from 1"}, {4, "from 1"}});
    CHECK(now_s() == 6);  // caller 1's fn started at t=1
    CHECK(flights.flights() == 0);
  });
}

TEST_CASE("a cancelled leader with nobody waiting ends the flight, and the next call runs fn") {
  run([] {
    flight_map flights;
    std::vector<int> ran;
    auto scope = weft::move_on_after(1s);
    scope.run([&] { flights.call("k", slow_fn(ran, 0, 5s)); });
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 1);
    CHECK_FALSE(flights.in_flight("k"));
    CHECK(flights.call("k", slow_fn(ran, 1, 1s)) == "from 1");
    CHECK(ran == std::vector<int>{0, 1});
    CHECK(flights.flights() == 0);
  });
}

TEST_CASE("a waiter handed the call after it was cancelled passes it on to the next waiter") {
  run([] {
    flight_map flights;
    std::vector<int> ran;
    std::map<int, std::string> got;
    weft::cancel_scope leader_scope;
    weft::cancel_scope first_scope;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        leader_scope.run([&] {
          try {
            flights.call("k", slow_fn(ran, 0, 5s));
          } catch (const weft::cancelled&) {
            // Caller 1 has just been woken to lead and has not run yet.
            first_scope.cancel();
            throw;
          }
        });
      });
      tg.start_soon([&] { first_scope.run([&] { got[1] = flights.call("k", slow_fn(ran, 1, 5s)); }); });
      for (int i = 2; i <= 3; ++i) tg.start_soon([&, i] { got[i] = flights.call("k", slow_fn(ran, i, 5s)); });
      weft::sleep(1s);
      leader_scope.cancel();
    });
    CHECK(leader_scope.cancelled_caught());
    CHECK(first_scope.cancelled_caught());
    CHECK(ran == std::vector<int>{0, 2});  // caller 1 never ran its fn
    CHECK(got == std::map<int, std::string>{{2, "from 2"}, {3, "from 2"}});
    CHECK(now_s() == 6);
    CHECK(flights.flights() == 0);
  });
}

TEST_CASE("a cancelled waiter leaves with cancelled and the others still get the leader's value") {
  run([] {
    flight_map flights;
    std::vector<int> ran;
    std::map<int, std::string> got;
    double waiter_left_at = -1;
    bool waiter_returned = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { got[0] = flights.call("k", slow_fn(ran, 0, 2s)); });
      tg.start_soon([&] {
        auto scope = weft::move_on_after(1s);
        scope.run([&] {
          flights.call("k", slow_fn(ran, 1, 2s));
          waiter_returned = true;
        });
        CHECK(scope.cancelled_caught());
        waiter_left_at = now_s();
      });
      tg.start_soon([&] { got[2] = flights.call("k", slow_fn(ran, 2, 2s)); });
      weft::testing::wait_all_tasks_blocked();
      CHECK(flights.waiting("k") == 2);
      weft::sleep(1.5s);
      CHECK(flights.waiting("k") == 1);
      CHECK(flights.in_flight("k"));
    });
    CHECK(waiter_left_at == 1);
    CHECK_FALSE(waiter_returned);
    CHECK(ran == std::vector<int>{0});
    CHECK(got == std::map<int, std::string>{{0, "from 0"}, {2, "from 0"}});
    CHECK(now_s() == 2);
    CHECK(flights.flights() == 0);
  });
}

TEST_CASE("a waiter cancelled at the moment the flight ends returns the value, and the cancellation comes next") {
  run([] {
    flight_map flights;
    std::vector<int> ran;
    weft::cancel_scope waiter_scope;
    std::string waiter_got;
    bool reached_next_checkpoint = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        CHECK(flights.call("k", slow_fn(ran, 0, 1s)) == "from 0");
        waiter_scope.cancel();  // the waiter has been handed the value and has not run yet
      });
      tg.start_soon([&] {
        waiter_scope.run([&] {
          waiter_got = flights.call("k", slow_fn(ran, 1, 1s));
          weft::checkpoint();
          reached_next_checkpoint = true;
        });
      });
    });
    CHECK(waiter_got == "from 0");
    CHECK_FALSE(reached_next_checkpoint);
    CHECK(waiter_scope.cancelled_caught());
    CHECK(ran == std::vector<int>{0});
  });
}

TEST_CASE("an exception from fn reaches every waiting caller, and is not remembered: the next call runs fn again") {
  run([] {
    flight_map flights;
    int calls = 0;
    auto failing = [&]() -> std::string {
      ++calls;
      weft::sleep(1s);
      throw std::runtime_error("backend down");
    };
    std::vector<std::exception_ptr> errors;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 4; ++i) {
        tg.start_soon([&] {
          try {
            flights.call("k", failing);
          } catch (const std::runtime_error& e) {
            CHECK(std::string(e.what()) == "backend down");
            errors.push_back(std::current_exception());
          }
        });
      }
    });
    CHECK(calls == 1);
    REQUIRE(errors.size() == 4);
    for (const auto& e : errors) CHECK(e == errors[0]);  // the same exception object, rethrown
    CHECK(flights.flights() == 0);
    CHECK(flights.call("k", [&] { return "up again after " + std::to_string(++calls); }) == "up again after 2");
    CHECK(now_s() == 1);
  });
}

TEST_CASE("with Value = void, concurrent callers wait for one run and share its exception") {
  run([] {
    weft::single_flight<int, void> flights;
    int runs = 0;
    std::vector<double> returned_at;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 3; ++i) {
        tg.start_soon([&] {
          flights.call(1, [&] {
            ++runs;
            weft::sleep(1s);
          });
          returned_at.push_back(now_s());
        });
      }
    });
    CHECK(runs == 1);
    CHECK(returned_at == std::vector<double>{1, 1, 1});
    int failures = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 3; ++i) {
        tg.start_soon([&] {
          CHECK_THROWS_WITH_AS(flights.call(1,
                                            [&] {
                                              ++runs;
                                              weft::sleep(1s);
                                              throw std::invalid_argument("no such key");
                                            }),
                               "no such key", std::invalid_argument);
          ++failures;
        });
      }
    });
    CHECK(runs == 2);
    CHECK(failures == 3);
    CHECK(flights.flights() == 0);
  });
}

namespace {
// A value whose n-th copy (counted from 1) throws.
struct fragile {
  static inline int copies = 0;
  static inline int failing_copy = 0;
  int n;
  explicit fragile(int v) : n(v) {}
  fragile(fragile&&) noexcept = default;
  fragile(const fragile& other) : n(other.n) {
    if (++copies == failing_copy) throw std::runtime_error("copy failed");
  }
  fragile& operator=(const fragile&) = default;
  fragile& operator=(fragile&&) noexcept = default;
};
}  // namespace

TEST_CASE("every waiter gets its own copy of the value, and a waiter whose copy throws gets that exception") {
  run([] {
    weft::single_flight<std::string, fragile> flights;
    fragile::copies = 0;
    fragile::failing_copy = 2;  // the second waiter's
    std::map<int, std::string> outcome;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 4; ++i) {
        tg.start_soon([&, i] {
          try {
            fragile v = flights.call("k", [] {
              weft::sleep(1s);
              return fragile(42);
            });
            outcome[i] = std::to_string(v.n);
          } catch (const std::runtime_error& e) {
            outcome[i] = e.what();
          }
        });
      }
    });
    CHECK(fragile::copies == 3);  // one per waiter; the leader's value is moved
    CHECK(outcome == std::map<int, std::string>{{0, "42"}, {1, "42"}, {2, "copy failed"}, {3, "42"}});
    CHECK(flights.flights() == 0);
  });
}

TEST_CASE("fn calling call() again for its own key is a logic error, not a deadlock; other keys nest") {
  run([] {
    flight_map flights;
    CHECK_THROWS_WITH_AS(flights.call("k", [&] { return flights.call("k", [] { return std::string("inner"); }); }),
                         doctest::Contains("its own key"), std::logic_error);
    CHECK(flights.flights() == 0);
    const std::string nested = flights.call("outer", [&] {
      CHECK(flights.in_flight("outer"));
      return flights.call("inner", [] { return std::string("inner"); }) + " in outer";
    });
    CHECK(nested == "inner in outer");
    CHECK(flights.flights() == 0);
  });
}

TEST_CASE("call in a cancelled scope raises cancelled without running fn or joining a flight: it is a checkpoint") {
  run([] {
    flight_map flights;
    std::vector<int> ran;
    weft::cancel_scope scope;
    scope.cancel();
    scope.run([&] { flights.call("k", slow_fn(ran, 0, 0s)); });
    CHECK(scope.cancelled_caught());
    CHECK(ran.empty());
    CHECK(flights.flights() == 0);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { flights.call("k", slow_fn(ran, 1, 1s)); });
      weft::testing::wait_all_tasks_blocked();
      weft::cancel_scope late;
      late.cancel();
      late.run([&] { flights.call("k", slow_fn(ran, 2, 1s)); });
      CHECK(late.cancelled_caught());
      CHECK(flights.waiting("k") == 0);
    });
    CHECK(ran == std::vector<int>{1});
  });
}

TEST_CASE("call outside a task is a logic error") {
  weft::single_flight<int, int> flights;
  CHECK_THROWS_AS(flights.call(1, [] { return 1; }), std::logic_error);
  CHECK(flights.flights() == 0);
}

TEST_CASE("a memoizer that fills its cache from inside the flight serves concurrent misses with one call") {
  run([] {
    int underlying_calls = 0;
    auto slow_square = [&](int x) {
      ++underlying_calls;
      weft::sleep(1s);  // blocks, so other tasks run and miss the cache meanwhile
      return x * x;
    };
    std::map<int, int> cache;
    weft::single_flight<int, int> flights;
    auto memoized = [&](int x) {
      if (auto it = cache.find(x); it != cache.end()) return it->second;
      return flights.call(x, [&] {
        int v = slow_square(x);
        cache.emplace(x, v);
        return v;
      });
    };
    auto naive = [&](int x) {  // the same memoizer without single_flight
      if (auto it = cache.find(x); it != cache.end()) return it->second;
      int v = slow_square(x);
      cache.emplace(x, v);
      return v;
    };
    std::vector<int> got;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 6; ++i) tg.start_soon([&] { got.push_back(naive(3)); });
    });
    CHECK(underlying_calls == 6);  // one per concurrent miss
    cache.clear();
    underlying_calls = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 6; ++i) tg.start_soon([&] { got.push_back(memoized(3)); });
    });
    CHECK(underlying_calls == 1);
    CHECK(memoized(3) == 9);  // from the cache now
    CHECK(underlying_calls == 1);
    CHECK(got == std::vector<int>(12, 9));
  });
}

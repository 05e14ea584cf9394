// A seeded stress test: thousands of tasks in nested task groups with
// randomly timed cancellations, timeouts and failures. Checks that every
// task is accounted for, that each group raises exactly the failures of its
// children, and that nothing is left alive.
#include "support/support.hpp"

#include <algorithm>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

using namespace weft_test;

namespace {

struct numbered_error : std::runtime_error {
  explicit numbered_error(int id) : std::runtime_error("test error " + std::to_string(id)), id(id) {}
  int id;
};

struct stats {
  int started = 0, finished = 0, failed = 0, cancelled = 0;
  int timeouts = 0, scopes_caught = 0, groups_failed = 0, groups_cancelled = 0;
  int next_id = 0;
  int budget = 0;
};

struct stress {
  std::mt19937 rng;
  stats s;

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
  weft::duration some_time() { return weft::duration(uniform(0, 1000) / 1000.0); }

  // One child task: does a random thing. Failures are thrown as numbered_error
  // carrying the task's id, and recorded in `failures` of its group.
  void child(int depth, std::vector<int>& failures) {
    const int id = ++s.next_id;
    ++s.started;
    try {
      switch (depth < 4 && s.budget > 0 ? uniform(0, 6) : uniform(0, 5)) {
        case 0:
          weft::sleep(some_time());
          break;
        case 1:
          weft::sleep(some_time());
          failures.push_back(id);
          throw numbered_error(id);
        case 2: {
          auto scope = weft::move_on_after(some_time());
          scope.run([&] { weft::sleep(some_time()); });
          if (scope.cancelled_caught()) ++s.scopes_caught;
          break;
        }
        case 3:
          try {
            weft::timeout(some_time(), [&] { weft::sleep(some_time()); });
          } catch (const weft::timeout_error&) {
            ++s.timeouts;
          }
          break;
        case 4:
          weft::sleep_forever();
        case 5:
          for (int i = 0; i < 3; ++i) weft::coro_yield();
          break;
        default:
          subtree(depth + 1, id, failures);
          break;
      }
      ++s.finished;
    } catch (const weft::cancelled&) {
      ++s.cancelled;
      throw;
    } catch (const numbered_error&) {
      ++s.failed;
      throw;
    }
  }

  // A task group of random children. If it fails, checks that the group's
  // exception holds exactly its children's failures, then reports itself as
  // one failure (`id`) to its own parent.
  void subtree(int depth, int id, std::vector<int>& parent_failures) {
    std::vector<int> failures;
    const int children = uniform(2, 8);
    s.budget -= children;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        for (int i = 0; i < children; ++i) tg.start_soon([&, depth] { child(depth, failures); });
        weft::sleep(some_time());
        // End children that wait forever; sometimes cancel everything early.
        if (uniform(0, 3) == 0) weft::sleep(some_time());
        tg.cancel();
      });
      CHECK(failures.empty());
    } catch (const weft::exception_group& g) {
      ++s.groups_failed;
      std::multiset<int> raised;
      for (const auto& e : g.exceptions()) {
        try {
          std::rethrow_exception(e);
        } catch (const numbered_error& t) {
          raised.insert(t.id);
        }
      }
      CHECK(raised == std::multiset<int>(failures.begin(), failures.end()));
      parent_failures.push_back(id);
      throw numbered_error(id);
    } catch (const weft::cancelled&) {
      ++s.groups_cancelled;
      CHECK(failures.empty());
      throw;
    }
  }
};

}  // namespace

TEST_CASE("ten thousand tasks with random cancels, timeouts and failures are all accounted for") {
  for (unsigned seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    const live_counts before = live_counts::now();
    stress st{std::mt19937(seed), {}};
    st.s.budget = 10000;
    int rounds = 0;
    run([&] {
      // Top-level rounds until the budget of tasks is spent; each round may
      // also be cut short by an outer deadline.
      while (st.s.budget > 0) {
        ++rounds;
        std::vector<int> failures;
        auto outer = weft::move_on_after(weft::duration(st.uniform(1, 2000) / 1000.0));
        try {
          outer.run([&] { st.subtree(0, -rounds, failures); });
        } catch (const numbered_error& e) {
          CHECK(e.id == -rounds);
          CHECK(failures == std::vector<int>{-rounds});
        }
      }
    });
    const stats& s = st.s;
    MESSAGE("seed " << seed << ": " << s.started << " tasks, " << s.finished << " finished, " << s.failed
                    << " failed, " << s.cancelled << " cancelled, " << s.timeouts << " timeouts, " << rounds
                    << " rounds");
    CHECK(s.started >= 10000);
    CHECK(s.started == s.finished + s.failed + s.cancelled);
    CHECK(s.failed > 0);
    CHECK(s.cancelled > 0);
    CHECK(s.timeouts > 0);
    CHECK(s.scopes_caught > 0);
    CHECK(s.groups_failed > 0);
    CHECK(s.groups_cancelled > 0);
    CHECK(leaks_since(before) == "");  // for this seed
  }
}

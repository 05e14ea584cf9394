// weft::wait and weft::as_completed: waiting for sets of futures.
#include "threads/threads_support.hpp"

#include <weft/threads/caller.hpp>
#include <weft/threads/future_sets.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace weft_test;
using namespace weft_threads_test;

namespace {

std::vector<weft::future<int>> futures_of(std::vector<weft::promise<int>>& ps) {
  std::vector<weft::future<int>> fs;
  for (auto& p : ps) fs.push_back(p.get_future());
  return fs;
}

}  // namespace

TEST_CASE("wait for all: a plain thread blocks until every future is done, set from other threads") {
  std::vector<weft::promise<int>> ps(3);
  auto fs = futures_of(ps);
  std::thread setter([&] {
    for (int i = 2; i >= 0; --i) ps[static_cast<std::size_t>(i)].set_value(i);
  });
  auto [done, pending] = weft::wait(fs);
  setter.join();
  CHECK(done.size() == 3);
  CHECK(pending.empty());
  CHECK(done[0] == fs[0]);  // in the order given
  CHECK(done[2].get() == 2);
}

TEST_CASE("wait for the first: returns once one is done, leaves the rest pending and uncancelled") {
  run_real([] {
    std::vector<weft::promise<int>> ps(3);
    auto fs = futures_of(ps);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        weft::sleep(5ms);
        ps[1].set_value(7);
      });
      auto [done, pending] = weft::wait(fs, {.when = weft::return_when::first_completed});
      REQUIRE(done.size() == 1);
      CHECK(done[0] == fs[1]);
      CHECK(pending.size() == 2);
      CHECK_FALSE(pending[0].cancelled());
    });
    // Already done: no wait.
    CHECK(weft::wait(fs, {.when = weft::return_when::first_completed}).done.size() == 1);
  });
}

TEST_CASE("wait for the first exception: a failure or a cancellation ends it; without one it waits for all") {
  run_real([] {
    std::vector<weft::promise<int>> ps(3);
    auto fs = futures_of(ps);
    ps[0].set_value(1);
    std::thread([&] { ps[2].set_exception(std::make_exception_ptr(test_error("bad"))); }).join();
    auto r = weft::wait(fs, {.when = weft::return_when::first_exception});
    CHECK(r.done.size() == 2);
    CHECK(r.pending.size() == 1);
    ps[1].set_value(2);

    std::vector<weft::promise<int>> qs(2);
    auto gs = futures_of(qs);
    gs[1].cancel();
    CHECK(weft::wait(gs, {.when = weft::return_when::first_exception}).pending.size() == 1);  // cancelled counts
    std::vector<weft::promise<int>> good(2);
    auto hs = futures_of(good);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        good[0].set_value(1);
        weft::sleep(5ms);
        good[1].set_value(2);
      });
      CHECK(weft::wait(hs, {.when = weft::return_when::first_exception}).done.size() == 2);
    });
    qs[0].set_value(0);
  });
}

TEST_CASE("wait with a timeout returns what is done then, without cancelling; a cancelled waiter throws") {
  run([] {  // a manual clock that jumps to the timeout
    std::vector<weft::promise<int>> ps(2);
    auto fs = futures_of(ps);
    ps[0].set_value(1);
    const double start = now_s();
    auto [done, pending] = weft::wait(fs, {.timeout = weft::duration(5)});
    CHECK(now_s() == doctest::Approx(start + 5));
    CHECK(done.size() == 1);
    REQUIRE(pending.size() == 1);
    CHECK_FALSE(pending[0].cancelled());
    CHECK(weft::wait(fs, {.timeout = weft::duration(0)}).pending.size() == 1);  // no wait

    auto scope = weft::move_on_after(weft::duration(1));
    scope.run([&] { (void)weft::wait(fs); });
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(fs[1].cancelled());  // the futures go on
    ps[1].set_value(2);
    CHECK(weft::wait(fs).done.size() == 2);
  });
  std::vector<weft::future<int>> empty(1);
  CHECK_THROWS_AS(weft::wait(empty), std::invalid_argument);
  std::vector<weft::promise<int>> ps(1);
  CHECK_THROWS_AS(weft::wait(futures_of(ps), {.timeout = weft::duration(-1)}), std::invalid_argument);
  CHECK(weft::wait(std::vector<weft::future<int>>()).done.empty());
}

TEST_CASE("as_completed yields each future once, in the order they finish, the done ones first") {
  std::vector<weft::promise<int>> ps(4);
  auto fs = futures_of(ps);
  ps[3].set_value(3);
  ps[1].set_value(1);
  weft::as_completed_range<int> completed = weft::as_completed(fs);  // 1 and 3 are done now
  std::thread setter([&] {
    ps[2].set_value(2);
    ps[0].set_exception(std::make_exception_ptr(test_error("zero")));
  });
  std::vector<int> order;
  int failures = 0;
  for (weft::future<int>& f : completed) {
    CHECK(f.done());
    try {
      order.push_back(f.get());
    } catch (const test_error&) {
      ++failures;  // comes out when the future is read; the iteration goes on
      order.push_back(-1);
    }
  }
  setter.join();
  REQUIRE(order.size() == 4);
  CHECK(order[0] == 1);  // done before: in the given order
  CHECK(order[1] == 3);
  CHECK(order[2] == 2);  // then as they finished
  CHECK(order[3] == -1);
  CHECK(failures == 1);
  int n = 0;
  for (auto& f : weft::as_completed(std::vector<weft::future<int>>())) n += f.get();
  CHECK(n == 0);
}

TEST_CASE("as_completed over a caller's calls, from a task: all 40 come out done") {
  weft::caller c = weft::caller::start_new();
  run_real([&] {
    std::vector<weft::future<int>> fs;
    for (int i = 0; i < 40; ++i)
      fs.push_back(c.call_soon([i] {
        weft::sleep(weft::duration((i % 5) * 0.001));
        return i;
      }));
    int count = 0, sum = 0;
    for (auto& f : weft::as_completed(fs)) {
      CHECK(f.done());
      sum += f.get();
      ++count;
    }
    CHECK(count == 40);
    CHECK(sum == 40 * 39 / 2);
  });
  c.stop();
}

TEST_CASE("cancelling the task iterating as_completed cancels the futures it has not taken") {
  run_real([] {
    std::vector<weft::promise<int>> ps(3);
    auto fs = futures_of(ps);
    ps[0].set_value(0);
    int taken = 0;
    auto scope = weft::move_on_after(weft::duration(0.01));
    scope.run([&] {
      for (auto& f : weft::as_completed(fs)) {
        (void)f;
        ++taken;
      }
    });
    CHECK(scope.cancelled_caught());
    CHECK(taken == 1);
    CHECK_FALSE(fs[0].cancelled());
    CHECK(fs[1].cancelled());
    CHECK(fs[2].cancelled());
    CHECK(error_of<weft::future_cancelled_error>([&] { fs[1].get(); }) ==
          "weft::as_completed: the waiting task was cancelled");
  });
  std::vector<weft::future<int>> empty(1);
  CHECK_THROWS_AS(weft::as_completed(empty), std::invalid_argument);
}

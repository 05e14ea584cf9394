// A tour of weft's test helpers (<weft/testing/*.hpp>): virtual time,
// explicit interleavings, and leak checks. The code under test is an
// ordinary retry-with-backoff function; its hour of back-off runs in no
// real time and with exact timestamps.
#include <weft/weft.hpp>
#include <weft/testing/leak_check.hpp>
#include <weft/testing/manual_clock.hpp>
#include <weft/testing/sequencer.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

bool failed = false;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    failed = true;
  }
}

// The code under test: calls fn until it succeeds, doubling the pause
// between attempts (1 s, 2 s, 4 s, ...).
template <class F>
auto retry_with_backoff(int attempts, F fn) {
  weft::duration pause = 1s;
  for (int i = 1;; ++i) {
    try {
      return fn();
    } catch (const std::runtime_error&) {
      if (i == attempts) throw;
    }
    weft::sleep(pause);
    pause *= 2;
  }
}

void virtual_time() {
  // Autojump: whenever every task is blocked, time moves straight to the
  // next deadline. The back-off's 1 + 2 + 4 s pass instantly and exactly.
  auto clock = std::make_shared<weft::testing::manual_clock>(weft::time_point{}, /*autojump=*/true);
  weft::run_options options;
  options.clock = clock;
  const auto real_start = std::chrono::steady_clock::now();
  std::vector<double> attempts_at;
  const int result = weft::run(options, [&] {
    return retry_with_backoff(5, [&] {
      attempts_at.push_back(weft::current_time().time_since_epoch().count());
      if (attempts_at.size() < 4) throw std::runtime_error("not yet");
      return 7;
    });
  });
  check(result == 7 && clock->autojump(), "the fourth attempt succeeded");
  check(attempts_at == std::vector<double>{0, 1, 3, 7}, "attempts at exactly 0, 1, 3 and 7 s");
  check(std::chrono::steady_clock::now() - real_start < 1s, "seven seconds of back-off took no real time");

  // Without autojump, time moves only by jump(): a test can stop just
  // before a deadline and look.
  auto manual = std::make_shared<weft::testing::manual_clock>();
  manual->set_autojump(false);
  options.clock = manual;
  weft::run(options, [&] {
    weft::event second_attempt;
    int calls = 0;
    weft::open_task_group([&](weft::task_group& group) {
      group.start_soon([&] {
        retry_with_backoff(2, [&] {
          if (++calls == 2) return second_attempt.set();
          throw std::runtime_error("not yet");
        });
      });
      weft::testing::wait_all_tasks_blocked();        // the task now sleeps its first pause
      manual->jump(999ms);
      weft::testing::wait_all_tasks_blocked();
      check(calls == 1, "no retry before the pause is over");
      manual->jump(1ms);                                // the deadline fires at once
      second_attempt.wait();
      check(calls == 2, "retried once the pause was over");
    });
  });
}

void interleavings() {
  // A sequencer forces an order on tasks' steps, independent of scheduling:
  // here, a reader that runs between a writer's two steps sees half a write.
  weft::testing::sequencer seq;
  std::string shared = "old";
  std::string seen;
  weft::open_task_group([&](weft::task_group& group) {
    group.start_soon([&] {
      seq(0, [&] { shared = "half"; });
      seq(2, [&] { shared = "new"; });
    });
    group.start_soon([&] { seq(1, [&] { seen = shared; }); });
  });
  check(seen == "half" && shared == "new", "the reader ran between the two steps");

  // wait_turn()/finish() for a step that is not one callable.
  weft::testing::sequencer steps;
  std::vector<int> order;
  weft::open_task_group([&](weft::task_group& group) {
    for (int i = 2; i >= 0; --i)
      group.start_soon([&, i] {
        steps.wait_turn(static_cast<std::size_t>(i));
        order.push_back(i);
        steps.finish();
      });
  });
  check(order == std::vector<int>{0, 1, 2}, "turns taken in position order");
}

void leak_checks() {
  // After a test, nothing of the runtime should be left: no task objects,
  // no stacks handed out. (A task handle kept past the runtime keeps its
  // task object alive: it holds the result.)
  const std::size_t tasks_before = weft::testing::live_task_objects();
  weft::task<int> kept;
  weft::run([&] {
    weft::testing::stack_info stack = weft::testing::current_stack();
    check(stack.size >= 16 * 1024 && stack.bottom != nullptr, "the running task's stack");
    check(weft::testing::live_stacks() >= 1, "this task's stack is handed out");
    check(weft::testing::mapped_stack_bytes() >= stack.size && weft::testing::stack_slabs_mapped() >= 1,
          "stacks come from mapped slabs");
    weft::open_task_group([&](weft::task_group& group) { kept = group.start([] { return 5; }); });
  });
  check(weft::testing::live_stacks() == 0, "every stack went back to its pool");
  check(weft::testing::live_task_objects() == tasks_before + 1 && kept.join() == 5, "the handle keeps its task");
  kept = {};
  check(weft::testing::live_task_objects() == tasks_before, "no task object left");
}

}  // namespace

int main() {
  virtual_time();
  weft::run(interleavings);
  leak_checks();
  if (failed) return 1;
  std::printf("tour_testing: ok\n");
}

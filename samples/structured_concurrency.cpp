// Structured concurrency on fibers: races, deadlines and failing siblings.
//
// Asks three replicas of a (simulated) service for the same answer, takes
// the first reply and cancels the others; runs a batch of jobs in a task
// group under a deadline; and shows that a failure in one task cancels its
// siblings and comes out as an exception group. Plain blocking code
// throughout: every task is a fiber, every wait is a checkpoint.
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// A replica that answers after `latency`; cancellable like any blocking call.
std::string ask_replica(const std::string& name, weft::duration latency) {
  weft::sleep(latency);
  return "answer from " + name;
}

// Race: the first replica to answer wins, the others are cancelled.
std::string first_answer() {
  std::string winner;
  weft::open_task_group([&](weft::task_group& tg) {
    const std::vector<std::pair<std::string, weft::duration>> replicas = {
        {"eu-west", 40ms}, {"us-east", 15ms}, {"ap-south", 80ms}};
    for (const auto& [name, latency] : replicas) {
      tg.start_soon(weft::task_options{.name = name}, [&, name = name, latency = latency] {
        try {
          std::string answer = ask_replica(name, latency);
          if (winner.empty()) {
            winner = std::move(answer);
            tg.cancel();  // the others lose the race
          }
        } catch (const weft::cancelled& c) {
          std::printf("  %-8s cancelled (%s)\n", name.c_str(), c.what());
          throw;  // never swallow a cancellation
        }
      });
    }
  });
  return winner;
}

}  // namespace

int main() {
  const auto start = std::chrono::steady_clock::now();
  int failures = 0;
  weft::run([&] {
    std::printf("1. race three replicas, keep the first answer:\n");
    const std::string answer = first_answer();
    std::printf("  winner: %s\n", answer.c_str());
    if (answer != "answer from us-east") ++failures;

    std::printf("2. a batch of jobs under a 50 ms deadline:\n");
    int finished = 0;
    auto deadline = weft::move_on_after(50ms);
    deadline.run([&] {
      weft::open_task_group([&](weft::task_group& tg) {
        for (int i = 1; i <= 5; ++i) {
          tg.start_soon([&finished, i] {
            weft::sleep(i * 20ms);  // jobs 1 and 2 make it, 3..5 do not
            ++finished;
          });
        }
      });
    });
    std::printf("  %d of 5 jobs finished; deadline hit: %s\n", finished, deadline.cancelled_caught() ? "yes" : "no");
    if (finished != 2 || !deadline.cancelled_caught()) ++failures;

    std::printf("3. weft::timeout turns a missed deadline into an error:\n");
    try {
      weft::timeout(10ms, [] { return ask_replica("slow", 1s); });
      ++failures;
    } catch (const weft::timeout_error& e) {
      std::printf("  timeout_error: %s\n", e.what());
    }

    std::printf("4. a failing task cancels its siblings:\n");
    try {
      weft::open_task_group([](weft::task_group& tg) {
        tg.start_soon([] { weft::sleep_forever(); });
        tg.start_soon([] {
          weft::sleep(5ms);
          throw std::runtime_error("disk full");
        });
      });
      ++failures;
    } catch (const weft::exception_group& g) {
      std::printf("  exception_group with %zu error(s): %s\n", g.size(), g.what());
      if (g.find<std::runtime_error>() == nullptr) ++failures;
    }
  });
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::printf("done in %lld ms, %s\n", static_cast<long long>(ms.count()), failures == 0 ? "all as expected" : "UNEXPECTED");
  return failures == 0 ? 0 : 1;
}

// lowlevel::dump_tasks: the task tree, what each task waits for, and the
// cancel scopes around it.

#include "support/support.hpp"

#include <weft/lowlevel/dump.hpp>
#include <weft/lowlevel/park.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <sstream>
#include <thread>

using namespace weft_test;

namespace {
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}
}  // namespace

TEST_CASE("a task dump shows every task, its state and wait, and the cancel scopes around it") {
  run([] {
    weft::lock l;
    weft::event never;
    std::ostringstream dump;
    weft::sleep(10s);  // times are on the runtime clock
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon(weft::task_options{"sleeper"}, [] { weft::move_on_after(8s).run([] { weft::sleep(3s); }); });
      tg.start_soon(weft::task_options{"holder"}, [&] {
        weft::lock_guard g(l);
        never.wait();
      });
      tg.start_soon(weft::task_options{"waiter"}, [&] {
        weft::coro_yield();  // the holder takes the lock first
        weft::lock_guard g(l);
      });
      tg.start_soon(weft::task_options{"doomed"}, [] {
        weft::cancel_scope outer;
        outer.cancel();
        outer.run([] { weft::ignore_cancellation([] { weft::sleep(5s); }); });
      });
      weft::testing::wait_all_tasks_blocked();
      weft::lowlevel::dump_tasks(dump);
      tg.cancel();
    });
    const std::vector<std::string> lines = lines_of(dump.str());
    REQUIRE(lines.size() == 10);
    CHECK(lines[0] == "weft tasks at t=10 (5 tasks)");
    CHECK(lines[1].rfind("task 1 \"", 0) == 0);  // the root task, named after its function
    CHECK(lines[1].substr(lines[1].size() - 9) == "\" running");
    const std::vector<std::string> rest(lines.begin() + 2, lines.end());
    CHECK(rest == std::vector<std::string>{
                      "  task group",
                      "    task 2 \"sleeper\" parked: sleep until t=13 (in 3 s)",
                      "      cancel scope, deadline t=18 (in 8 s)",
                      "    task 3 \"holder\" parked: event",
                      "    task 4 \"waiter\" parked: lock",
                      "    task 5 \"doomed\" parked: sleep until t=15 (in 5 s)",
                      "      cancel scope [cancel called] [cancelled]",
                      "        cancel scope [shield]",
                  });
  });
}

TEST_CASE("a task dump marks cancelled groups and tasks, and shows joins and starts") {
  run([] {
    std::ostringstream dump;
    weft::open_task_group([&](weft::task_group& tg) {
      auto sleeper = tg.start(weft::task_options{"sleeper"}, [] { weft::sleep_forever(); });
      tg.start_soon(weft::task_options{"joiner"}, [sleeper] { sleeper.wait(); });
      weft::testing::wait_all_tasks_blocked();
      weft::lowlevel::dump_tasks(dump);
      tg.cancel();
    });
    const std::vector<std::string> lines = lines_of(dump.str());
    REQUIRE(lines.size() == 5);
    CHECK(lines[0] == "weft tasks at t=0 (3 tasks)");
    CHECK(lines[2] == "  task group");
    CHECK(lines[3] == "    task 2 \"sleeper\" parked: sleep forever");
    CHECK(lines[4] == "    task 3 \"joiner\" parked: join of task 2");
  });
}

TEST_CASE("a task dump can be taken from another thread through the loop, and gives up on a stalled loop") {
  hang_backstop backstop(std::chrono::seconds(20));
  std::string from_thread;
  bool stalled_answer = true;
  run([&] {
    auto& io = weft::lowlevel::io_context();
    weft::event answered;
    std::thread other([&] {
      std::ostringstream out;
      CHECK(weft::lowlevel::dump_tasks(io, out));
      from_thread = out.str();
      boost::asio::post(io, [&] { answered.set(); });
    });
    answered.wait();
    other.join();

    std::atomic<bool> gave_up{false};
    std::thread impatient([&] {
      std::ostringstream out;
      stalled_answer = weft::lowlevel::dump_tasks(io, out, std::chrono::milliseconds(20));
      gave_up = true;
    });
    while (!gave_up) {
    }  // the loop is stalled by this task until the other thread gave up
    impatient.join();
    weft::sleep(1s);  // the loop now runs the late dump request: harmless
  });
  CHECK(lines_of(from_thread).size() == 2);
  CHECK(lines_of(from_thread)[1].find("parked: event") != std::string::npos);
  CHECK_FALSE(stalled_answer);
}

TEST_CASE("dump_tasks outside a runtime is a clear error") {
  std::ostringstream out;
  CHECK_THROWS_AS(weft::lowlevel::dump_tasks(out), std::logic_error);
}

// Thread-level locks held across a park: a std::mutex held by a parked task
// while another task of the runtime locks it, or a std::call_once whose
// callable parks while a second task enters it, blocks the runtime's thread
// for good. weft cannot undo that; the stall watchdog names the blocked
// task. Each scenario deadlocks for real, so it runs in a child process,
// which reports what the watchdog wrote and exits.
#include "support/child_process.hpp"
#include "support/support.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

using namespace weft_test;
using namespace std::chrono_literals;

namespace {

// Runs `body` in a runtime with the watchdog at 50 ms; a plain thread waits
// for the watchdog's report about task "blocked" (stderr captured), copies
// what was reported to the real stderr, and ends the process (exit 0), or
// exits with 3 if no report came within 20 s.
template <class Body>
void deadlock_and_report(Body body) {
  // stderr goes to a file the watcher reads (no doctest here: plain calls).
  std::FILE* file = std::tmpfile();
  const int saved = ::dup(STDERR_FILENO);
  if (file == nullptr || saved < 0 || ::dup2(::fileno(file), STDERR_FILENO) != STDERR_FILENO) _exit(5);
  std::thread([file, saved] {
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until) {
      char buf[4096];
      const ssize_t n = ::pread(::fileno(file), buf, sizeof buf, 0);
      const std::string text(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
      if (text.find("weft: task blocked has run ") != std::string::npos) {
        [[maybe_unused]] auto w = ::write(saved, text.data(), text.size());
        _exit(0);
      }
      std::this_thread::sleep_for(5ms);
    }
    _exit(3);
  }).detach();
  weft::run_options options;
  options.stall_warning = 50ms;
  weft::run(options, body);
  say("child: the runtime ended: no deadlock\n");
  _exit(4);
}

void mutex_across_a_park() {
  static std::mutex m;
  deadlock_and_report([] {
    weft::open_task_group([](weft::task_group& tg) {
      tg.start_soon(weft::task_options{"holder"}, [] {
        std::lock_guard g(m);
        weft::sleep(weft::duration(0.1));  // parks holding the thread's mutex
      });
      tg.start_soon(weft::task_options{"blocked"}, [] {
        weft::sleep(weft::duration(0.01));
        std::lock_guard g(m);  // blocks the thread: the holder can never run again
      });
    });
  });
}
const child_scenario mutex_scenario{"std::mutex held across a park", mutex_across_a_park};

void call_once_that_parks() {
  static std::once_flag once;
  deadlock_and_report([] {
    weft::open_task_group([](weft::task_group& tg) {
      tg.start_soon(weft::task_options{"initialiser"}, [] { std::call_once(once, [] { weft::sleep(weft::duration(0.1)); }); });
      tg.start_soon(weft::task_options{"blocked"}, [] {
        weft::sleep(weft::duration(0.01));
        std::call_once(once, [] {});  // waits for the parked initialiser: blocks the thread
      });
    });
  });
}
const child_scenario call_once_scenario{"std::call_once that parks", call_once_that_parks};

}  // namespace

TEST_CASE("the stall watchdog names the task blocked on a std::mutex held by a parked task") {
  const child_outcome o = run_child("std::mutex held across a park");
  INFO(o.describe());
  CHECK(o.exited_with(0));
  CHECK(o.err.find("weft: task blocked has run ") != std::string::npos);
  CHECK(o.err.find(" ms without a checkpoint") != std::string::npos);
}

TEST_CASE("the stall watchdog names the task blocked in a std::call_once whose callable parks") {
  const child_outcome o = run_child("std::call_once that parks");
  INFO(o.describe());
  CHECK(o.exited_with(0));
  CHECK(o.err.find("weft: task blocked has run ") != std::string::npos);
}

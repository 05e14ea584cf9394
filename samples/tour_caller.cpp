// A tour of weft::caller: event loops on named threads. A "db" caller owns
// a connection-like resource that only its thread touches; the main thread,
// another runtime's tasks and the caller's own calls all hand it work.
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

// Touched only on the db caller's thread: no lock needed.
std::map<std::string, int> table;

weft::coro<int> lookup(std::string key) {
  weft::sleep(1ms);  // pretend I/O
  co_return table[key];
}

}  // namespace

int main() {
  weft::caller_options options;
  options.name = "db";
  weft::caller db = weft::caller::start_new(options);
  check(db.running() && !db.stopped() && db.name() == "db", "start_new returns a running caller");
  check(weft::caller::get_instance("db") == db, "get_instance finds it by name");

  // From a plain thread: call_soon returns a weft::future; get() blocks.
  db.call_soon([](std::string key, int value) { table[key] = value; }, "answer", 42).get();
  check(db.call_soon(lookup, std::string("answer")).get() == 42, "a coroutine function's result is awaited");

  // From tasks of another runtime: get() parks the task, the runtime goes on.
  weft::run([&] {
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 3; ++i)
        tg.start_soon([&, i] { db.call_soon([i] { table["task" + std::to_string(i)] = i; }).get(); });
    });
    check(db.call_soon([] { return table.size(); }).get() == 4, "every task's call ran on the db thread");
  });

  // A call on the caller's own thread may call it too.
  check(db.call_soon([] {
          weft::caller self = weft::caller::current();
          return self.call_soon([] { return std::string("nested"); }).get();
        }).get() == "nested",
        "a call awaits another call of its own caller");

  // call_later: after a delay counted from the call.
  const auto start = std::chrono::steady_clock::now();
  db.call_later(weft::duration(0.02), [] {}).get();
  check(std::chrono::steady_clock::now() - start >= 20ms, "call_later waits its delay");

  // call_direct: outside any task, no future; errors go to report_error.
  std::atomic<int> reported{0};
  auto previous = weft::set_error_reporter([&](const weft::error_report&) { ++reported; });
  db.call_direct([] { throw std::runtime_error("logged, not propagated"); });
  db.call_soon([] {}).get();  // after the direct call
  weft::set_error_reporter(previous);
  check(reported == 1, "a direct call's exception is reported");

  // Cancelling a call that waits, and the caller list.
  auto never = db.call_later(weft::duration(3600), [] { return 0; });
  check(never.cancel("changed my mind") && never.cancelled(), "a delayed call is cancelled");
  bool listed = false;
  for (const weft::caller& c : weft::caller::all_callers()) listed = listed || c == db;
  check(listed, "all_callers lists it");

  // Sets of futures: wait() for some or all of them, as_completed() in finishing order.
  std::vector<weft::future<int>> jobs;
  for (int i = 0; i < 5; ++i)
    jobs.push_back(db.call_later(weft::duration(0.001 * (5 - i)), [i] { return i; }));
  weft::future_set_options first;
  first.when = weft::return_when::first_completed;
  weft::wait_result<int> some = weft::wait(jobs, first);
  check(!some.done.empty() && some.done.size() + some.pending.size() == 5, "wait returns once one is done");
  weft::future_set_options failing;
  failing.when = weft::return_when::first_exception;
  failing.timeout = weft::duration(10);
  check(weft::wait(jobs, failing).done.size() == 5, "with no failure, first_exception waits for all");
  int sum = 0, taken = 0;
  weft::as_completed_range<int> in_order = weft::as_completed(jobs);
  for (weft::future<int>& f : in_order) {
    sum += f.get();  // done: no wait
    ++taken;
  }
  check(taken == 5 && sum == 10, "as_completed yields every future once");

  // A protected caller ignores stop(); stop_all(true) stops every caller.
  weft::caller_options keep;
  keep.name = "metrics";
  keep.protect = true;
  weft::caller metrics = weft::caller::start_new(keep);
  metrics.stop();
  weft::caller scratch = weft::caller::get_instance("scratch", /*create=*/true);  // started on demand
  check(scratch.name() == "scratch", "get_instance with create starts a caller");
  check(metrics.running(), "stop() leaves a protected caller running");
  auto pending = db.call_later(weft::duration(3600), [] {});
  db.stop();
  check(db.stopped() && pending.cancelled(), "stop resolves what has not run as cancelled");
  try {
    db.call_soon([] {});
    check(false, "a stopped caller refuses calls");
  } catch (const weft::runtime_closed_error&) {
  }
  weft::caller::stop_all(/*force=*/true);
  check(metrics.stopped() && scratch.stopped() && weft::caller::all_callers(false).empty(),
        "stop_all(true) stops the rest");

  // open_caller: this runtime serves as a caller while the body runs.
  weft::run([] {
    weft::caller_options here_options;
    here_options.name = "main";
    weft::open_caller(
        [](weft::caller& here) {
          std::thread other([] { check(weft::caller::get_instance().call_soon([] { return 7; }).get() == 7,
                                       "another thread calls the runtime's caller by its name"); });
          weft::run_in_thread([&] { other.join(); });
          check(here.name() == "main", "the default name get_instance looks for");
        },
        here_options);
  });

  if (failures != 0) return 1;
  std::puts("tour_caller: ok");
}

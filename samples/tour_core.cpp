// A tour of weft's core: runtimes and their options, time and clocks,
// checkpoints, cancel scopes, tasks and task groups, errors, the error
// hook, and the backend interface. Every result is checked.
#include <weft/weft.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
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

// A clock that runs a thousand times faster than real time: a program's own
// notion of time (a simulation, a replay) plugs in the same way. `now` is
// monotonic; `wake_time` tells the runtime when, in real time, a deadline of
// this clock comes.
class fast_clock final : public weft::clock {
 public:
  weft::time_point now() const override {
    return weft::time_point(weft::duration(std::chrono::steady_clock::now() - start_) * speed);
  }
  std::optional<std::chrono::steady_clock::time_point> wake_time(weft::time_point deadline) const override {
    const double secs = deadline.time_since_epoch().count() / speed;
    if (!std::isfinite(secs) || secs > 86400) return start_ + 24h;  // far away: wake and look again
    return start_ + std::chrono::ceil<std::chrono::steady_clock::duration>(weft::duration(secs));
  }
  // Called when every task is blocked. A clock that can move its own time
  // (weft::testing::manual_clock in autojump mode) jumps to the deadline
  // here and returns true; this one lets real time pass.
  bool try_autojump(weft::time_point) override { return false; }

 private:
  static constexpr double speed = 1000;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

void runtimes_and_time() {
  // Options of a runtime: its clock, stack sizes and guards, the stall watchdog.
  weft::run_options options;
  options.clock = std::make_shared<fast_clock>();
  options.stack_size = 256 * 1024;
  options.stacks = weft::stack_kind::pooled;             // or guarded: one mapping per stack, for debugging
  options.stack_guard = weft::stack_guard::automatic;    // a guard page, with madvise where the kernel has it
  options.stall_warning = 0ms;                           // > 0: report tasks that never reach a checkpoint
  const auto real_start = std::chrono::steady_clock::now();
  const double slept = weft::run(options, [] {
    const weft::time_point start = weft::current_time();
    weft::sleep(10s);                                    // ten seconds of this clock, 10 ms of real time
    weft::sleep_until(start + 20s);
    return (weft::current_time() - start).count();
  });
  check(slept >= 20 && slept < 25, "sleeps follow the runtime's clock");
  check(std::chrono::steady_clock::now() - real_start < 5s, "a fast clock takes little real time");

  // weft::bootstrap is run() under the name the backend interface uses; the
  // time types are double seconds of weft::runtime_clock.
  options.clock = std::make_shared<weft::real_clock>();
  const bool infinite = weft::bootstrap(options, [] {
    weft::runtime_clock::time_point t = weft::current_time();
    return t < weft::inf_time && std::isinf(weft::inf_time.time_since_epoch().count());
  });
  check(infinite, "inf_time is later than any time");
  weft::release_cached_stacks();                         // ended runtimes keep warm stacks for later ones
}

void checkpoints_and_scopes() {
  // A checkpoint lets other tasks run and raises weft::cancelled if the
  // task is cancelled; the shielded form only yields.
  weft::cancel_scope outer;
  outer.run([&] {
    outer.cancel();
    weft::cancel_shielded_coro_yield();                  // no exception here
    check(outer.cancel_called(), "cancel() is recorded at once");
    weft::coro_yield();                                  // ... but here: the scope catches it
    check(false, "a checkpoint in a cancelled scope raises");
  });
  check(outer.cancelled_caught(), "the scope caught its own cancellation");

  // Deadlines: move_on_* (the body stops, the code goes on), timeout* (it throws).
  auto at = weft::move_on_at(weft::current_time() + 10ms);
  at.run([] { weft::sleep_forever(); });
  check(at.cancelled_caught(), "move_on_at ended sleep_forever");
  bool timed_out = false;
  try {
    weft::timeout_at(weft::current_time() + 5ms, [] { weft::sleep(1h); });
  } catch (const weft::timeout_error&) {
    timed_out = true;
  }
  check(timed_out, "timeout_at throws timeout_error");

  // A scope can be opened with a deadline and moved; the body may take the scope.
  auto scope = weft::open_cancel_scope(weft::inf_time);
  const std::optional<int> value = scope.run([](weft::cancel_scope& self) {
    self.reschedule(weft::current_time() + 5ms);
    weft::sleep(1h);
    return 1;
  });
  check(!value && scope.cancelled_caught() && scope.deadline() != weft::inf_time, "a rescheduled deadline fires");

  // Shields: cleanup that must finish even while the task is being cancelled.
  weft::cancel_scope shield_demo;
  bool cleaned = false;
  shield_demo.run([&] {
    shield_demo.cancel();
    weft::ignore_cancellation([&] { weft::sleep(1ms); });           // not interrupted
    const bool finished = weft::shielded(50ms, [] { weft::sleep(1ms); });  // shielded, but bounded
    cleaned = weft::shielded([] { return true; }) && finished;
  });
  check(cleaned, "shielded code runs in a cancelled scope");
  weft::cancel_scope shielding(weft::inf_time, /*shield=*/true);
  check(shielding.shield() && &shielding.backend() == &weft::builtin_backend(), "a scope made as a shield");

  // enter()/exit() for code that cannot wrap a body in a lambda (a RAII
  // holder, a C callback pair): exit hands back what the caller must rethrow.
  weft::cancel_scope manual(weft::current_time() + 1ms);
  manual.enter();
  std::exception_ptr left;
  try {
    weft::sleep(1h);
  } catch (...) {
    left = manual.exit(std::current_exception());
  }
  check(!left && manual.cancelled_caught(), "exit() absorbs the scope's own cancellation");

  // What a cancellation says about itself.
  auto why = weft::move_on_after(1ms);
  why.run([] {
    try {
      weft::sleep(1h);
    } catch (const weft::cancelled& c) {
      check(c.reason() == weft::cancel_reason::deadline, "the reason is the deadline");
      check(std::string(weft::to_string(c.reason())) != "", "reasons have names");
      check(weft::is_cancelled(std::current_exception()), "is_cancelled sees a cancellation");
      throw;                                           // never swallow weft::cancelled
    }
  });
}

void tasks_and_groups() {
  weft::open_task_group([](weft::task_group& group) {
    // start() returns a handle: the result, the task's name and id, cancel().
    weft::task_options named;
    named.name = "adder";
    weft::task<int> adder = group.start(named, [](int a, int b) { return a + b; }, 2, 3);
    check(adder.join() == 5 && adder.done() && adder.info().name == "adder", "a named task's result");

    weft::task<void> sleeper = group.start([] { weft::sleep_forever(); });
    check(group.running() == 1 && !group.cancel_called(), "the group counts its running tasks");
    sleeper.cancel();
    sleeper.wait();
    check(sleeper.cancelled(), "a task cancelled through its handle");
    check(&sleeper.backend() == &group.backend(), "handles and groups share the backend");

    // join_or_cancel: if the waiter is cancelled, the task is cancelled too.
    weft::task<int> slow = group.start([] {
      weft::sleep(1h);
      return 0;
    });
    auto waiter = weft::move_on_after(1ms);
    waiter.run([&] { slow.join_or_cancel(); });
    check(waiter.cancelled_caught() && slow.cancelled(), "join_or_cancel took the task down with the wait");

    weft::task_info me = weft::get_current_task();
    check(me.id != 0 && !(me == adder.info()), "every task has its own id");
  });

  // A failing child cancels its siblings; every failure reaches the parent.
  try {
    weft::open_task_group([](weft::task_group& group) {
      group.start_soon([] { throw std::runtime_error("first"); });
      group.start_soon([] { throw std::logic_error("second"); });
      group.start_soon([] { weft::sleep_forever(); });     // cancelled by the failures
    });
  } catch (const weft::exception_group& eg) {
    check(eg.size() == 2 && eg.exceptions().size() == 2, "both failures are kept");
    check(eg.contains<std::logic_error>() && eg.count<std::runtime_error>() == 1, "exception_group queries");
  }

  // gather: run callables concurrently, results in order.
  auto [a, b] = weft::gather([] { return 1; }, [] { return std::string("two"); });
  check(a == 1 && b == "two", "gather returns results in order");

  // A group with enter()/exit(), like a cancel scope's.
  weft::task_group manual;
  manual.enter();
  manual.start_soon([] { weft::sleep(1ms); });
  manual.cancel();
  check(manual.cancel_called(), "the group's scope was cancelled");
  if (auto e = manual.exit(nullptr)) std::rethrow_exception(e);
}

void error_kinds() {
  // busy_resource_error: one resource, two users at once (two receivers on
  // one connection).
  auto listener = std::move(weft::net::create_tcp_listeners("127.0.0.1", 0).front());
  auto client = weft::net::create_tcp_connection("127.0.0.1", listener.local_address().port());
  auto server = listener.accept();
  bool busy = false;
  weft::open_task_group([&](weft::task_group& group) {
    group.start_soon([&] { (void)client.recv(16); });
    weft::coro_yield();                                  // the first receiver is now waiting
    try {
      (void)client.recv(16);
    } catch (const weft::busy_resource_error&) {
      busy = true;
    }
    server.send_all("x");
  });
  check(busy, "a second receiver gets busy_resource_error");

  // abandoned_error: the execution context that was to complete an
  // operation is destroyed first. The waiting task is told, not left hanging.
  std::optional<boost::asio::io_context> doomed(std::in_place);
  bool abandoned = false;
  weft::open_task_group([&](weft::task_group& group) {
    group.start_soon([&] {
      try {
        boost::asio::post(*doomed, weft::use_fiber);    // nobody runs this io_context
      } catch (const weft::abandoned_error&) {
        abandoned = true;
      }
    });
    weft::coro_yield();
    doomed.reset();
  });
  check(abandoned, "an operation destroyed without completing throws abandoned_error");
}

void error_hook() {
  // Errors nobody can receive (a job's exception after its task gave up on
  // it, a failing done-callback) go to one process-wide hook.
  std::vector<std::string> seen;
  weft::error_reporter previous = weft::set_error_reporter([&](const weft::error_report& report) {
    try {
      std::rethrow_exception(report.error);
    } catch (const std::exception& e) {
      seen.push_back(std::string(report.context) + ": " + e.what() + " in " + std::string(report.task));
    }
  });
  weft::run([] {
    weft::report_error(std::make_exception_ptr(std::runtime_error("lost")), "a demonstration");
  });
  weft::set_error_reporter(std::move(previous));
  check(seen.size() == 1 && seen[0].starts_with("a demonstration: lost in "), "the hook saw the report");
  // The default hook writes one line on stderr.
  weft::default_error_reporter({std::make_exception_ptr(std::runtime_error("shown once")), "tour_core", ""});
}

void backend_interface() {
  // Library code can be written against weft::async_backend&, the seed
  // API's backend object; it reaches the same runtime as the free functions.
  weft::async_backend& be = weft::ensure_backend("weft");  // by name, as a configuration would say
  check(&be == &weft::builtin_backend(), "one builtin backend");
  std::unique_ptr<weft::async_backend> own = weft::new_builtin_backend("weft");
  check(own->name() == be.name(), "a separate instance of the same backend");
  int steps = 0;
  be.bootstrap([&] {
    weft::async_backend& current = weft::ensure_backend();   // none given: the current one
    check(&current == &weft::current_backend(), "the backend of the running runtime");
    current.coro_yield();
    current.cancel_shielded_coro_yield();
    current.sleep_until(current.current_time() + 1ms);
    current.ignore_cancellation([&] { ++steps; });
    auto scope = current.open_cancel_scope(current.current_time() + 1ms);
    scope.run([&] { current.sleep_forever(); });
    auto at = current.move_on_at(weft::inf_time);
    at.run([&] { ++steps; });
    current.timeout_at(weft::inf_time, [&] { ++steps; });
    current.with_task_group([&](weft::task_group& group) {
      group.start_soon([&] { steps += current.get_current_task().id != 0; });
    });
    weft::lock lock = current.create_lock();
    weft::fair_lock fair = current.create_fair_lock();
    weft::event done = current.create_event();
    weft::condition_variable cv = current.create_condition_var();
    weft::threads_portal portal = current.create_threads_portal();  // closed until its open() runs a body
    steps += !lock.locked() && !fair.locked() && !done.is_set() && !cv.locked() && !portal.is_open();
  });
  check(steps == 5, "the backend's operations ran");
}

}  // namespace

int main() {
  runtimes_and_time();
  weft::run(checkpoints_and_scopes);
  weft::run(tasks_and_groups);
  weft::run(error_kinds);
  error_hook();
  backend_interface();
  if (failed) return 1;
  std::printf("tour_core: ok\n");
}

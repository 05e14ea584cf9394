// The test runtimes: a manual clock (autojump on or off), a frozen manual
// clock, and the real clock with a deadlock backstop; one reading of the
// clock (now_s) for all of them.
#pragma once

#include <weft/testing/manual_clock.hpp>
// The core headers only (not the umbrella, which brings networking and
// coroutines): a test file includes what else it uses.
#include <weft/backend.hpp>
#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>
#include <weft/errors.hpp>
#include <weft/run.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/condition_variable.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/lock.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/sync/single_flight.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/time.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

namespace weft_test {

using namespace std::chrono_literals;

/// The stack size of every task in a test runtime: weft's own code needs
/// little, and a small stack finds a runaway recursion soon.
inline constexpr std::size_t test_stack_size = 64 * 1024;

/// Seconds on the runtime's clock since its epoch: virtual seconds since
/// the start of the run on a manual clock (which starts at the epoch).
inline double now_s() { return weft::current_time().time_since_epoch().count(); }
/// The time point `seconds` after the epoch (of the manual clock).
inline weft::time_point at(double seconds) { return weft::time_point(weft::duration(seconds)); }

/// A deadlock backstop for waits that no weft cancel scope can interrupt
/// (Boost.Fiber's own primitives, blocked threads, a root task that
/// ignores its cancellation): if the object is still alive after `limit`
/// of real time, the test program aborts with a message instead of
/// hanging until the ctest timeout.
class hang_backstop {
 public:
  explicit hang_backstop(std::chrono::milliseconds limit, const char* what = "the test")
      : thread_([this, limit, what] {
          std::unique_lock lock(mutex_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "weft test: %s hung (still blocked after %lld ms)\n", what,
                         static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  ~hang_backstop() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  hang_backstop(const hang_backstop&) = delete;
  hang_backstop& operator=(const hang_backstop&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

namespace detail {
template <class F>
auto run_on(const std::shared_ptr<weft::testing::manual_clock>& clock, F& fn) {
  weft::run_options options;
  options.clock = clock;
  options.stack_size = test_stack_size;
  if constexpr (std::is_invocable_v<F&, weft::testing::manual_clock&>)
    return weft::run(options, [&] { return fn(*clock); });
  else
    return weft::run(options, [&] { return fn(); });
}
}  // namespace detail

/// Runs fn as the root task of a runtime on a manual clock that starts at
/// the epoch; returns fn's value. With autojump (the default) time jumps to
/// the next deadline whenever every task is blocked and no I/O is ready, so
/// timeouts are instant and exact. fn may take the clock:
/// fn(weft::testing::manual_clock&).
///
/// No deadlock backstop: with autojump any deadline would fire as soon as
/// everything waits, e.g. for socket traffic; a hang ends at the ctest timeout.
template <class F>
auto run(F&& fn, bool autojump = true) {
  return detail::run_on(std::make_shared<weft::testing::manual_clock>(weft::time_point{}, autojump), fn);
}

/// Runs fn on a manual clock that stands still at the epoch unless fn
/// jumps it: no deadline can fire by itself, so only I/O and other tasks
/// make progress (a missing wake-up hangs instead of being covered by a
/// timeout). Same as run(fn, false).
template <class F>
auto run_frozen(F&& fn) {
  return run(std::forward<F>(fn), false);
}

/// Runs fn as the root task of a runtime on the real clock (for Asio
/// timers, Boost.Fiber timeouts and real sockets whose timing matters);
/// returns fn's value. A hang fails the test instead of blocking until the
/// ctest timeout: after `limit` fn is cancelled and the run throws
/// weft::timeout_error; if even that does not end it (a wait that is no
/// weft checkpoint), the program aborts 10 s later.
template <class F>
auto run_real(F&& fn, weft::duration limit = 20s) {
  hang_backstop backstop(std::chrono::duration_cast<std::chrono::milliseconds>(limit) + 10s, "a run on the real clock");
  weft::run_options options;
  options.stack_size = test_stack_size;
  return weft::run(options, [&] { return weft::timeout(limit, [&] { return fn(); }); });
}

}  // namespace weft_test

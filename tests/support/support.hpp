// Shared test fixtures: run a test body on a runtime with a manual clock,
// and check that nothing was left alive afterwards.
#pragma once

#include <weft/testing/leak_check.hpp>
#include <weft/testing/manual_clock.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>
#include <weft/weft.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include <unistd.h>
#include <string>
#include <type_traits>
#include <utility>

namespace weft_test {

using namespace std::chrono_literals;

/// Seconds since the manual clock's epoch.
inline double now_s() { return weft::current_time().time_since_epoch().count(); }
inline weft::time_point at(double seconds) { return weft::time_point(weft::duration(seconds)); }

/// Checks at the end of a test that no task object or stack is alive.
struct leak_check {
  std::size_t tasks = weft::testing::live_task_objects();
  std::size_t stacks = weft::testing::live_stacks();
  ~leak_check() {
    CHECK_MESSAGE(weft::testing::live_task_objects() == tasks, "task objects leaked");
    CHECK_MESSAGE(weft::testing::live_stacks() == stacks, "task stacks leaked");
  }
};

/// A deadlock backstop for tests of waits that no weft cancel scope can
/// interrupt (Boost.Fiber's own primitives, blocked threads): if the object
/// is still alive after `limit` of real time, the test program aborts with
/// a message instead of hanging until the ctest timeout.
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

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

/// Redirects this process's stderr (fd 2) to a temporary file while alive.
class stderr_capture {
 public:
  stderr_capture() {
    std::fflush(stderr);
    file_ = std::tmpfile();
    REQUIRE(file_ != nullptr);
    saved_ = ::dup(2);
    REQUIRE(saved_ >= 0);
    REQUIRE(::dup2(::fileno(file_), 2) == 2);
  }
  ~stderr_capture() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    std::fclose(file_);
  }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;

  /// Everything written so far.
  std::string text() const {
    std::fflush(stderr);
    std::string out;
    char buf[4096];
    for (off_t at = 0;;) {
      const ssize_t n = ::pread(::fileno(file_), buf, sizeof buf, at);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
      at += n;
    }
    return out;
  }

 private:
  std::FILE* file_ = nullptr;
  int saved_ = -1;
};

/// How often `what` occurs in `text`.
inline std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

/// Runs fn as the root task with a manual clock (autojump on unless asked
/// otherwise). fn may take the clock: fn(weft::testing::manual_clock&).
template <class F>
auto run(F&& fn, bool autojump = true) {
  auto clock = std::make_shared<weft::testing::manual_clock>(weft::time_point{}, autojump);
  weft::run_options options;
  options.clock = clock;
  options.stack_size = 64 * 1024;
  if constexpr (std::is_invocable_v<F&, weft::testing::manual_clock&>)
    return weft::run(options, [&] { return fn(*clock); });
  else
    return weft::run(options, [&] { return fn(); });
}

/// The message of a std::exception_ptr holding a std::exception.
inline std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "<non-std exception>";
  }
}

}  // namespace weft_test

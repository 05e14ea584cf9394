// Shared fixtures of the tests: the runners (runners.hpp), what the check
// after every test case compares (live_counts.hpp), skips for a missing
// capability (skips.hpp), capturing stderr and what weft::report_error
// receives, and exception messages.
#pragma once

#include "support/live_counts.hpp"
#include "support/runners.hpp"
#include "support/skips.hpp"

#include <weft/checkpoint.hpp>
#include <weft/coro.hpp>
#include <weft/report_error.hpp>
#include <weft/testing/manual_clock.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>
// (the core headers come with runners.hpp)

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

namespace weft_test {

// Small helpers several test files use (one definition, so that the test
// files of an area can be compiled together as one unity source).
inline constexpr std::size_t kib = 1024;
inline const double nan_seconds = std::nan("");
struct test_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// Sleeps d, then returns value.
inline weft::coro<int> answer_after(weft::duration d, int value) {
  weft::sleep(d);
  co_return value;
}

using namespace std::chrono_literals;

/// The address of the E held by `e` (nullptr if it holds no E): the same
/// exception object seen in two places has one address.
template <class E>
const E* address_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const E& x) {
    return &x;
  } catch (...) {
  }
  return nullptr;
}

/// What `fn` throws as an E: its what(), or "(nothing thrown)" if fn
/// returns. Anything else fn throws propagates.
template <class E, class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

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

/// Installs a reporter that records every report, for the lifetime of the
/// object; the previous one is restored afterwards.
class reports {
 public:
  reports()
      : previous_(weft::set_error_reporter([this](const weft::error_report& r) {
          std::lock_guard lock(mutex_);
          contexts_.emplace_back(r.context);
          tasks_.emplace_back(r.task);
          errors_.push_back(r.error);
        })) {}
  ~reports() { weft::set_error_reporter(previous_); }
  reports(const reports&) = delete;
  reports& operator=(const reports&) = delete;

  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return errors_.size();
  }
  std::vector<std::string> contexts() const {
    std::lock_guard lock(mutex_);
    return contexts_;
  }
  std::vector<std::string> tasks() const {
    std::lock_guard lock(mutex_);
    return tasks_;
  }
  std::vector<std::exception_ptr> errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> contexts_;
  std::vector<std::string> tasks_;
  std::vector<std::exception_ptr> errors_;
  weft::error_reporter previous_;
};

}  // namespace weft_test

// Shared by the thread tests: capturing what weft::report_error receives,
// waiting for another thread without sleeping and hoping, and running code
// on another thread (plain, or with a runtime of its own).
#pragma once

#include "support/support.hpp"

#include <weft/coro.hpp>
#include <weft/report_error.hpp>
#include <weft/threads/run_in_thread.hpp>
#include <weft/weft.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace weft_threads_test {

/// A coroutine function: 42 after `seconds` (a checkpoint).
inline weft::coro<int> answer_later(double seconds) {
  weft::sleep(weft::duration(seconds));
  co_return 42;
}

/// An Asio coroutine function: 43 after one post to its executor.
inline boost::asio::awaitable<int> asio_answer() {
  auto ex = co_await boost::asio::this_coro::executor;
  co_await boost::asio::post(ex, boost::asio::use_awaitable);
  co_return 43;
}

using weft_test::reports;

/// True if `e` holds an E.
template <class E>
bool holds(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const E&) {
    return true;
  } catch (...) {
  }
  return false;
}

/// Spins (yielding the thread) until pred() holds; aborts the test program
/// with a message after `limit` of real time. For conditions another thread
/// makes true without any event to wait on (a worker thread ending).
template <class P>
void wait_until(P pred, const char* what, std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "weft test: still waiting for %s after %lld s\n", what,
                   static_cast<long long>(limit.count()));
      std::abort();
    }
    std::this_thread::yield();
  }
}

/// Runs fn on a new plain thread and parks the calling task (in
/// run_in_thread) until that thread ends; rethrows what fn threw.
template <class F>
void on_thread(F fn) {
  std::exception_ptr failure;
  std::thread t([&] {
    try {
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  weft::run_in_thread([&] { t.join(); });
  if (failure) std::rethrow_exception(failure);
}

/// Runs fn on a second thread with a runtime of its own, and waits for it
/// from a plain thread's point of view (join).
template <class F>
void in_other_runtime(F fn) {
  std::exception_ptr failure;
  std::thread t([&] {
    try {
      weft::run([&] { fn(); });
    } catch (...) {
      failure = std::current_exception();
    }
  });
  t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace weft_threads_test

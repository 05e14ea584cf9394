// weft::unwrap_future for std::future, std::shared_future and
// boost::fibers::future: a task waits for a future that has no weft wait of
// its own (seed 002's unwrap_future, for those types).
//
// These futures cannot be cancelled and cannot wake a weft task, so the
// wait runs in a worker thread (run_in_thread with abandon_on_cancel): a
// cancellation of the task is delivered at once, and the worker goes on
// waiting for the future alone (its value is then dropped and its
// exception handed to weft::report_error). The future is moved into that
// wait. A std::future that is ready already is read at once, without a
// worker and without yielding. For weft::future, see threads/future.hpp: its wait
// parks the task directly and its cancellation follows the future's rules.
#pragma once

#include <weft/threads/future.hpp>
#include <weft/threads/run_in_thread.hpp>

#include <boost/fiber/future.hpp>

#include <chrono>
#include <future>
#include <stdexcept>
#include <utility>

namespace weft {

/// The value of `f` (or its exception, the same object), once ready; `f`
/// is left empty. A checkpoint unless `f` is ready (see the header comment).
/// @throws weft::cancelled; what f.get() throws; std::invalid_argument if
/// `f` is empty; what run_in_thread throws.
template <class T>
T unwrap_future(std::future<T>&& f) {
  if (!f.valid()) throw std::invalid_argument("weft::unwrap_future: the std::future is empty");
  if (f.wait_for(std::chrono::seconds(0)) == std::future_status::ready) return std::move(f).get();
  return run_in_thread(thread_options{.abandon_on_cancel = true}, [](std::future<T> g) { return g.get(); },
                       std::move(f));
}

/// The value of `f` (a copy), once ready. As unwrap_future(std::future&&);
/// `f` stays valid.
template <class T>
T unwrap_future(const std::shared_future<T>& f) {
  if (!f.valid()) throw std::invalid_argument("weft::unwrap_future: the std::shared_future is empty");
  if (f.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    if constexpr (std::is_void_v<T>)
      return f.get();
    else
      return T(f.get());
  }
  return run_in_thread(thread_options{.abandon_on_cancel = true}, [](std::shared_future<T> g) -> T { return g.get(); },
                       f);
}

/// The value of a Boost.Fiber future, once ready; `f` is left empty. As
/// unwrap_future(std::future&&), except that even a ready future is read on
/// a worker (asking a Boost.Fiber future whether it is ready is a
/// Boost.Fiber wait, which would suspend the task outside weft's control).
template <class T>
T unwrap_future(boost::fibers::future<T>&& f) {
  if (!f.valid()) throw std::invalid_argument("weft::unwrap_future: the boost::fibers::future is empty");
  return run_in_thread(thread_options{.abandon_on_cancel = true}, [](boost::fibers::future<T> g) { return g.get(); },
                       std::move(f));
}

}  // namespace weft

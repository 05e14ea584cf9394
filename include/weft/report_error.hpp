// weft::report_error: where errors go that nobody can receive.
//
// Some failures have no one to be thrown to: the exception of a
// run_in_thread job whose task was abandoned by its cancellation, an
// exception a job raises after its weft::future was cancelled, an exception
// escaping a future's done-callback, a failed system task. weft never drops
// them silently and never throws them into code that did not ask for them:
// it hands each to one process-wide hook. The default hook writes one line
// on stderr:
//
//   weft: <context> (task '<name>'): <what()>
//
// with the task part only when the error belongs to a task. Tests and
// programs with their own logging install a hook with set_error_reporter.
#pragma once

#include <exception>
#include <functional>
#include <string_view>

namespace weft {

/// One error nobody could receive.
struct error_report {
  std::exception_ptr error;  ///< never null
  std::string_view context;  ///< what the error belongs to ("the exception of an abandoned run_in_thread job")
  std::string_view task;     ///< the name of the task it belongs to, or empty
};

/// A hook for such errors. It is called on the thread where the error was
/// found (a worker thread, a runtime's thread outside any task, a task), so
/// it must be thread-safe, must not block for long and must not throw (an
/// exception escaping it is written to stderr and dropped).
using error_reporter = std::function<void(const error_report&)>;

/// Hands `error` to the installed hook; `context` says what it belongs to.
/// The task is the calling task, if any. Thread-safe; never throws; not a
/// checkpoint. A null `error` is ignored.
void report_error(std::exception_ptr error, std::string_view context) noexcept;

/// Installs `reporter` (an empty one restores the default) and returns the
/// previous hook (empty if it was the default). Thread-safe: a report that
/// runs concurrently finishes with the hook it started with.
/// @throws std::bad_alloc.
error_reporter set_error_reporter(error_reporter reporter);

/// The default hook: one line on stderr (see the header comment). Never throws.
void default_error_reporter(const error_report& report) noexcept;

namespace detail {
/// report_error with an explicit task name (empty: none) instead of the
/// calling task's.
void report_error_for(std::exception_ptr error, std::string_view context, std::string_view task) noexcept;
}  // namespace detail

}  // namespace weft

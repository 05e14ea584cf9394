// weft::report_error and its hook.

#include <weft/detail/core.hpp>
#include <weft/errors.hpp>
#include <weft/report_error.hpp>

#include <cstdio>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>

namespace weft {

namespace {

// The hook, shared so that a report running on another thread keeps the
// one it started with while a new one is installed. Never destroyed:
// worker threads may report while static objects are being destroyed at
// exit.
struct hook_slot {
  std::mutex mutex;
  std::shared_ptr<const error_reporter> reporter;  // null: the default
};

hook_slot& slot() {
  static hook_slot* s = new hook_slot;
  return *s;
}

// what() of the error, whatever it is; `keep` holds the pointer's target alive.
const char* what_of(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (const cancelled& c) {  // inspected only: the report owns a copy of the pointer
    return c.what();
  } catch (...) {
  }
  return "an exception that is not a std::exception";
}

}  // namespace

void default_error_reporter(const error_report& r) noexcept {
  const char* what = r.error ? what_of(r.error) : "(no exception)";
  const int context_len = static_cast<int>(r.context.size());
  if (r.task.empty())
    std::fprintf(stderr, "weft: %.*s: %s\n", context_len, r.context.data(), what);
  else
    std::fprintf(stderr, "weft: %.*s (task '%.*s'): %s\n", context_len, r.context.data(),
                 static_cast<int>(r.task.size()), r.task.data(), what);
}

error_reporter set_error_reporter(error_reporter reporter) {
  std::shared_ptr<const error_reporter> next;
  if (reporter) next = std::make_shared<const error_reporter>(std::move(reporter));
  std::shared_ptr<const error_reporter> previous;
  {
    std::lock_guard lock(slot().mutex);
    previous = std::exchange(slot().reporter, std::move(next));
  }
  return previous ? *previous : error_reporter();
}

namespace detail {

void report_error_for(std::exception_ptr error, std::string_view context, std::string_view task) noexcept {
  if (!error) return;
  std::shared_ptr<const error_reporter> reporter;
  {
    std::lock_guard lock(slot().mutex);
    reporter = slot().reporter;
  }
  const error_report report{error, context, task};
  if (!reporter) {
    default_error_reporter(report);
    return;
  }
  try {
    (*reporter)(report);
  } catch (...) {  // a hook must not throw; say so and report the error the default way
    std::fprintf(stderr, "weft: the error reporter installed with weft::set_error_reporter threw; reporting here\n");
    default_error_reporter(report);
  }
}

}  // namespace detail

void report_error(std::exception_ptr error, std::string_view context) noexcept {
  if (!error) return;
  std::string name;
  if (const detail::task_base* t = detail::current_task()) {
    try {
      name = t->name();
    } catch (const std::bad_alloc&) {  // no memory for the name: report without it
    }
  }
  detail::report_error_for(std::move(error), context, name);
}

}  // namespace weft

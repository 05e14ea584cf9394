// weft's exception types.

#include <weft/errors.hpp>

#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace weft {

const char* to_string(cancel_reason r) noexcept {
  switch (r) {
    case cancel_reason::explicit_request: return "cancelled explicitly";
    case cancel_reason::deadline: return "cancelled by a deadline";
    case cancel_reason::task_group_failure: return "cancelled because a task in the task group failed";
    case cancel_reason::task_cancelled: return "the task was cancelled";
    case cancel_reason::shutdown: return "cancelled because the runtime is shutting down";
  }
  return "cancelled";
}

const char* cancelled::what() const noexcept { return to_string(reason_); }

exception_group::exception_group(std::string message, std::vector<std::exception_ptr> exceptions)
    : message_(std::move(message)), exceptions_(std::move(exceptions)) {
  what_ = message_ + " (" + std::to_string(exceptions_.size()) +
          (exceptions_.size() == 1 ? " sub-exception" : " sub-exceptions");
  for (const auto& ep : exceptions_) {
    what_ += "; ";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what_ += e.what();
    } catch (const cancelled& c) {
      what_ += c.what();
    } catch (...) {  // describing only; the exception stays in the group
      what_ += "unknown exception";
    }
  }
  what_ += ")";
}

bool is_cancelled(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const cancelled&) {
    return true;
  } catch (...) {  // inspection only: the caller still holds e
    return false;
  }
}

}  // namespace weft

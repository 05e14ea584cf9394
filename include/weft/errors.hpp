// weft's exceptions: cancellation, timeouts, exception groups, misuse.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace weft {

/// Why a cancellation happened.
enum class cancel_reason {
  explicit_request,    ///< cancel_scope::cancel() was called.
  deadline,            ///< A cancel scope's deadline passed.
  task_group_failure,  ///< A task in an enclosing task group failed.
  task_cancelled,      ///< task<T>::cancel() was called on the task.
  shutdown,            ///< The runtime is shutting down.
};

/// Returns a short English description of `r` (a static string).
const char* to_string(cancel_reason r) noexcept;

/// Thrown at a checkpoint inside a cancelled scope. Constructing, copying
/// and what() never throw; what() is to_string(reason()).
///
/// Deliberately *not* derived from std::exception, so that
/// `catch (const std::exception&)` cannot swallow it. Library code never
/// swallows it; user code that catches it should rethrow it. Cancellation is
/// level-triggered: swallowing one `cancelled` only means the next checkpoint
/// throws another.
class cancelled final {
 public:
  explicit cancelled(cancel_reason reason = cancel_reason::explicit_request) noexcept : reason_(reason) {}
  cancel_reason reason() const noexcept { return reason_; }
  const char* what() const noexcept;

 private:
  cancel_reason reason_;
};

/// Thrown by `weft::timeout` / `weft::timeout_at` when the deadline ended
/// the body. @throws std::bad_alloc from its constructors (a
/// std::runtime_error copies its message), as the other error types below.
class timeout_error : public std::runtime_error {
 public:
  timeout_error() : std::runtime_error("the operation timed out") {}
  using std::runtime_error::runtime_error;
};

/// Several exceptions that happened together (the failures of a task group,
/// every failed attempt of a connection race). Holds every exception_ptr, in
/// the order they happened.
class exception_group : public std::exception {
 public:
  /// what() is `message`, the count and each exception's what() (a
  /// weft::cancelled's too), built here. @throws std::bad_alloc.
  exception_group(std::string message, std::vector<std::exception_ptr> exceptions);

  const char* what() const noexcept override { return what_.c_str(); }
  const std::string& message() const noexcept { return message_; }
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }
  std::size_t size() const noexcept { return exceptions_.size(); }

  /// The first exception of type E (searching nested groups too, depth
  /// first), or nullptr. The pointer stays valid as long as this group
  /// lives. Never throws.
  template <class E>
  const E* find() const noexcept {
    for (const auto& ep : exceptions_) {
      try {
        std::rethrow_exception(ep);
      } catch (const E& e) {
        return &e;
      } catch (const exception_group& g) {
        if (const E* inner = g.find<E>()) return inner;
      } catch (...) {  // not an E: keep looking (nothing is swallowed: we own a copy of ep)
      }
    }
    return nullptr;
  }

  /// True if an exception of type E is in this group or a nested group.
  /// Never throws.
  template <class E>
  bool contains() const noexcept {
    return find<E>() != nullptr;
  }

  /// How many exceptions of type E are directly in this group (nested
  /// groups are not searched). Never throws.
  template <class E>
  std::size_t count() const noexcept {
    std::size_t n = 0;
    for (const auto& ep : exceptions_) {
      try {
        std::rethrow_exception(ep);
      } catch (const E&) {
        ++n;
      } catch (...) {  // not an E
      }
    }
    return n;
  }

 private:
  std::string message_;
  std::vector<std::exception_ptr> exceptions_;
  std::string what_;
};

/// A resource that allows one user at a time is already in use (two tasks
/// receiving, or sending, on one transport at once; two tasks accepting or
/// serving on one listener). @throws std::bad_alloc from its constructors.
class busy_resource_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An operation a task was waiting for was destroyed without completing:
/// the executor or execution context that was to complete it shut down
/// first (its io_context was destroyed, its thread_pool stopped and
/// joined). Its result is lost; thrown by use_fiber, greenback::await_,
/// weft::net operations and lowlevel::throw_abandoned instead of waiting
/// forever. @throws std::bad_alloc from its constructors.
class abandoned_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// True if `e` holds a weft::cancelled (false for a null `e`). Never throws.
bool is_cancelled(const std::exception_ptr& e) noexcept;

}  // namespace weft

// Cancel scopes, deadlines, timeouts and shielding (trio semantics).
//
// A cancel scope delimits a block of code that can be cancelled as a unit,
// explicitly (`cancel()`) or by a deadline. Cancellation is delivered only at
// checkpoints, as a `weft::cancelled` exception, and is level-triggered:
// every checkpoint inside a cancelled scope throws again. The scope that was
// cancelled catches its own `cancelled` when it reaches the end of the body;
// with several cancelled scopes nested, the outermost one catches it. That is
// why a scope's body is a callable: a C++ destructor cannot swallow an
// exception, and the scope's own cancellation must never leak out.
//
// Relative deadlines (move_on_after, timeout, shielded(limit)
// and weft::sleep) are now + d, fixed when the function is called. With the
// real clock and d of one second or more, "now" is read from the kernel's
// coarse monotonic clock, rounded up by one of its ticks: such a deadline
// lies between now + d and now + d + one tick (1-4 ms, under 0.4 % of d),
// never before now + d. Shorter delays, absolute deadlines and other clocks
// (weft::testing's manual clock) are exact.
#pragma once

#include <weft/detail/core.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace weft {

class cancel_scope {
 public:
  /// A scope that is not yet entered, cancelled at `deadline` once entered
  /// (immediately, on entry, if the deadline has passed).
  /// @throws std::invalid_argument if deadline is NaN.
  explicit cancel_scope(time_point deadline = inf_time, bool shield = false);
  /// A scope must not be destroyed while its body runs (that would leave
  /// dangling pointers in the cancel tree; only possible by misusing
  /// enter() without exit()).
  ~cancel_scope() { WEFT_INVARIANT(node_.state != detail::scope_node::phase::active); }
  cancel_scope(const cancel_scope&) = delete;
  cancel_scope& operator=(const cancel_scope&) = delete;

  /// Cancels the scope (and everything inside it). Idempotent; disarms the
  /// deadline. May be called before entry, from any task of the runtime.
  void cancel() noexcept;
  /// True once cancel() was called or the deadline passed.
  bool cancel_called() const noexcept { return node_.cancel_called; }
  /// True if the scope's own cancellation ended the body (the scope caught
  /// a `cancelled`).
  bool cancelled_caught() const noexcept { return node_.cancelled_caught; }
  /// The deadline, or inf_time.
  time_point deadline() const noexcept { return node_.deadline.when; }
  /// Moves the deadline (later, earlier, or to inf_time to remove it). A
  /// deadline already passed cancels an active scope at once.
  /// @throws std::invalid_argument if t is NaN.
  void reschedule(time_point t);
  /// True if outer cancellations cannot reach the body.
  bool shield() const noexcept { return node_.shield; }

  /// Enters the scope, runs `fn()` (or `fn(*this)`), exits. Returns fn's
  /// value, as std::optional<R> for non-void R: empty if the scope caught
  /// its own cancellation. Exceptions other than the scope's own
  /// cancellation pass through.
  /// @throws std::logic_error if the scope was already entered.
  template <class F>
  auto run(F&& fn);

  /// Low-level protocol (for adapters such as greenback::async_context):
  /// enter() makes this the innermost scope of the current task;
  /// exit(e) leaves it, given the exception in flight (or nullptr), and
  /// returns what must propagate: nullptr if the scope caught its own
  /// cancellation. Misuse (entering twice, exiting a scope that is not the
  /// innermost, exiting in another task) throws std::logic_error.
  void enter();
  [[nodiscard]] std::exception_ptr exit(std::exception_ptr in_flight);

  async_backend& backend() const noexcept;

 private:
  // exit(nullptr): the body returned, there is nothing to propagate.
  void exit_returned();
  friend class task_group;
  friend struct detail::group_access;
  detail::scope_node node_;
};

/// A new, not yet entered scope with the given deadline (default: none).
cancel_scope open_cancel_scope(time_point deadline = inf_time);
/// A scope with deadline now + d (see the header comment); the deadline is
/// fixed when the scope is created.
/// @throws std::invalid_argument if d is negative or NaN.
cancel_scope move_on_after(duration d);
/// A scope with the absolute deadline t. @throws std::invalid_argument if t is NaN.
cancel_scope move_on_at(time_point t);

/// Runs fn(); if the deadline `t` ended it, throws weft::timeout_error.
/// If the scope caught no cancellation of its own, no timeout_error is
/// raised and exceptions pass through unchanged.
template <class F>
auto timeout_at(time_point t, F&& fn);
/// timeout_at(now + d, fn). @throws std::invalid_argument if d is negative or NaN.
template <class F>
auto timeout(duration d, F&& fn);

/// Runs fn() in the current task, immune to cancellation from outside.
/// Cancellations that arrive meanwhile are delivered at the next checkpoint
/// after it. Whatever fn throws comes out unchanged (the same object).
template <class F>
auto ignore_cancellation(F&& fn);

/// Cleanup that may park — a destructor that awaits (`greenback::await_`),
/// closing a connection — in a task that may be cancelled: runs fn() shielded
/// from cancellation from outside (like ignore_cancellation), so the task's
/// own cancellation does not make fn's blocking calls throw weft::cancelled
/// out of a destructor (std::terminate). Returns fn's value; whatever fn
/// throws comes out unchanged.
template <class F>
auto shielded(F&& fn);
/// The same with a time limit, so that a stuck cleanup cannot hang the
/// task's end: once `limit` has passed, fn's blocking calls are cancelled
/// (inside fn), and shielded() catches that cancellation of its own and
/// returns false (void fn) or an empty std::optional (fn returning R);
/// true, or the value, if fn finished. It never throws weft::cancelled (a
/// cancellation from outside is delivered at the next checkpoint after it).
/// @throws std::invalid_argument if limit is negative or NaN; whatever else
/// fn throws.
template <class F>
auto shielded(duration limit, F&& fn);

// ---------------------------------------------------------------------------

namespace detail {
time_point deadline_after(duration d);  // now + d, validated

template <class F>
decltype(auto) invoke_body(F& fn, cancel_scope& scope) {
  if constexpr (std::is_invocable_v<F&, cancel_scope&>)
    return fn(scope);
  else
    return fn();
}
template <class F>
using body_result_t = decltype(invoke_body(std::declval<F&>(), std::declval<cancel_scope&>()));
}  // namespace detail

template <class F>
auto cancel_scope::run(F&& fn) {
  using R = detail::body_result_t<F>;
  enter();
  if constexpr (std::is_void_v<R>) {
    try {
      detail::invoke_body(fn, *this);
    } catch (...) {
      if (auto e = exit(std::current_exception())) std::rethrow_exception(e);
      return;
    }
    exit_returned();
  } else {
    std::optional<R> result;
    try {
      result.emplace(detail::invoke_body(fn, *this));
    } catch (...) {
      if (auto e = exit(std::current_exception())) std::rethrow_exception(e);
      return result;
    }
    exit_returned();
    return result;
  }
}

template <class F>
auto timeout_at(time_point t, F&& fn) {
  cancel_scope scope(t);
  using R = detail::body_result_t<F>;
  if constexpr (std::is_void_v<R>) {
    scope.run(fn);
    if (scope.cancelled_caught()) throw timeout_error();
  } else {
    auto result = scope.run(fn);
    if (scope.cancelled_caught()) throw timeout_error();
    return std::move(*result);
  }
}

template <class F>
auto timeout(duration d, F&& fn) {
  return timeout_at(detail::deadline_after(d), std::forward<F>(fn));
}

template <class F>
auto shielded(F&& fn) {
  return ignore_cancellation(std::forward<F>(fn));
}

template <class F>
auto shielded(duration limit, F&& fn) {
  cancel_scope scope(detail::deadline_after(limit), /*shield=*/true);
  using R = std::decay_t<std::invoke_result_t<F&>>;
  if constexpr (std::is_void_v<R>) {
    scope.run([&] { fn(); });
    return !scope.cancelled_caught();
  } else {
    return scope.run([&]() -> R { return fn(); });
  }
}

template <class F>
auto ignore_cancellation(F&& fn) {
  cancel_scope shield(inf_time, true);
  using R = std::decay_t<std::invoke_result_t<F&>>;
  // A shield scope is never cancelled itself, so it never catches anything:
  // the optional is always engaged when the body returns.
  if constexpr (std::is_void_v<R>)
    shield.run([&] { fn(); });
  else
    return *shield.run([&]() -> R { return fn(); });
}

}  // namespace weft

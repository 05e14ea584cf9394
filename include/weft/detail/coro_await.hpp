// Internal: what `co_await x` does inside weft::coro and
// weft::async_generator (their promises' await_transform). The rules are
// documented in coro.hpp.
#pragma once

#include <weft/awaitable.hpp>
#include <weft/detail/core.hpp>
#include <weft/lowlevel/asio_awaitable.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>

#include <coroutine>
#include <type_traits>
#include <utility>

namespace weft {

template <class T>
class coro;

namespace detail {

/// The drive of the running task, or nullptr.
coro_drive* current_drive() noexcept;
/// Registers `h` as the coroutine to resume when the foreign awaitable
/// completes; returns the handle to give the foreign awaitable instead.
/// @throws std::bad_alloc (the drive's first suspension makes a frame);
/// nothing has changed then.
std::coroutine_handle<> drive_intercept(coro_drive& drive, std::coroutine_handle<> h);
/// Undoes drive_intercept when the foreign awaitable did not suspend after all.
void drive_cancel_intercept(coro_drive& drive) noexcept;

/// Thrown at a co_await of an Asio awaitable or operation when no task runs
/// the coroutine. @throws std::logic_error, always.
[[noreturn]] void throw_asio_await_outside_task();

/// Wraps a foreign awaiter so that, when a fiber drives the coroutine, the
/// coroutine is resumed on that fiber rather than wherever the awaitable
/// completes (an Asio handler, another thread). W is the awaiter type, or a
/// reference to it when the awaitable is its own awaiter.
template <class W>
class on_fiber_awaiter {
 public:
  explicit on_fiber_awaiter(W&& w) : w_(std::forward<W>(w)) {}
  bool await_ready() { return w_.await_ready(); }
  template <class P>
  auto await_suspend(std::coroutine_handle<P> h) {
    coro_drive* drive = current_drive();
    using R = decltype(w_.await_suspend(h));
    if (drive == nullptr) return w_.await_suspend(h);
    // The driving task is about to wait: a checkpoint, even if the awaitable
    // would complete at once (nothing has been started yet).
    raise_if_cancelled_at_entry();
    std::coroutine_handle<> through = drive_intercept(*drive, h);
    if constexpr (std::is_void_v<R>) {
      w_.await_suspend(through);
    } else if constexpr (std::is_same_v<R, bool>) {
      const bool suspended = w_.await_suspend(through);
      if (!suspended) drive_cancel_intercept(*drive);
      return suspended;
    } else {
      return w_.await_suspend(through);  // symmetric transfer to some other coroutine
    }
  }
  decltype(auto) await_resume() { return w_.await_resume(); }

 private:
  W w_;
};

// Asio awaitables and operations are not stepped like foreign awaiters:
// the coroutine does not suspend at all. It runs on its task's fiber, so
// the fiber waits, in await_resume, exactly as greenback::await_ would
// from task code (the same checkpoint, cancellation forwarding and
// results); the drive never sees the wait.

/// `co_await aw` of an asio::awaitable: lowlevel::run_asio_awaitable.
template <class T, class Executor>
class asio_awaitable_awaiter {
 public:
  explicit asio_awaitable_awaiter(boost::asio::awaitable<T, Executor>&& aw) noexcept : aw_(std::move(aw)) {}
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  T await_resume() {
    if (!lowlevel::in_task()) throw_asio_await_outside_task();
    return lowlevel::run_asio_awaitable(std::move(aw_), "co_await of an asio::awaitable in a weft coroutine");
  }

 private:
  boost::asio::awaitable<T, Executor> aw_;
};

/// `co_await op` of an Asio async operation (timer.async_wait(asio::deferred)):
/// op(weft::use_fiber). Op is a reference type: the operation lives until
/// the end of the co_await expression, and the coroutine does not suspend.
template <class Op>
class asio_operation_awaiter {
 public:
  explicit asio_operation_awaiter(Op op) noexcept : op_(std::forward<Op>(op)) {}
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  decltype(auto) await_resume() {
    if (!lowlevel::in_task()) throw_asio_await_outside_task();
    return std::forward<Op>(op_)(use_fiber);
  }

 private:
  Op op_;
};

template <class T>
struct is_coro : std::false_type {};
template <class T>
struct is_coro<coro<T>> : std::true_type {};

template <class T>
struct is_asio_awaitable : std::false_type {};
template <class T, class Executor>
struct is_asio_awaitable<boost::asio::awaitable<T, Executor>> : std::true_type {};

template <class A>
inline constexpr bool dependent_false = false;

/// What transform_await returns after a failed static_assert, so that the
/// assertion is the only error: its value converts to whatever the
/// co_await's value is used as (declared only; never called).
struct unawaitable {
  struct any_value {
    template <class U>
    operator U() const;
  };
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  any_value await_resume() const noexcept { return {}; }
};

/// The awaiter of `co_await a` in a weft coroutine.
template <class A>
decltype(auto) transform_await(A&& a) {
  using plain = std::remove_cvref_t<A>;
  if constexpr (is_coro<plain>::value || requires { typename plain::weft_fiber_aware; }) {
    return std::forward<A>(a);  // weft's own awaiters: symmetric transfer
  } else if constexpr (is_asio_awaitable<plain>::value) {
    if constexpr (std::is_lvalue_reference_v<A> || std::is_const_v<std::remove_reference_t<A>>) {
      static_assert(dependent_false<A>,
                    "weft coroutine: an asio::awaitable is awaited once, as an rvalue: co_await std::move(aw)");
      return unawaitable{};
    } else {
      return asio_awaitable_awaiter(std::move(a));
    }
  } else if constexpr (awaitable<A&&>) {
    return on_fiber_awaiter<decltype(get_awaiter(std::forward<A>(a)))>(get_awaiter(std::forward<A>(a)));
  } else if constexpr (boost::asio::is_async_operation<A>::value) {
    return asio_operation_awaiter<A&&>(std::forward<A>(a));
  } else {
    static_assert(dependent_false<A>,
                  "weft coroutine: co_await needs a C++20 awaitable (await_ready/await_suspend/await_resume, or "
                  "operator co_await), a weft::coro, a boost::asio::awaitable, or an Asio async operation "
                  "(e.g. timer.async_wait(boost::asio::deferred)); this type is none of them");
    return unawaitable{};
  }
}

}  // namespace detail
}  // namespace weft

// weft::coro<T>: a lazy C++20 coroutine with symmetric transfer.
//
// A coro does nothing until it is awaited: `co_await` from another coroutine,
// or greenback::await_() from synchronous task code. Awaited from task code,
// its body runs on the task's fiber, so it may call weft's blocking functions
// (weft::sleep, locks, ...) directly; when it suspends on some other
// awaitable, it is resumed on that fiber again. Frames are recycled through a
// per-thread free list; calling a coroutine function allocates its frame
// (std::bad_alloc if memory runs out).
//
// What co_await accepts in a weft::coro (and a weft::async_generator):
//  - weft::coro and async generator steps: run by symmetric transfer.
//  - boost::asio::awaitable<T> (an rvalue) and Asio async operations
//    (`timer.async_wait(boost::asio::deferred)`, `async_read(s, buf,
//    deferred)`, any `op` for which `op(token)` starts the operation).
//    The coroutine runs on its task's fiber, so it waits for them as
//    synchronous task code does with greenback::await_: the coroutine does
//    not suspend, the fiber parks until the operation has finished, and
//    other tasks run meanwhile. The same rules apply: a checkpoint (in a
//    cancelled scope weft::cancelled is thrown before anything starts); a
//    cancellation of the task while it waits is forwarded to the operation
//    as Asio terminal cancellation, and when the operation then fails,
//    weft::cancelled comes out of the co_await. An asio::awaitable is
//    co_spawned on the runtime's io_context and starts at once
//    (lowlevel::run_asio_awaitable); an operation is run with
//    weft::use_fiber, so its error_code becomes a boost::system::system_error
//    and `as_tuple(deferred)` gives it as a value.
//    Where no task runs the coroutine (it was resumed from an Asio handler,
//    by a foreign coroutine, on a thread without a weft runtime), there is
//    no fiber to park: the co_await throws std::logic_error.
//  - Any other C++20 awaitable: the coroutine suspends, and when a task's
//    fiber drives it, it is resumed on that fiber wherever the awaitable
//    completes. A checkpoint when it suspends; such a wait cannot be
//    withdrawn: a cancellation that arrives meanwhile is delivered at the
//    next checkpoint.
//  - Anything else is a compile error (one static_assert that lists these).
#pragma once

#include <weft/awaitable.hpp>
#include <weft/detail/core.hpp>
#include <weft/detail/coro_await.hpp>
#include <weft/lowlevel/frame_pool.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace weft {

template <class T = void>
class coro;

namespace detail {

/// The context of a fiber driving a coroutine chain (greenback::await_):
/// foreign awaitables inside weft coroutines are made to resume the chain on
/// that fiber. Lives on the fiber's stack; see lib/core/coro.cpp.
class coro_drive;

/// Runs the not yet started coroutine `top` on the current task's fiber
/// until it is done, parking the fiber whenever the chain waits for a
/// foreign awaitable. Such waits cannot be withdrawn: a cancellation that
/// arrives meanwhile is delivered at the next checkpoint. `task` is the
/// running task (lowlevel::drive_coroutine checks that).
void drive_on_fiber(task_base& task, std::coroutine_handle<> top);

class coro_promise_base {
 public:
  static void* operator new(std::size_t size) { return lowlevel::frame_allocate(size); }
  static void operator delete(void* frame, std::size_t size) noexcept { lowlevel::frame_deallocate(frame, size); }

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct final_awaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      std::coroutine_handle<> next = h.promise().continuation_;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  // See "What co_await accepts" in the header comment (detail/coro_await.hpp).
  template <class A>
  decltype(auto) await_transform(A&& a) {
    return transform_await(std::forward<A>(a));
  }

  std::coroutine_handle<> continuation_;
  std::exception_ptr exception_;
};

template <class T>
class coro_promise final : public coro_promise_base {
 public:
  coro<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) {
    value_.emplace(std::forward<U>(v));
  }
  T take() {
    if (exception_) std::rethrow_exception(exception_);
    return std::move(*value_);
  }
  std::optional<T> value_;
};

template <>
class coro_promise<void> final : public coro_promise_base {
 public:
  coro<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (exception_) std::rethrow_exception(exception_);
  }
};

}  // namespace detail

namespace detail {
template <class T>
struct coro_awaiter;
}

template <class T>
class [[nodiscard]] coro {
 public:
  using promise_type = detail::coro_promise<T>;
  using handle_type = std::coroutine_handle<promise_type>;
  using value_type = T;

  coro() noexcept = default;
  explicit coro(handle_type h) noexcept : h_(h) {}
  coro(coro&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  coro& operator=(coro&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  ~coro() {
    if (h_) h_.destroy();
  }

  /// True if the coro holds a coroutine (not default-constructed, moved
  /// from or awaited).
  bool valid() const noexcept { return static_cast<bool>(h_); }
  /// True if the coroutine has finished, or the coro is empty.
  bool done() const noexcept { return !h_ || h_.done(); }

  /// Awaiting a coro runs it (symmetric transfer) and yields its value or
  /// rethrows its exception. A coro is awaited at most once: awaiting moves
  /// it into the awaiter (the coro is empty afterwards). Not a checkpoint by
  /// itself; what the coroutine does may be.
  /// @throws (at the co_await) whatever the coroutine throws, the same
  /// object (weft::cancelled when one of its waits was cancelled);
  /// std::invalid_argument if the coro is empty (already awaited, moved
  /// from, default-constructed).
  auto operator co_await() && noexcept { return detail::coro_awaiter<T>{std::move(*this)}; }
  auto operator co_await() & noexcept { return std::move(*this).operator co_await(); }

  /// The coroutine handle, for drivers (greenback::await_).
  handle_type handle() const noexcept { return h_; }

 private:
  handle_type h_;
};

/// True for weft::coro types (whatever their cv-ref qualification).
template <class T>
inline constexpr bool is_coro_v = detail::is_coro<std::remove_cvref_t<T>>::value;

namespace lowlevel {
/// Runs the coroutine `top`, not yet started, on the current task's fiber
/// until it is done (what greenback::await_ does with a weft::coro): weft's
/// blocking calls and co_await of Asio work inside it, and whenever the
/// coroutine chain suspends on some other awaitable the fiber parks until
/// that awaitable resumes the chain, which then continues on the fiber.
/// Such a wait cannot be withdrawn: a cancellation that arrives meanwhile
/// is delivered at the next checkpoint. The coroutine's result, or its
/// exception, stays in its promise: nothing the coroutine throws comes out
/// of this call.
/// @throws std::logic_error outside a weft task. (Memory for the drive's
/// first suspension is allocated at that co_await: std::bad_alloc comes
/// out there, inside the coroutine.)
void drive_coroutine(std::coroutine_handle<> top);
}  // namespace lowlevel

namespace detail {
template <class T>
struct coro_awaiter {
  using weft_fiber_aware = void;  // resumes its caller by symmetric transfer
  coro<T> owned;
  bool await_ready() const noexcept { return !owned.valid(); }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
    owned.handle().promise().continuation_ = caller;
    return owned.handle();
  }
  T await_resume() {
    if (!owned.valid()) throw std::invalid_argument("weft::coro: awaiting an empty coroutine (already awaited?)");
    return owned.handle().promise().take();
  }
};

template <class T>
coro<T> coro_promise<T>::get_return_object() noexcept {
  return coro<T>(std::coroutine_handle<coro_promise<T>>::from_promise(*this));
}
inline coro<void> coro_promise<void>::get_return_object() noexcept {
  return coro<void>(std::coroutine_handle<coro_promise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace weft

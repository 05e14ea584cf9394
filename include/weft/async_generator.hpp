// weft::async_generator<T, S>: a coroutine that co_yields values and co_awaits.
//
//   weft::async_generator<int> count(int n) {
//     for (int i = 0; i < n; ++i) { weft::sleep(1s); co_yield i; }  // on a task's fiber: blocking calls work
//   }
//   while (auto v = co_await gen.next()) use(*v);      // from a coroutine
//   for (int v : greenback::async_iter(gen)) use(v);   // from task code
//
// The protocol of an *async iterator* in weft: `next()` returns an awaitable
// of std::optional<T> (empty at the end). Async generators also have
// send(s) (the value of the co_yield expression, as std::optional<S>),
// throw_(e) (e is thrown at the co_yield) and close() (weft::generator_exit
// is thrown at the co_yield; the generator may clean up, must not yield
// again). Like weft::coro, a generator driven from a fiber runs on it, and
// its body may co_await what a weft::coro may (coro.hpp: weft coroutines,
// C++20 awaitables, asio::awaitable, Asio operations).
//
// Before the first next() the generator has not run and stands at no
// co_yield (Python's async generators behave the same):
//  - send(s) throws std::logic_error: nothing would receive the value;
//  - throw_(e) ends the generator without running it, and awaiting the
//    step throws e;
//  - close() ends it without running it.
// A generator has one consumer at a time: next(), send(), throw_() or
// close() while a step is running (a second task consuming the same
// generator while the first waits in it) throws weft::busy_resource_error
// and leaves the running step alone.
//
// Calling a generator function allocates its frame (recycled per thread):
// std::bad_alloc if memory runs out.
#pragma once

#include <weft/coro.hpp>
#include <weft/errors.hpp>

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft {

/// Thrown into an async generator at its co_yield by close(). Not derived
/// from std::exception, so catch (const std::exception&) does not swallow it.
class generator_exit final {
 public:
  const char* what() const noexcept { return "the async generator was closed"; }
};

namespace detail {
/// A step of a generator was asked for while another step of it runs.
/// @throws weft::busy_resource_error, always.
[[noreturn]] void throw_generator_busy(const char* what);
/// send() before the first next(). @throws std::logic_error, always.
[[noreturn]] void throw_send_before_start();
}  // namespace detail

template <class T, class S = void>
class async_generator {
  using sent_t = std::conditional_t<std::is_void_v<S>, std::monostate, S>;

 public:
  class promise_type : public detail::coro_promise_base {
   public:
    async_generator get_return_object() noexcept {
      return async_generator(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    void return_void() noexcept {}

    struct yield_awaiter {
      promise_type& p;
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
        std::coroutine_handle<> next = p.continuation_;
        return next ? next : std::noop_coroutine();
      }
      auto await_resume() {
        p.at_yield_ = false;
        if (p.thrown_in_) std::rethrow_exception(std::exchange(p.thrown_in_, nullptr));
        if constexpr (std::is_void_v<S>)
          return;
        else
          return std::exchange(p.sent_, std::nullopt);
      }
    };
    template <class U>
      requires std::is_constructible_v<T, U&&>
    yield_awaiter yield_value(U&& v) {
      current_.emplace(std::forward<U>(v));
      at_yield_ = true;
      return yield_awaiter{*this};
    }

    // Between two steps the generator is not started, at a co_yield, or
    // done; during a step it is running (started, not at a co_yield).
    bool running() const noexcept { return started_ && !at_yield_; }

    std::optional<T> current_;
    std::optional<sent_t> sent_;
    std::exception_ptr thrown_in_;
    bool started_ = false;   // resumed at least once
    bool at_yield_ = false;  // suspended at a co_yield
    bool closed_ = false;    // ended before it ever ran (close or throw_ before the first next)
  };
  using handle_type = std::coroutine_handle<promise_type>;

  async_generator() noexcept = default;
  explicit async_generator(handle_type h) noexcept : h_(h) {}
  async_generator(async_generator&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  async_generator& operator=(async_generator&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  ~async_generator() {
    if (h_) h_.destroy();
  }

  /// True once the generator has finished (returned, thrown, or ended by
  /// close() or throw_() before it ran), and for an empty generator.
  bool done() const noexcept { return !h_ || h_.done() || h_.promise().closed_; }

  /// The next value, or empty when the generator has finished. The step
  /// runs the generator up to its next co_yield or its end; not a
  /// checkpoint by itself (what the generator does may be). Each returned
  /// awaitable is awaited once.
  /// @throws (awaiting it) the exception the generator ends with, once (the
  /// same object; weft::cancelled when a blocking call in it was
  /// cancelled); weft::busy_resource_error if another step of the
  /// generator is running.
  auto next() { return step{h_}; }

  /// Resumes the generator with `s` as the value of the co_yield expression
  /// it stands at; returns the next value, as next() does. On a finished
  /// generator it sends nothing and the step is empty.
  /// @throws std::logic_error before the first next() (the generator stands
  /// at no co_yield: nothing would receive `s`);
  /// weft::busy_resource_error if a step of the generator is running;
  /// (awaiting it) what next() throws.
  auto send(sent_t s)
    requires(!std::is_void_v<S>)
  {
    if (!done()) {
      auto& p = h_.promise();
      if (!p.at_yield_) {
        if (p.running()) detail::throw_generator_busy("send");
        detail::throw_send_before_start();
      }
      p.sent_.emplace(std::move(s));
    }
    return step{h_};
  }

  /// Throws `e` into the generator at its co_yield; returns the next value
  /// if the generator catches it and yields again. Into a finished
  /// generator, or one that has not started (which then ends without
  /// running), `e` is thrown back at once.
  /// @throws weft::busy_resource_error if a step of the generator is
  /// running; (awaiting it) `e` when the generator does not catch it, or
  /// any other exception the generator ends with.
  auto throw_(std::exception_ptr e) {
    if (done()) return step{h_, std::move(e)};
    auto& p = h_.promise();
    if (!p.started_) {
      p.closed_ = true;
      return step{h_, std::move(e)};
    }
    if (!p.at_yield_) detail::throw_generator_busy("throw_");
    p.thrown_in_ = std::move(e);
    return step{h_};
  }

  /// Closes the generator: weft::generator_exit is thrown at its co_yield,
  /// and the generator may clean up (a checkpoint only through what it
  /// does). A generator that never started ends without running; closing
  /// a finished one does nothing.
  /// @throws (awaiting it) std::logic_error if the generator yields again;
  /// any exception other than generator_exit that it raises while closing;
  /// weft::busy_resource_error if a step of the generator is running.
  auto close() { return closer{h_}; }

 private:
  struct step {
    using weft_fiber_aware = void;  // resumes its caller by symmetric transfer
    handle_type h;
    std::exception_ptr rethrow_now = nullptr;  // throw_ on a finished or unstarted generator
    bool await_ready() const {
      if (!h || h.done() || h.promise().closed_ || rethrow_now != nullptr) return true;
      if (h.promise().running()) detail::throw_generator_busy("next");
      return false;
    }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
      auto& p = h.promise();
      p.continuation_ = caller;
      p.current_.reset();
      p.started_ = true;
      return h;
    }
    std::optional<T> await_resume() {
      if (rethrow_now) std::rethrow_exception(rethrow_now);
      if (!h || h.promise().closed_) return std::nullopt;
      auto& p = h.promise();
      if (h.done()) {
        if (p.exception_) std::rethrow_exception(std::exchange(p.exception_, nullptr));
        return std::nullopt;
      }
      return std::exchange(p.current_, std::nullopt);
    }
  };
  struct closer {
    using weft_fiber_aware = void;
    handle_type h;
    bool await_ready() const noexcept { return !h || h.done() || !h.promise().at_yield_; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) {
      auto& p = h.promise();
      p.continuation_ = caller;
      p.thrown_in_ = std::make_exception_ptr(generator_exit{});
      return h;
    }
    void await_resume() {
      if (!h) return;
      auto& p = h.promise();
      if (!h.done()) {
        if (!p.at_yield_) {
          if (p.running()) detail::throw_generator_busy("close");
          p.closed_ = true;  // never started: nothing runs, it just ends
          return;
        }
        throw std::logic_error("weft::async_generator: the generator yielded a value after close()");
      }
      if (p.exception_) {
        std::exception_ptr e = std::exchange(p.exception_, nullptr);
        try {
          std::rethrow_exception(e);
        } catch (const generator_exit&) {
          return;  // the expected way to end
        }
      }
    }
  };
  handle_type h_;
};

}  // namespace weft

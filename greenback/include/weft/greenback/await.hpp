// greenback::await_: synchronous task code waiting for asynchronous code.
//
//   std::string body = greenback::await_(client.fetch(url));        // asio::awaitable<std::string>
//   greenback::await_(timer.async_wait(boost::asio::deferred));       // an Asio operation
//   int n = greenback::await_(compute());                             // a weft::coro<int>
//
// await_ accepts weft::coro and weft::async_generator steps (weft's own
// coroutine types), asio::awaitable, Asio async operations, and any C++20
// awaitable. It works where there is a portal (portal.hpp): in task code.
#pragma once

#include <weft/awaitable.hpp>
#include <weft/coro.hpp>
#include <weft/errors.hpp>
#include <weft/greenback/portal.hpp>
#include <weft/lowlevel/asio.hpp>
#include <weft/lowlevel/completion.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace greenback {

namespace detail {
template <class A>
using value_t = std::decay_t<weft::await_result_t<A>>;

// Turns any awaitable into a weft::coro, whose foreign suspensions resume on
// the driving fiber.
template <class A>
weft::coro<value_t<A&&>> as_coro(A&& aw) {
  if constexpr (std::is_void_v<value_t<A&&>>)
    co_await std::forward<A>(aw);
  else
    co_return co_await std::forward<A>(aw);
}
}  // namespace detail

/// Runs a weft coroutine to completion from synchronous task code and returns
/// its value (or rethrows its exception, unchanged). The coroutine runs on
/// this task's fiber: weft's blocking calls work inside it, and cancelling
/// the task cancels them. A coroutine that completes without suspending does
/// not yield. Checkpoint only through what the coroutine does.
/// @throws whatever the coroutine throws; no_portal_error without a portal.
template <class T>
T await_(weft::coro<T>&& c) {
  detail::require_portal("greenback::await_");
  weft::coro<T> owned = std::move(c);  // awaited once: the caller's coro is empty afterwards
  if (!owned.valid()) throw std::invalid_argument("greenback::await_: the coroutine is empty (already awaited?)");
  weft::lowlevel::drive_coroutine(owned.handle());
  return owned.handle().promise().take();
}
template <class T>
T await_(weft::coro<T>& c) {
  return await_(std::move(c));
}

/// Awaits any C++20 awaitable from synchronous task code (`co_await aw`
/// without being a coroutine). A checkpoint when the awaitable suspends
/// (await_ready() is false): in a cancelled scope weft::cancelled is thrown
/// before await_suspend starts anything. An awaitable that offers no way to cancel is
/// waited for to the end; a cancellation that arrives meanwhile is
/// delivered at the next checkpoint. The value is returned by value.
template <class A>
  requires(weft::awaitable<A &&> && !weft::is_coro_v<A>)
auto await_(A&& aw) {
  return await_(detail::as_coro(std::forward<A>(aw)));
}

namespace detail {
// The outcome of an asio::awaitable run by await_, and the co_spawn
// completion handler that stores it. Move-only: destroyed without being
// called (the coroutine was destroyed unfinished, e.g. with the io_context
// of an operation it awaited), it marks the wait abandoned.
template <class T>
struct awaitable_state {
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<T>, std::monostate, T>> value;
  weft::lowlevel::completion done;
  std::atomic<bool> finished{false};
  bool abandoned = false;
};

template <class T>
class awaitable_handler {
 public:
  explicit awaitable_handler(awaitable_state<T>* s) noexcept : s_(s) {}
  awaitable_handler(awaitable_handler&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  awaitable_handler(const awaitable_handler&) = delete;
  awaitable_handler& operator=(const awaitable_handler&) = delete;
  ~awaitable_handler() {
    if (s_ != nullptr) {
      s_->abandoned = true;
      s_->done.complete();
    }
  }
  void operator()(std::exception_ptr e) requires std::is_void_v<T> {
    awaitable_state<T>* s = std::exchange(s_, nullptr);
    s->error = e;
    s->value.emplace();
    finish(s);
  }
  template <class V>
  void operator()(std::exception_ptr e, V&& v) requires(!std::is_void_v<T>) {
    awaitable_state<T>* s = std::exchange(s_, nullptr);
    s->error = e;
    if (!e) s->value.emplace(std::forward<V>(v));
    finish(s);
  }

 private:
  static void finish(awaitable_state<T>* s) noexcept {
    s->finished.store(true, std::memory_order_release);
    s->done.complete();  // last: the task may resume at once
  }
  awaitable_state<T>* s_;
};
}  // namespace detail

/// Runs an asio::awaitable to completion from synchronous task code. It is
/// co_spawned on the runtime's io_context and runs there (in Asio handler
/// context, where there is no portal). It starts at once: up to its first
/// suspension it runs inside await_, as if await_ were an Asio handler
/// (dispatches to the io_context run inline, posts are queued; no portal).
/// A cancellation of the waiting task is forwarded to it as Asio terminal
/// cancellation through the co_spawn cancellation slot, and await_ returns
/// only once the coroutine has finished: nothing is left running. If the
/// coroutine then ends with an exception, weft::cancelled is thrown
/// instead; if it returns a value regardless, the value is returned and the
/// cancellation is delivered at the next checkpoint. Checkpoint: in a
/// cancelled scope it throws before the coroutine starts.
/// @throws the coroutine's exception; weft::cancelled; weft::abandoned_error
/// if the coroutine is destroyed unfinished; no_portal_error without a portal.
template <class T, class Executor>
T await_(boost::asio::awaitable<T, Executor> aw) {
  detail::require_portal("greenback::await_");
  weft::lowlevel::raise_if_cancelled();  // a checkpoint before the coroutine starts
  detail::awaitable_state<T> s;
  weft::lowlevel::operation_signal signal;  // outlives the coroutine: await_ waits for it to finish
  auto& io = weft::lowlevel::io_context();
  weft::lowlevel::run_as_asio_handler(io, [&] {
    boost::asio::co_spawn(io, std::move(aw),
                          boost::asio::bind_cancellation_slot(signal->slot(), detail::awaitable_handler<T>(&s)));
  });
  bool cancel_requested = false;
  auto abort = [&]() noexcept {
    if (!cancel_requested) {  // once: park() asks again while the coroutine finishes
      cancel_requested = true;
      // From a handler of the coroutine's io_context, where co_spawn's
      // cancellation handler emits at once (never after the coroutine ended).
      weft::lowlevel::forward_cancellation(io.get_executor(), s.done, signal.get(), s.finished);
    }
    return weft::lowlevel::abort_result::failed;  // wait for the coroutine to finish
  };
  s.done.wait(abort, "await_ of an asio::awaitable");
  if (s.abandoned) weft::lowlevel::throw_abandoned("greenback::await_");
  if (s.error) {
    if (cancel_requested) weft::lowlevel::raise_if_cancelled();
    std::rethrow_exception(s.error);
  }
  if constexpr (!std::is_void_v<T>) return std::move(*s.value);
}

/// Runs an Asio async operation (e.g. one made with asio::deferred) from
/// synchronous task code: op(weft::use_fiber), with use_fiber's checkpoint
/// and cancellation rules. @throws what use_fiber throws; no_portal_error
/// without a portal.
template <class Op>
  requires(boost::asio::is_async_operation<Op>::value && !weft::awaitable<Op &&>)
auto await_(Op&& op) {
  detail::require_portal("greenback::await_");
  return std::forward<Op>(op)(weft::use_fiber);
}

}  // namespace greenback

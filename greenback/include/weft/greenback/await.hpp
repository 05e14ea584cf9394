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
#include <weft/lowlevel/asio_awaitable.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>

#include <stdexcept>
#include <type_traits>
#include <utility>

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
/// cancelled scope it throws before the coroutine starts. This is
/// weft::lowlevel::run_asio_awaitable, which `co_await aw` inside a
/// weft::coro also uses.
/// @throws the coroutine's exception; weft::cancelled; weft::abandoned_error
/// if the coroutine is destroyed unfinished; no_portal_error without a portal.
template <class T, class Executor>
T await_(boost::asio::awaitable<T, Executor> aw) {
  detail::require_portal("greenback::await_");
  return weft::lowlevel::run_asio_awaitable(std::move(aw), "greenback::await_");
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

// greenback::await_ for Asio: asio::awaitable<T> and Asio async operations.
//
//   std::string body = greenback::await_(client.fetch(url));         // asio::awaitable<std::string>
//   greenback::await_(timer.async_wait(boost::asio::deferred));        // a deferred operation
//
// An asio::awaitable is co_spawned on the runtime's io_context and runs
// there (in Asio handler context, where there is no portal). A cancellation
// of the waiting task is forwarded to it as Asio terminal cancellation
// through the co_spawn cancellation slot, and await_ returns only once the
// coroutine has finished: nothing is left running. If the coroutine then
// ends with an exception, `weft::cancelled` is thrown instead; if it returns
// a value regardless, the value is returned and the cancellation is
// delivered at the next checkpoint. Async operations are run with
// weft::use_fiber (see <weft/use_fiber.hpp>), with the same cancellation rules.
#pragma once

#include <weft/greenback/greenback.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace greenback {

/// Runs an asio::awaitable to completion from synchronous task code; see
/// the header comment. @throws the coroutine's exception; weft::cancelled;
/// no_portal_error without a portal.
template <class T, class Executor>
T await_(boost::asio::awaitable<T, Executor> aw) {
  detail::require_portal("greenback::await_");
  struct state {
    std::exception_ptr error;
    std::optional<std::conditional_t<std::is_void_v<T>, std::monostate, T>> value;
    weft::lowlevel::task_ref task;
    bool done = false;
    bool parked = false;
    void finish() {
      done = true;
      if (parked) {
        parked = false;
        weft::lowlevel::reschedule(task);
      }
    }
  } s;
  s.task = weft::lowlevel::current_task();
  boost::asio::cancellation_signal signal;
  auto& io = weft::lowlevel::io_context();
  if constexpr (std::is_void_v<T>) {
    boost::asio::co_spawn(io, std::move(aw), boost::asio::bind_cancellation_slot(signal.slot(), [&s](std::exception_ptr e) {
                            s.error = e;
                            s.value.emplace();
                            s.finish();
                          }));
  } else {
    boost::asio::co_spawn(io, std::move(aw),
                          boost::asio::bind_cancellation_slot(signal.slot(), [&s](std::exception_ptr e, T v) {
                            s.error = e;
                            if (!e) s.value.emplace(std::move(v));
                            s.finish();
                          }));
  }
  bool cancel_requested = false;
  while (!s.done) {
    s.parked = true;
    auto abort = [&]() noexcept {
      cancel_requested = true;
      signal.emit(boost::asio::cancellation_type::terminal);
      return weft::detail::abort_result::failed;  // wait for the coroutine to finish
    };
    weft::lowlevel::park(abort);
  }
  if (s.error) {
    if (cancel_requested) weft::lowlevel::raise_if_cancelled();
    std::rethrow_exception(s.error);
  }
  if constexpr (!std::is_void_v<T>) return std::move(*s.value);
}

/// Runs an Asio async operation (e.g. one made with asio::deferred) from
/// synchronous task code: op(weft::use_fiber).
template <class Op>
  requires(boost::asio::is_async_operation<Op>::value && !weft::detail::awaitable<Op &&>)
auto await_(Op&& op) {
  detail::require_portal("greenback::await_");
  return std::forward<Op>(op)(weft::use_fiber);
}

}  // namespace greenback

// weft::lowlevel::run_asio_awaitable: a task waits for an asio::awaitable.
//
// The one implementation behind greenback::await_(asio::awaitable) and
// `co_await aw` inside a weft::coro or weft::async_generator that runs on a
// task's fiber.
//
// Contract of run_asio_awaitable(aw, what), called in task code:
//  - A checkpoint: in a cancelled scope it throws weft::cancelled and `aw`
//    never starts.
//  - `aw` is co_spawned on the runtime's io_context and starts at once: up
//    to its first suspension it runs inside the call, as if from an Asio
//    handler (run_as_asio_handler: no task is current, dispatches to the
//    io_context run inline, posts are queued). Then the task parks until
//    the coroutine has finished; it runs on the io_context, on the
//    runtime's thread, between task switches.
//  - A cancellation of the task while it waits is forwarded to the
//    coroutine as Asio terminal cancellation through co_spawn's
//    cancellation slot, emitted from a handler of the io_context. The call
//    returns only once the coroutine has finished: nothing is left running.
//    If the coroutine then ends with an exception, weft::cancelled is thrown
//    instead; if it returns a value regardless, the value is returned and
//    the cancellation is delivered at the next checkpoint.
//  - The coroutine's exception comes out unchanged (the same object). If
//    the coroutine is destroyed unfinished (its completion handler is
//    destroyed without being called, e.g. with the io_context of an
//    operation it awaited), weft::abandoned_error naming `what` is thrown.
//  - No allocation beyond the coroutine's own frames (co_spawn's state uses
//    Asio's recycling allocator); the cancellation signal is pooled
//    (operation_signal).
#pragma once

#include <weft/lowlevel/asio.hpp>
#include <weft/lowlevel/completion.hpp>
#include <weft/lowlevel/park.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft::detail {

// The outcome of an asio::awaitable run by run_asio_awaitable, and the
// co_spawn completion handler that stores it. Move-only: destroyed without
// being called (the coroutine was destroyed unfinished), it marks the wait
// abandoned.
template <class T>
struct awaitable_state {
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<T>, std::monostate, T>> value;
  lowlevel::completion done;
  std::atomic<bool> finished{false};  // the handler ran (read by a forwarded cancellation)
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
  void operator()(std::exception_ptr e)
    requires std::is_void_v<T>
  {
    awaitable_state<T>* s = std::exchange(s_, nullptr);
    s->error = e;
    s->value.emplace();
    finish(s);
  }
  template <class V>
  void operator()(std::exception_ptr e, V&& v)
    requires(!std::is_void_v<T>)
  {
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

}  // namespace weft::detail

namespace weft::lowlevel {

/// Runs `aw` to its end on the runtime's io_context while the current task
/// parks; see the header comment. `what` names the caller in
/// weft::abandoned_error (a string that outlives the call). A checkpoint.
/// @throws the coroutine's exception; weft::cancelled (in a cancelled
/// scope before it starts, or when the coroutine ends with an exception
/// after a forwarded cancellation); weft::abandoned_error if the coroutine
/// is destroyed unfinished; std::logic_error outside a weft task.
template <class T, class Executor>
T run_asio_awaitable(boost::asio::awaitable<T, Executor>&& aw, const char* what) {
  raise_if_cancelled();  // a checkpoint before the coroutine starts
  detail::awaitable_state<T> s;
  operation_signal signal;  // outlives the coroutine: we wait for it to finish
  auto& io = io_context();
  run_as_asio_handler(io, [&] {
    boost::asio::co_spawn(io, std::move(aw),
                          boost::asio::bind_cancellation_slot(signal->slot(), detail::awaitable_handler<T>(&s)));
  });
  bool cancel_requested = false;
  auto abort = [&]() noexcept {
    if (!cancel_requested) {  // once: park() asks again while the coroutine finishes
      cancel_requested = true;
      // From a handler of the coroutine's io_context, where co_spawn's
      // cancellation handler emits at once (never after the coroutine ended).
      forward_cancellation(io.get_executor(), s.done, signal.get(), s.finished);
    }
    return abort_result::failed;  // wait for the coroutine to finish
  };
  s.done.wait(abort, "an asio::awaitable");
  if (s.abandoned) throw_abandoned(what);
  if (s.error) {
    if (cancel_requested) raise_if_cancelled();
    std::rethrow_exception(s.error);
  }
  if constexpr (!std::is_void_v<T>) return std::move(*s.value);
}

}  // namespace weft::lowlevel

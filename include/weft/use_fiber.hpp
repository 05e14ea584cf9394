// weft::use_fiber: an Asio completion token that parks the calling task.
//
//   std::size_t n = socket.async_read_some(buffer, weft::use_fiber);
//   timer.async_wait(weft::use_fiber[ec]);     // errors into ec, no throw
//   boost::asio::post(pool, weft::use_fiber);  // hop to a thread pool and back
//
// Any Asio-based asynchronous operation called with weft::use_fiber from a
// weft task blocks that task (not the thread) until the operation completes,
// then returns its result. A checkpoint: in a cancelled scope it throws
// `weft::cancelled` before starting the operation; a cancellation of the task while it
// waits is forwarded to the operation as Asio terminal cancellation through
// the handler's cancellation slot; when the operation then ends with
// operation_aborted, `weft::cancelled` is thrown (with the `[ec]` form too).
// If the operation completes successfully anyway, its result is returned and
// the cancellation is delivered at the next checkpoint.
//
// Executors: all of them. The operation may belong to the task's own
// runtime, another weft runtime's io_context, an asio::thread_pool, a strand,
// or any other executor, and complete on whatever thread that executor
// uses. A completion on the task's own runtime thread wakes the task
// directly; one on any other thread is handed to the task's runtime (see
// lowlevel/completion.hpp: one asio::post per batch of such completions, no
// allocation) and wakes the task there, exactly once. The forwarded
// cancellation is emitted on the operation's own executor (posted to the
// initiation's get_executor(), or to the task's runtime when the initiation
// names none), never from the wrong thread, and the task resumes only once
// that emit has run. As with Asio itself, an operation on a multi-threaded
// executor (a thread_pool without a strand) can be cancelled while it
// completes on another thread: give such operations a strand when they
// support cancellation. If the operation is destroyed without completing
// (its io_context destroyed, its thread_pool stopped and joined first),
// weft::abandoned_error is thrown instead of waiting forever.
//
// What the call given weft::use_fiber throws (it blocks the task until the
// operation completes; a checkpoint, as above):
//  - weft::cancelled: in a cancelled scope, before the operation starts;
//    after a cancellation forwarded to the operation, when the operation
//    ends with operation_aborted (with the [ec] form too) or, for a
//    completion signature that starts with std::exception_ptr, with any
//    exception;
//  - boost::system::system_error: the operation's error code (not with the
//    [ec] form, which stores it in its error_code instead);
//  - the operation's own exception, for a completion signature that starts
//    with std::exception_ptr (asio::co_spawn), with the [ec] form too;
//  - weft::abandoned_error: the operation was destroyed without completing;
//  - std::logic_error: outside a weft task (nothing is started then);
//  - what starting the operation throws, and std::bad_alloc (a
//    cancellation signal when the per-thread pool has none left).
#pragma once

#include <weft/detail/core.hpp>
#include <weft/lowlevel/asio.hpp>
#include <weft/lowlevel/completion.hpp>
#include <weft/lowlevel/frame_pool.hpp>
#include <weft/lowlevel/park.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace weft {

/// The completion token type; see the header comment.
struct use_fiber_t {
  boost::system::error_code* ec = nullptr;
  /// The same token, storing the operation's error code in `e` instead of
  /// throwing boost::system::system_error (weft::cancelled,
  /// weft::abandoned_error and an exception_ptr's exception are still
  /// thrown). `e` must outlive the call.
  constexpr use_fiber_t operator[](boost::system::error_code& e) const noexcept { return use_fiber_t{&e}; }
};

/// The completion token: the operation blocks the calling task and returns
/// its result. See the header comment for what it blocks on and throws.
inline constexpr use_fiber_t use_fiber{};

namespace detail {

using lowlevel::forward_cancellation;
using lowlevel::operation_signal;
using lowlevel::recycling_allocator;
using lowlevel::throw_abandoned;

/// The executor of the calling thread's runtime.
inline boost::asio::io_context::executor_type current_runtime_executor() {
  return lowlevel::io_context().get_executor();
}

template <class... Args>
struct fiber_completion_state {
  std::optional<std::tuple<std::decay_t<Args>...>> result;
  operation_signal signal;
  lowlevel::completion done;         // the task's thread learns of the completion through it
  std::atomic<bool> finished{false};  // the handler ran (read by a forwarded cancellation)
  bool abandoned = false;             // the handler was destroyed without being called
};

/// The handler given to the Asio operation: stores the result and completes
/// the wait, on whatever thread the operation completes. A handler that is
/// destroyed without being called (its executor shut down first) marks the
/// wait abandoned instead of leaving the task parked forever. Handlers may
/// be copied (code that keeps handlers in std::function does): copies are
/// not checked for abandonment, as any of them may be the one called.
template <class... Args>
class fiber_handler {
 public:
  explicit fiber_handler(fiber_completion_state<Args...>* s) noexcept : s_(s) {}
  fiber_handler(fiber_handler&& o) noexcept : s_(std::exchange(o.s_, nullptr)), copied_(o.copied_) {}
  fiber_handler(const fiber_handler& o) noexcept : s_(o.s_), copied_(true) { o.copied_ = true; }
  fiber_handler& operator=(const fiber_handler&) = delete;
  ~fiber_handler() {
    if (s_ != nullptr && !copied_) {
      s_->abandoned = true;
      s_->done.complete();
    }
  }

  using cancellation_slot_type = boost::asio::cancellation_slot;
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return s_ != nullptr ? s_->signal->slot() : cancellation_slot_type();
  }
  // Operation memory is recycled per thread (the allocator's free lists
  // are thread-local; memory freed on another thread joins that thread's).
  using allocator_type = recycling_allocator<void>;
  allocator_type get_allocator() const noexcept { return {}; }

  template <class... A>
  void operator()(A&&... a) {
    fiber_completion_state<Args...>* s = std::exchange(s_, nullptr);
    WEFT_INVARIANT(s != nullptr);  // called once (a copy called twice is a bug of the operation)
    s->result.emplace(std::forward<A>(a)...);
    s->finished.store(true, std::memory_order_release);
    s->done.complete();  // last: the task may resume at once
  }

 private:
  fiber_completion_state<Args...>* s_;
  mutable bool copied_ = false;
};

/// The executor an initiation runs its operation on, if it says.
template <class Initiation>
concept has_executor = requires(Initiation& i) { i.get_executor(); };

/// Parks until the handler ran; forwards a cancellation to the operation,
/// on the operation's executor (the runtime's when the initiation does not
/// name one, or was consumed by starting the operation). Returns true if
/// the task was cancelled while waiting.
template <bool AskExecutor, class Initiation, class... Args>
bool wait_for_completion(Initiation& initiation, fiber_completion_state<Args...>& s) {
  bool cancel_requested = false;
  auto abort = [&]() noexcept {
    if (!cancel_requested) {  // once: park() asks again if the task waits on
      cancel_requested = true;
      if constexpr (AskExecutor)
        forward_cancellation(initiation.get_executor(), s.done, s.signal.get(), s.finished);
      else
        forward_cancellation(current_runtime_executor(), s.done, s.signal.get(), s.finished);
    }
    return abort_result::failed;  // the operation completes (aborted) and wakes us
  };
  s.done.wait(abort, "an Asio operation (use_fiber)");
  if (s.abandoned) throw_abandoned("weft::use_fiber");
  return cancel_requested;
}

template <class T>
constexpr bool is_error_code_v = std::is_same_v<std::decay_t<T>, boost::system::error_code>;
template <class T>
constexpr bool is_exception_ptr_v = std::is_same_v<std::decay_t<T>, std::exception_ptr>;

/// Converts the stored arguments into the operation's result.
template <class Tuple>
auto unpack_values(Tuple&& t) {
  constexpr std::size_t n = std::tuple_size_v<std::remove_cvref_t<Tuple>>;
  if constexpr (n == 0)
    return;
  else if constexpr (n == 1)
    return std::move(std::get<0>(t));
  else
    return std::move(t);
}

template <class First, class... Rest>
auto finish_completion(fiber_completion_state<First, Rest...>& s, bool cancel_requested, use_fiber_t token) {
  auto& all = *s.result;
  if constexpr (is_error_code_v<First>) {
    const boost::system::error_code ec = std::get<0>(all);
    if (cancel_requested && ec == boost::asio::error::operation_aborted) lowlevel::raise_if_cancelled();
    if (token.ec != nullptr)
      *token.ec = ec;
    else if (ec)
      throw boost::system::system_error(ec);
    return unpack_values(std::apply([](auto&&, auto&&... rest) { return std::make_tuple(std::move(rest)...); },
                                    std::move(all)));
  } else if constexpr (is_exception_ptr_v<First>) {
    std::exception_ptr e = std::get<0>(all);
    if (e) {
      if (cancel_requested) lowlevel::raise_if_cancelled();
      std::rethrow_exception(e);
    }
    return unpack_values(std::apply([](auto&&, auto&&... rest) { return std::make_tuple(std::move(rest)...); },
                                    std::move(all)));
  } else {
    return unpack_values(std::move(all));
  }
}

/// What use_fiber returns for a completion signature void(Args...): the
/// arguments after a leading error_code or exception_ptr; void, the one
/// value, or a tuple of them.
template <class... Values>
struct values_result {
  using type = std::tuple<std::decay_t<Values>...>;
};
template <>
struct values_result<> {
  using type = void;
};
template <class V>
struct values_result<V> {
  using type = std::decay_t<V>;
};
template <class... Args>
struct fiber_result : values_result<Args...> {};
template <class First, class... Rest>
  requires(is_error_code_v<First> || is_exception_ptr_v<First>)
struct fiber_result<First, Rest...> : values_result<Rest...> {};

template <class... Args, class Initiation>
typename fiber_result<Args...>::type run_with_fiber(Initiation&& initiation, use_fiber_t token, auto&&... init_args) {
  fiber_completion_state<Args...> s;  // @throws std::logic_error outside a task
  raise_if_cancelled_at_entry();     // a checkpoint before the operation starts
  // Called as an lvalue where it can be: a cancellation asks it for the
  // operation's executor later.
  constexpr bool as_lvalue = std::is_invocable_v<Initiation&, fiber_handler<Args...>, decltype(init_args)...>;
  if constexpr (as_lvalue)
    initiation(fiber_handler<Args...>(&s), std::forward<decltype(init_args)>(init_args)...);
  else
    std::move(initiation)(fiber_handler<Args...>(&s), std::forward<decltype(init_args)>(init_args)...);
  const bool cancel_requested = wait_for_completion<as_lvalue && has_executor<Initiation>>(initiation, s);
  if constexpr (sizeof...(Args) == 0) {
    (void)token;
    (void)cancel_requested;
  } else {
    return finish_completion(s, cancel_requested, token);
  }
}

}  // namespace detail
}  // namespace weft

namespace boost::asio {

template <class R, class... Args>
class async_result<weft::use_fiber_t, R(Args...)> {
 public:
  template <class Initiation, class... InitArgs>
  // The return type is spelled out, not deduced: overload resolution
  // (asio::deferred's const& operator()) must not instantiate the body.
  static typename weft::detail::fiber_result<Args...>::type initiate(Initiation&& initiation, weft::use_fiber_t token,
                                                                      InitArgs&&... args) {
    return weft::detail::run_with_fiber<Args...>(std::forward<Initiation>(initiation), token,
                                                 std::forward<InitArgs>(args)...);
  }
};

}  // namespace boost::asio

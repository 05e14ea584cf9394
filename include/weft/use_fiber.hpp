// weft::use_fiber: an Asio completion token that parks the calling task.
//
//   std::size_t n = socket.async_read_some(buffer, weft::use_fiber);
//   timer.async_wait(weft::use_fiber[ec]);     // errors into ec, no throw
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
#pragma once

#include <weft/detail/core.hpp>
#include <weft/lowlevel/park.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace weft {

/// The completion token type; see the header comment.
struct use_fiber_t {
  boost::system::error_code* ec = nullptr;
  /// The same token, reporting errors through `ec` instead of throwing.
  constexpr use_fiber_t operator[](boost::system::error_code& e) const noexcept { return use_fiber_t{&e}; }
};

inline constexpr use_fiber_t use_fiber{};

namespace detail {

boost::asio::cancellation_signal* acquire_op_signal();
void release_op_signal(boost::asio::cancellation_signal* s) noexcept;

/// A cancellation signal for one operation, lent from a per-thread pool:
/// the handler memory an operation installs in it is reused by the next
/// operation. Return it only once the operation has completed.
class pooled_signal {
 public:
  pooled_signal() : s_(acquire_op_signal()) {}
  ~pooled_signal() { release_op_signal(s_); }
  pooled_signal(const pooled_signal&) = delete;
  pooled_signal& operator=(const pooled_signal&) = delete;
  boost::asio::cancellation_signal* operator->() const noexcept { return s_; }

 private:
  boost::asio::cancellation_signal* s_;
};

template <class... Args>
struct fiber_completion_state {
  std::optional<std::tuple<std::decay_t<Args>...>> result;
  pooled_signal signal;
  lowlevel::task_ref task;
  bool parked = false;
};

void* coro_frame_allocate(std::size_t size);
void coro_frame_deallocate(void* frame, std::size_t size) noexcept;

/// Recycles operation memory through a per-thread free list: tasks start
/// Asio operations outside io_context::run, where Asio's own recycling
/// allocator falls back to operator new.
template <class T>
struct recycling_allocator {
  using value_type = T;
  recycling_allocator() noexcept = default;
  template <class U>
  recycling_allocator(const recycling_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(coro_frame_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { coro_frame_deallocate(p, n * sizeof(T)); }
  template <class U>
  friend bool operator==(const recycling_allocator&, const recycling_allocator<U>&) noexcept {
    return true;
  }
};

/// The handler given to the Asio operation: stores the result and wakes the task.
template <class... Args>
class fiber_handler {
 public:
  explicit fiber_handler(fiber_completion_state<Args...>* s) noexcept : s_(s) {}
  using cancellation_slot_type = boost::asio::cancellation_slot;
  cancellation_slot_type get_cancellation_slot() const noexcept { return s_->signal->slot(); }
  using allocator_type = recycling_allocator<void>;
  allocator_type get_allocator() const noexcept { return {}; }

  template <class... A>
  void operator()(A&&... a) {
    s_->result.emplace(std::forward<A>(a)...);
    if (s_->parked) {
      s_->parked = false;
      lowlevel::reschedule(s_->task);
    }
  }

 private:
  fiber_completion_state<Args...>* s_;
};

/// Parks until the handler ran; forwards a cancellation to the operation.
/// Returns true if the task was cancelled while waiting.
template <class... Args>
bool wait_for_completion(fiber_completion_state<Args...>& s) {
  bool cancel_requested = false;
  while (!s.result) {
    s.parked = true;
    auto abort = [&]() noexcept {
      cancel_requested = true;
      s.signal->emit(boost::asio::cancellation_type::terminal);
      return abort_result::failed;  // the operation completes (aborted) and wakes us
    };
    if (s.task.get()->wait_what_ == nullptr) describe_wait(*s.task.get(), "an Asio operation (use_fiber)");
    lowlevel::park(abort);
  }
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

template <class... Args>
auto run_with_fiber(auto&& initiation, use_fiber_t token, auto&&... init_args) {
  fiber_completion_state<Args...> s;
  s.task = lowlevel::current_task();
  raise_if_cancelled_at_entry();  // a checkpoint before the operation starts
  std::move(initiation)(fiber_handler<Args...>(&s), std::forward<decltype(init_args)>(init_args)...);
  const bool cancel_requested = wait_for_completion(s);
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
  static auto initiate(Initiation&& initiation, weft::use_fiber_t token, InitArgs&&... args) {
    return weft::detail::run_with_fiber<Args...>(std::forward<Initiation>(initiation), token,
                                                 std::forward<InitArgs>(args)...);
  }
};

}  // namespace boost::asio

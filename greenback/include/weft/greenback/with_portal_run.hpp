// with_portal_run_sync / with_portal_run: a coroutine that has no portal
// (an asio::awaitable, any coroutine running outside a fiber) runs
// synchronous code where greenback::await_ works.
//
//   co_await greenback::with_portal_run_sync(legacy_parse, bytes);  // in an asio::awaitable
#pragma once

#include <weft/cancel_scope.hpp>
#include <weft/greenback/await.hpp>
#include <weft/greenback/portal.hpp>
#include <weft/lowlevel/frame_pool.hpp>
#include <weft/lowlevel/park.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace greenback {

namespace detail {

template <class R>
struct fiber_outcome {
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>> value;
};

/// Work for a portal worker: a fiber (a system task of the runtime) that
/// runs functions on behalf of coroutines that have no fiber of their own.
/// Idle workers are kept and reused (see greenback.cpp).
struct portal_job {
  // Jobs come and go at every call: recycle their memory like coroutine frames.
  static void* operator new(std::size_t size) { return weft::lowlevel::frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { weft::lowlevel::frame_deallocate(p, size); }
  virtual ~portal_job() = default;
  /// Runs the function in `scope`, then arranges the completion (which
  /// deletes the job).
  void (*call)(portal_job* self, weft::cancel_scope& scope) noexcept = nullptr;
};

/// Hands `job` to an idle portal worker of this thread's runtime, or starts
/// one. @throws std::logic_error when no weft runtime runs on this thread.
void submit_portal_job(portal_job* job);

template <class R>
struct completion_signature {
  using type = void(std::exception_ptr, R);
};
template <>
struct completion_signature<void> {
  using type = void(std::exception_ptr);
};
template <class R>
using completion_signature_t = typename completion_signature<R>::type;

template <class R, class F>
fiber_outcome<R> call_in_scope(F& fn, weft::cancel_scope& scope) {
  fiber_outcome<R> out;
  try {
    if constexpr (std::is_void_v<R>) {
      scope.run([&] { fn(); });
      if (!scope.cancelled_caught()) out.value.emplace();
    } else {
      if (auto v = scope.run([&]() -> R { return fn(); })) out.value.emplace(std::move(*v));
    }
    if (scope.cancelled_caught())
      out.error = std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted,
                                                                      "greenback::with_portal_run_sync"));
  } catch (...) {
    out.error = std::current_exception();
  }
  return out;
}

// A job completing an Asio handler: cancellation through the handler's slot
// cancels the job's scope. The completion runs at the next pass of the
// runtime loop, outside the worker fiber (weft::lowlevel::call_soon).
template <class R, class F, class Handler>
struct asio_portal_job final : portal_job, weft::lowlevel::soon_call {
  asio_portal_job(F& f, Handler&& h) : fn(f), handler(std::move(h)) {
    call = &call_impl;
    weft::lowlevel::soon_call::fn = &complete;
  }
  static void call_impl(portal_job* base, weft::cancel_scope& scope) noexcept {
    auto* self = static_cast<asio_portal_job*>(base);
    auto slot = boost::asio::get_associated_cancellation_slot(self->handler);
    if (slot.is_connected()) slot.assign([&scope](boost::asio::cancellation_type) { scope.cancel(); });
    self->out = call_in_scope<R>(self->fn, scope);
    if (slot.is_connected()) slot.clear();
    weft::lowlevel::call_soon(*self);
  }
  static void complete(weft::lowlevel::soon_call* call) noexcept {
    std::unique_ptr<asio_portal_job> self(static_cast<asio_portal_job*>(call));
    if constexpr (std::is_void_v<R>)
      std::move(self->handler)(self->out.error);
    else
      std::move(self->handler)(self->out.error, self->out.value ? std::move(*self->out.value) : R{});
  }
  F& fn;
  Handler handler;
  fiber_outcome<R> out;
};

// A job resuming a C++ coroutine (one running outside any fiber).
template <class R, class F>
struct coroutine_portal_job final : portal_job, weft::lowlevel::soon_call {
  coroutine_portal_job(F& f, std::optional<fiber_outcome<R>>& o, std::coroutine_handle<> h)
      : fn(f), outcome(o), caller(h) {
    call = &call_impl;
    weft::lowlevel::soon_call::fn = &complete;
  }
  static void call_impl(portal_job* base, weft::cancel_scope& scope) noexcept {
    auto* self = static_cast<coroutine_portal_job*>(base);
    self->outcome = call_in_scope<R>(self->fn, scope);
    weft::lowlevel::call_soon(*self);
  }
  static void complete(weft::lowlevel::soon_call* call) noexcept {
    std::unique_ptr<coroutine_portal_job> self(static_cast<coroutine_portal_job*>(call));
    self->caller.resume();
  }
  F& fn;
  std::optional<fiber_outcome<R>>& outcome;
  std::coroutine_handle<> caller;
};

template <class R, class F>
class portal_call;

// The asio::awaitable side of portal_call: runs in Asio handler context,
// where there is no portal, so the function goes to a portal worker.
template <class R, class F>
boost::asio::awaitable<R> portal_asio_body(portal_call<R, F>* call) {
  auto initiation = [](auto handler, portal_call<R, F>* c) {
    submit_portal_job(new asio_portal_job<R, F, decltype(handler)>(c->fn_, std::move(handler)));
  };
  co_return co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, completion_signature_t<R>>(
      initiation, boost::asio::use_awaitable, call);
}

/// The object returned by with_portal_run_sync / with_portal_run. It is an
/// asio::awaitable (an asio coroutine can co_await it) and awaitable from
/// any other C++ coroutine. With a portal already present it calls straight
/// through; otherwise the function runs on a portal worker fiber, and a
/// cancellation of the awaiting coroutine (through its cancellation slot)
/// cancels the function, which then completes with operation_aborted.
/// Not movable: it is awaited where it is created.
template <class R, class F>
class portal_call : public boost::asio::awaitable<R> {
 public:
  explicit portal_call(F fn) : boost::asio::awaitable<R>(portal_asio_body<R, F>(this)), fn_(std::move(fn)) {}
  portal_call(const portal_call&) = delete;
  portal_call& operator=(const portal_call&) = delete;

  // C++20 awaitable protocol, for coroutines other than asio::awaitable.
  bool await_ready() const noexcept { return has_portal(); }
  void await_suspend(std::coroutine_handle<> h) { submit_portal_job(new coroutine_portal_job<R, F>(fn_, outcome_, h)); }
  R await_resume() {
    if (!outcome_) return fn_();  // a portal is present: call through
    if (outcome_->error) std::rethrow_exception(outcome_->error);
    if constexpr (!std::is_void_v<R>) return std::move(*outcome_->value);
  }

 private:
  template <class R2, class F2>
  friend boost::asio::awaitable<R2> portal_asio_body(portal_call<R2, F2>*);
  F fn_;
  std::optional<fiber_outcome<R>> outcome_;
};

template <class F, class... Args>
auto bind_call(F&& fn, Args&&... args) {
  // Called at most once: the arguments are moved into the call.
  return [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable -> decltype(auto) {
    return std::invoke(std::move(fn), std::move(args)...);
  };
}

}  // namespace detail

/// Runs sync_fn(args...) where await_ works. With a portal (task code, or a
/// weft coroutine on a fiber) it calls straight through, with no extra
/// checkpoint; from a coroutine running outside any fiber, `co_await` runs it
/// on a portal worker (a pooled fiber of the runtime: a fiber switch) and hands back its value or exception.
/// Arguments are copied or moved into the call.
template <class F, class... Args>
auto with_portal_run_sync(F&& sync_fn, Args&&... args) {
  auto call = detail::bind_call(std::forward<F>(sync_fn), std::forward<Args>(args)...);
  using R = std::invoke_result_t<decltype(call)&>;
  return detail::portal_call<R, decltype(call)>(std::move(call));
}

/// Runs `await async_fn(args...)` where await_ works (see
/// with_portal_run_sync); async_fn returns any awaitable.
template <class F, class... Args>
auto with_portal_run(F&& async_fn, Args&&... args) {
  auto call = detail::bind_call(std::forward<F>(async_fn), std::forward<Args>(args)...);
  return with_portal_run_sync([call = std::move(call)]() mutable { return await_(call()); });
}

/// with_portal_run, and every task started (recursively) inside gets a
/// portal too. In weft every task has one, so this equals with_portal_run.
template <class F, class... Args>
auto with_portal_run_tree(F&& async_fn, Args&&... args) {
  return with_portal_run(std::forward<F>(async_fn), std::forward<Args>(args)...);
}

}  // namespace greenback

// greenback for weft: portals between synchronous task code and C++ coroutines.
//
// A *portal* is what lets synchronous code wait for asynchronous code:
// greenback::await_(aw) called from plain synchronous code parks the task's
// fiber while `aw` runs, then returns its value or rethrows its exception.
// Every weft task runs on its own fiber, so every task has a portal: in task
// code await_ always works, at any depth of synchronous calls. There is no
// portal in an Asio completion handler, in a coroutine running outside any
// fiber (an asio::awaitable co_spawned on the runtime), or on a thread that
// runs no weft runtime; await_ there throws greenback::no_portal_error.
// From such a coroutine, `co_await greenback::with_portal_run_sync(fn)` runs
// fn on a fresh fiber, where await_ works.
//
// await_ accepts weft::coro and weft::async_generator steps (weft's own
// coroutine types), asio::awaitable, Asio async operations, and any C++20
// awaitable.
#pragma once

#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>
#include <weft/async_generator.hpp>
#include <weft/coro.hpp>
#include <weft/detail/core.hpp>
#include <weft/detail/function_ref.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>

#include <weft/use_fiber.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace greenback {

/// Thrown by await_ where there is no portal.
class no_portal_error : public std::logic_error {
 public:
  explicit no_portal_error(const char* where);
};

// --- portals ---------------------------------------------------------------------

/// True in weft task code (every task has a portal); false in Asio handlers,
/// in coroutines running outside any fiber, and on threads without a weft
/// runtime. Never throws.
inline bool has_portal() noexcept { return weft::detail::current_task() != nullptr; }
/// True while the task exists: every weft task has a portal. Never throws.
template <class T>
bool has_portal(const weft::task<T>& task) noexcept {
  return static_cast<bool>(task) && !task.done();
}

/// Makes sure the current task can use await_ for the rest of its life:
/// always true in weft, so this is only a checkpoint (as in greenback).
/// @throws weft::cancelled; no_portal_error outside a weft task.
void ensure_portal();

/// Gives `task` a portal. Every weft task already has one: synchronous,
/// idempotent, never throws.
template <class T>
void bestow_portal(const weft::task<T>&) noexcept {}

// --- await_ ------------------------------------------------------------------------

namespace detail {
[[noreturn]] void throw_no_portal(const char* where);

// Calls `start` (which co_spawns on `io`) as if from inside one of io's
// completion handlers: dispatches to io run inline, posts are queued until
// `start` returns, and no task is current (so the started coroutine has no
// portal, as anywhere on the io_context). This lets co_spawn run the
// coroutine's first segment at once instead of posting it. Exceptions from
// `start` propagate; one escaping a handler run inline ends the program, as
// it does for any handler on the runtime's io_context.
void start_as_handler(boost::asio::io_context& io, weft::detail::function_ref<void()> start);
inline weft::detail::task_base& require_portal(const char* where) {
  weft::detail::task_base* t = weft::detail::current_task();
  if (t == nullptr) throw_no_portal(where);
  return *t;
}

template <class A>
using value_t = std::decay_t<weft::detail::await_result_t<A>>;

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
  weft::detail::task_base& me = detail::require_portal("greenback::await_");
  weft::coro<T> owned = std::move(c);  // awaited once: the caller's coro is empty afterwards
  if (!owned.valid()) throw std::invalid_argument("greenback::await_: the coroutine is empty (already awaited?)");
  weft::detail::drive_on_fiber(me, owned.handle());
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
  requires(weft::detail::awaitable<A &&> && !weft::detail::is_coro<std::remove_cvref_t<A>>::value)
auto await_(A&& aw) {
  return await_(detail::as_coro(std::forward<A>(aw)));
}

// Asio: an asio::awaitable is co_spawned on the runtime's io_context and runs
// there (in Asio handler context, where there is no portal). It starts at
// once: up to its first suspension it runs inside await_, as if await_ were
// an Asio handler (dispatches to the io_context run inline, posts are
// queued; no portal). A cancellation
// of the waiting task is forwarded to it as Asio terminal cancellation
// through the co_spawn cancellation slot, and await_ returns only once the
// coroutine has finished: nothing is left running. If the coroutine then
// ends with an exception, weft::cancelled is thrown instead; if it returns a
// value regardless, the value is returned and the cancellation is delivered
// at the next checkpoint. Async operations (asio::deferred) are run with
// weft::use_fiber, with the same cancellation rules.

/// Runs an asio::awaitable to completion from synchronous task code; see
/// the header comment. Checkpoint: in a cancelled scope it throws before
/// the coroutine starts. @throws the coroutine's exception; weft::cancelled;
/// no_portal_error without a portal.
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

template <class T, class Executor>
T await_(boost::asio::awaitable<T, Executor> aw) {
  detail::require_portal("greenback::await_");
  weft::detail::raise_if_cancelled_at_entry();  // a checkpoint before the coroutine starts
  detail::awaitable_state<T> s;
  weft::detail::pooled_signal signal;  // outlives the coroutine: await_ waits for it to finish
  auto& io = weft::lowlevel::io_context();
  detail::start_as_handler(io, [&] {
    boost::asio::co_spawn(io, std::move(aw),
                          boost::asio::bind_cancellation_slot(signal->slot(), detail::awaitable_handler<T>(&s)));
  });
  bool cancel_requested = false;
  auto abort = [&]() noexcept {
    if (!cancel_requested) {  // once: park() asks again while the coroutine finishes
      cancel_requested = true;
      // From a handler of the coroutine's io_context, where co_spawn's
      // cancellation handler emits at once (never after the coroutine ended).
      weft::detail::forward_cancellation(io.get_executor(), s.done, signal.get(), s.finished);
    }
    return weft::detail::abort_result::failed;  // wait for the coroutine to finish
  };
  s.done.wait(abort, "await_ of an asio::awaitable");
  if (s.abandoned) weft::detail::throw_abandoned("greenback::await_");
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

// --- with_portal_run -------------------------------------------------------------------

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
  static void* operator new(std::size_t size) { return weft::detail::coro_frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { weft::detail::coro_frame_deallocate(p, size); }
  virtual ~portal_job() = default;
  /// Runs the function in `scope`, then arranges the completion (which
  /// deletes the job).
  void (*run)(portal_job* self, weft::cancel_scope& scope) noexcept = nullptr;
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
    run = &run_impl;
    weft::lowlevel::soon_call::fn = &complete;
  }
  static void run_impl(portal_job* base, weft::cancel_scope& scope) noexcept {
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
    run = &run_impl;
    weft::lowlevel::soon_call::fn = &complete;
  }
  static void run_impl(portal_job* base, weft::cancel_scope& scope) noexcept {
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
/// on a fresh fiber (a fiber switch) and hands back its value or exception.
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

/// A synchronous scope whose child tasks get portals (always true in weft).
/// Kept so that code written against greenback ports unchanged.
class portals_for_children {
 public:
  portals_for_children() noexcept = default;
  portals_for_children(const portals_for_children&) = delete;
  portals_for_children& operator=(const portals_for_children&) = delete;
};

namespace detail {
inline weft::coro<void> schedule_point() {
  weft::cancel_shielded_coro_yield();
  co_return;
}
inline weft::coro<bool> schedule_point_then(bool value) {
  weft::cancel_shielded_coro_yield();
  co_return value;
}
}  // namespace detail

/// An async context manager (see async_context) giving the entering task and
/// its children portals (always true in weft); entry and exit are schedule
/// points, not cancel points.
class portals_for_tree {
 public:
  weft::coro<void> aenter() { return detail::schedule_point(); }
  weft::coro<bool> aexit(std::exception_ptr) { return detail::schedule_point_then(false); }
};

// --- async context managers ---------------------------------------------------------

/// An *async context manager* is any object cm with
///   cm.aenter()                   -> an awaitable of the entered value (or void)
///   cm.aexit(std::exception_ptr)  -> an awaitable of bool
/// aexit receives the exception in flight (or nullptr) and returns true to
/// suppress it; an exception thrown by aexit replaces the one in flight.
template <class CM>
concept async_context_manager = requires(CM& cm, std::exception_ptr e) {
  cm.aenter();
  cm.aexit(e);
};

/// Enters cm, runs body (with the entered value if it takes one), exits cm:
/// `async with cm as v: body` from synchronous code, through await_.
/// Returns body's value (as std::optional if aexit may suppress an exception:
/// empty when it did). Failures in enter or exit behave as in the async form.
template <class CM, class F>
  requires async_context_manager<std::remove_reference_t<CM>>
auto async_context(CM&& cm, F&& body) {
  using entered_t = detail::value_t<decltype(cm.aenter())>;
  auto call = [&](auto&&... v) -> decltype(auto) {
    if constexpr (std::is_invocable_v<F&, decltype(v)...>)
      return body(v...);
    else
      return body();
  };
  auto run = [&](auto&&... v) {
    using R = decltype(call(v...));
    std::exception_ptr in_flight;
    std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>> result;
    try {
      if constexpr (std::is_void_v<R>) {
        call(v...);
        result.emplace();
      } else {
        result.emplace(call(v...));
      }
    } catch (...) {
      in_flight = std::current_exception();
    }
    const bool suppress = await_(cm.aexit(in_flight));
    if (in_flight && !suppress) std::rethrow_exception(in_flight);
    if constexpr (!std::is_void_v<R>) return result;
  };
  if constexpr (std::is_void_v<entered_t>) {
    await_(cm.aenter());
    return run();
  } else {
    entered_t v = await_(cm.aenter());
    return run(v);
  }
}

namespace detail {
template <class Scope>
class scope_context_manager {
 public:
  explicit scope_context_manager(Scope& s) noexcept : s_(s) {}
  weft::coro<std::reference_wrapper<Scope>> aenter() { return enter(s_); }
  weft::coro<bool> aexit(std::exception_ptr e) { return exit(s_, std::move(e)); }

 private:
  static weft::coro<std::reference_wrapper<Scope>> enter(Scope& s) {
    s.enter();
    co_return std::ref(s);
  }
  static weft::coro<bool> exit(Scope& s, std::exception_ptr e) {
    std::exception_ptr rest = s.exit(e);  // may block (a task group waits for its children)
    if (!rest) co_return true;
    if (rest == e) co_return false;
    std::rethrow_exception(rest);  // e.g. a task group's exception_group
  }
  Scope& s_;
};
}  // namespace detail

/// weft's own scopes as async context managers: async_context(async_cm(scope), ...)
/// works on cancel scopes and task groups too.
inline detail::scope_context_manager<weft::cancel_scope> async_cm(weft::cancel_scope& s) noexcept {
  return detail::scope_context_manager<weft::cancel_scope>(s);
}
inline detail::scope_context_manager<weft::task_group> async_cm(weft::task_group& g) noexcept {
  return detail::scope_context_manager<weft::task_group>(g);
}

// --- helpers built on await_ ---------------------------------------------------------------

/// A synchronous callable that await_s async_fn(args...): for constructors,
/// destructors, callbacks and other places that cannot be coroutines.
template <class F>
auto autoawait(F async_fn) {
  return [fn = std::move(async_fn)](auto&&... args) mutable -> decltype(auto) {
    return await_(std::invoke(fn, std::forward<decltype(args)>(args)...));
  };
}

/// Applies a synchronous decorator to an async function: returns an async
/// function (its calls are awaitable from any coroutine, and from
/// asio::awaitable) that runs decorator(autoawait(async_fn)) in
/// with_portal_run_sync. E.g. a memoizing decorator then serves repeated
/// calls from its cache without awaiting anything.
template <class Decorator>
auto decorate_as_sync(Decorator decorator) {
  return [decorator = std::move(decorator)](auto async_fn) {
    auto decorated = decorator(autoawait(std::move(async_fn)));
    return [decorated = std::move(decorated)](auto&&... args) mutable {
      return with_portal_run_sync(std::ref(decorated), std::forward<decltype(args)>(args)...);
    };
  };
}

// --- async iteration ---------------------------------------------------------------------

/// An *async iterator* has `next()` returning an awaitable of
/// std::optional<T> (empty at the end); weft::async_generator is one.
template <class I>
concept async_iterator = requires(I& it) { it.next(); };

/// Synchronous iteration over an async iterator, through await_:
///   for (auto& chunk : greenback::async_iter(conn)) ...
/// For async generators, send / throw_ / close map to their async
/// counterparts, so synchronous code can delegate to an async generator.
template <async_iterator I>
class async_iter {
 public:
  using value_type = typename detail::value_t<decltype(std::declval<I&>().next())>::value_type;

  explicit async_iter(I& it) noexcept : it_(&it) {}

  /// The next value, or empty at the end (await_(it.next())).
  std::optional<value_type> next() { return await_(it_->next()); }
  /// Sends a value into the generator; returns the next value.
  template <class S>
  std::optional<value_type> send(S&& s) {
    return await_(it_->send(std::forward<S>(s)));
  }
  /// Throws e into the generator; returns the next value.
  std::optional<value_type> throw_(std::exception_ptr e) { return await_(it_->throw_(std::move(e))); }
  /// Closes the generator.
  void close() { await_(it_->close()); }

  class iterator {
   public:
    using value_type = typename async_iter::value_type;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(async_iter* owner) : owner_(owner) { ++*this; }
    value_type& operator*() const { return *owner_->current_; }
    value_type* operator->() const { return &*owner_->current_; }
    iterator& operator++() {
      if (!owner_->advance()) owner_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.owner_ == b.owner_; }

   private:
    async_iter* owner_ = nullptr;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  bool advance() {
    auto v = next();
    if (!v) return false;
    // (A unique_ptr rather than an optional member: GCC 12 reports false
    // "maybe-uninitialized" warnings for optional<std::string> members here.)
    if (current_)
      *current_ = std::move(*v);
    else
      current_ = std::make_unique<value_type>(std::move(*v));
    return true;
  }
  I* it_;
  std::unique_ptr<value_type> current_;
};

}  // namespace greenback

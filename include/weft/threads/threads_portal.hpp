// weft::threads_portal: other threads call into a running weft runtime.
//
//   weft::run([] {
//     weft::open_threads_portal([](weft::threads_portal& portal) {
//       std::thread gui([portal] {                       // a copy: thread-safe
//         int n = portal.run_sync([] { return 6 * 7; });  // on the loop, outside any task
//         std::string s = portal.run_coroutine([] { weft::sleep(0.1); return fetch(); });  // a task
//       });
//       ...  // the runtime goes on meanwhile
//       weft::run_in_thread([&] { gui.join(); });
//     });
//   });
//
// A portal belongs to the runtime it was created in, and accepts calls
// while it is open: from open() until its body has returned. Every member
// function is thread-safe and may be called from any thread except the
// runtime's own (std::logic_error there: waiting on one's own runtime would
// deadlock it); copies share the portal.
//  - run_sync_soon(fn, args...) runs fn(args...) on the runtime's thread,
//    outside any task (as an Asio handler runs): fn must not block.
//  - run_coroutine_soon(fn, args...) runs fn(args...) as a task of the
//    portal's task group: plain task code (it may block, sleep, use
//    weft's networking), or a function returning a weft::coro, an
//    asio::awaitable or any other C++20 awaitable, which the task then
//    awaits.
//  - Both return a weft::future of the outcome at once; run_sync and
//    run_coroutine wait for it (future::get: a plain thread blocks, a task
//    of another runtime parks, a checkpoint). The value and the exception
//    (the same object) reach the caller; a weft::cancelled that ends the
//    call never crosses threads: the future ends cancelled, and get() throws
//    future_cancelled_error.
//  - Cancelling the future (future::cancel, or a cancelled or timed-out
//    wait) before the call has started means it never runs; a coroutine
//    call that runs is cancelled at once (the future is done) and its task
//    gets the cancellation at its next checkpoint, its later outcome being
//    dropped (an exception goes to weft::report_error); a running sync
//    call cannot be cancelled.
//  - Closing: when open()'s body returns (or throws), new calls are refused
//    (runtime_closed_error), the calls accepted before run exactly once,
//    and the coroutine calls' tasks are waited for; then open() returns. A
//    call made before open() or after closing throws runtime_closed_error.
#pragma once

#include <weft/coro.hpp>
#include <weft/detail/core.hpp>
#include <weft/function_ref.hpp>
#include <weft/threads/errors.hpp>
#include <weft/task_group.hpp>
#include <weft/threads/future.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace weft {

class cancel_scope;
class threads_portal;

namespace detail {

class portal_core;

/// A call a portal accepted: `run` is called once on the portal's runtime
/// thread, outside any task (open == false only if the runtime ended
/// first, which a portal's closing rules out); it may end the call's life.
struct portal_call : remote_call {
  void (*run)(portal_call* self, bool open) noexcept = nullptr;
  portal_core* portal = nullptr;
};

/// A coroutine call: runs as a task, cancellable while it runs. Shared by
/// the task and a cancellation on its way to the runtime.
struct portal_task_call : portal_call {
  struct hook_t : future_cancel_hook {
    portal_task_call* owner = nullptr;
  };
  struct cancel_call_t : remote_call {
    portal_task_call* owner = nullptr;
  };
  portal_task_call() noexcept;
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(this);
  }

  hook_t hook;
  cancel_call_t cancel_call;
  runtime* rt = nullptr;
  cancel_scope* scope = nullptr;  // the task's, while it runs (the runtime's thread only)
  std::atomic<unsigned> refs{1};
  void (*destroy)(portal_task_call* self) noexcept = nullptr;
};

/// A new, closed portal of the calling thread's runtime (one reference).
/// With `own_thread_calls` (a caller's), the runtime's own thread may
/// submit calls as well. @throws std::logic_error on a thread without a
/// weft runtime; std::bad_alloc.
portal_core* portal_create(const char* what, bool own_thread_calls = false);
void portal_add_ref(portal_core& p) noexcept;
void portal_release(portal_core& p) noexcept;
/// Accepts `call` (it will run exactly once) or throws: std::logic_error on
/// the portal's runtime thread, runtime_closed_error if it is not open.
void portal_submit(portal_core& p, portal_call& call, const char* what);
/// Opens the portal, runs body, closes it (see the header comment).
void portal_open(portal_core& p, function_ref<void()> body);

/// Makes a Job (a portal_call) of `args` and submits it to p; returns its
/// future when it has one. The job runs exactly once and ends its own life.
/// @throws as portal_submit; std::bad_alloc.
template <class Job, class... A>
auto portal_submit_new(portal_core& p, const char* what, A&&... args) {
  auto job = std::make_unique<Job>(std::forward<A>(args)...);
  if constexpr (requires { job->get_future(); }) {
    auto f = job->get_future();
    portal_submit(p, *job, what);
    job.release();
    return f;
  } else {
    portal_submit(p, *job, what);
    job.release();
  }
}
bool portal_is_open(const portal_core& p) noexcept;
/// The portal's task group (its runtime's thread, while a call runs).
task_group& portal_group(portal_core& p) noexcept;
/// In the task of a coroutine call that set_running accepted: runs `body`
/// in a cancel scope that a cancellation of the future cancels. Returns
/// false if that scope caught its cancellation (the future is cancelled
/// then, and body may not have finished).
bool portal_run_task(portal_task_call& call, function_ref<void()> body);

/// True for what run_coroutine awaits: what fn returns when it is a coroutine function.
template <class R>
inline constexpr bool is_awaitable_result_v =
    is_coro<std::remove_cvref_t<R>>::value || is_asio_awaitable<std::remove_cvref_t<R>>::value || awaitable<R>;

template <class A>
struct awaited_value {
  using type = std::decay_t<await_result_t<A>>;
};
template <class T, class E>
struct awaited_value<boost::asio::awaitable<T, E>> {
  using type = T;
};
template <class T>
struct awaited_value<coro<T>> {
  using type = T;
};

template <class F, class... A>
using portal_fn_result_t = std::invoke_result_t<F, A...>;

/// What a coroutine call's future holds.
template <class F, class... A>
using portal_coroutine_value_t =
    typename std::conditional_t<is_awaitable_result_v<portal_fn_result_t<F, A...>>,
                                awaited_value<std::remove_cvref_t<portal_fn_result_t<F, A...>>>,
                                std::type_identity<std::decay_t<portal_fn_result_t<F, A...>>>>::type;

template <class A>
coro<typename awaited_value<std::remove_cvref_t<A>>::type> portal_as_coro(A aw) {
  co_return co_await std::move(aw);
}

/// Calls fn(args...) in task code and, when it returns an awaitable, awaits it there.
template <class R, class F, class... A>
R portal_invoke(F& fn, std::tuple<A...>& args) {
  using raw = portal_fn_result_t<F, A...>;
  if constexpr (!is_awaitable_result_v<raw>) {
    return std::apply([&](A&... a) -> R { return std::invoke(std::move(fn), std::move(a)...); }, args);
  } else {
    auto aw = std::apply([&](A&... a) { return std::invoke(std::move(fn), std::move(a)...); }, args);
    coro<R> c = [&] {
      if constexpr (is_coro<std::remove_cvref_t<raw>>::value)
        return std::move(aw);
      else
        return portal_as_coro(std::move(aw));
    }();
    if (!c.valid()) throw std::invalid_argument("weft::threads_portal::run_coroutine: fn returned an empty weft::coro");
    lowlevel::drive_coroutine(c.handle());
    return c.handle().promise().take();
  }
}

template <class R, class F, class... A>
class portal_sync_job final : public portal_call {
 public:
  template <class G, class... B>
  explicit portal_sync_job(G&& g, B&&... b) : call_(std::forward<G>(g), std::forward<B>(b)...) {
    run = &run_call;
  }
  future<R> get_future() const { return promise_.get_future(); }

 private:
  static void run_call(portal_call* c, bool open) noexcept {
    std::unique_ptr<portal_sync_job> self(static_cast<portal_sync_job*>(c));
    try {
      if (!open) throw runtime_closed_error("weft::threads_portal: the runtime ended before the call ran");
      if (!self->promise_.set_running()) return;  // cancelled before it started: it never runs
    } catch (...) {  // the caller's: it crosses to the future
      self->promise_.set_exception(std::current_exception());
      return;
    }
    fulfil(self->promise_, self->call_);  // outside any task: no weft::cancelled can come
  }

  std::tuple<F, A...> call_;
  promise<R> promise_;
};

template <class R, class F, class... A>
class portal_task_job final : public portal_task_call {
 public:
  template <class G, class... B>
  explicit portal_task_job(G&& g, B&&... b) : fn_(std::forward<G>(g)), args_(std::forward<B>(b)...) {
    run = &run_call;
    destroy = [](portal_task_call* self) noexcept { delete static_cast<portal_task_job*>(self); };
  }
  future<R> get_future() const { return promise_.get_future(); }

 private:
  /// The task's reference to its call. A task destroyed without having run
  /// drops it, and with the last reference the promise: the future then
  /// fails with abandoned_error instead of staying pending.
  class task_ref {
   public:
    explicit task_ref(portal_task_job* job) noexcept : job_(job) { job->refs.fetch_add(1, std::memory_order_relaxed); }
    task_ref(task_ref&& o) noexcept : job_(std::exchange(o.job_, nullptr)) {}
    task_ref& operator=(task_ref&&) = delete;
    ~task_ref() {
      if (job_ != nullptr) job_->release();
    }
    portal_task_job* operator->() const noexcept { return job_; }

   private:
    portal_task_job* job_;
  };

  static void run_call(portal_call* c, bool open) noexcept {
    auto* self = static_cast<portal_task_job*>(c);
    try {
      if (!open) throw runtime_closed_error("weft::threads_portal: the runtime ended before the call ran");
      self->rt = t_runtime;  // before set_running: the hook reads it
      portal_group(*self->portal).start_soon([ref = task_ref(self)]() mutable { ref->run_task(); });
    } catch (...) {  // no task could be started: the caller gets the error
      self->promise_.set_exception(std::current_exception());
    }
    self->release();  // the call's own reference; the task holds its own
  }

  void run_task() {
    if (!promise_.set_running(&hook)) return;  // cancelled before it started: it never runs
    try {
      if constexpr (std::is_void_v<R>) {
        // Not finished: cancelled by its future, which is done already.
        if (portal_run_task(*this, [&] { portal_invoke<R>(fn_, args_); })) promise_.set_value();
      } else {
        std::optional<R> value;
        if (portal_run_task(*this, [&] { value.emplace(portal_invoke<R>(fn_, args_)); }))
          promise_.set_value(std::move(*value));
      }
    } catch (const cancelled&) {
      promise_.set_exception(std::current_exception());  // the future ends cancelled
      // If the task is cancelled (the portal's body failed), it goes on
      // being cancelled. Otherwise this is a cancellation that fn re-raised
      // outside its own scope: it ended the call, and stops here instead of
      // cancelling the portal's other calls and its body.
      raise_if_cancelled_at_entry();
    } catch (...) {  // the caller's: it crosses to the future (reported if the future was cancelled)
      promise_.set_exception(std::current_exception());
    }
  }

  F fn_;
  std::tuple<A...> args_;
  promise<R> promise_;
};

}  // namespace detail

class threads_portal {
 public:
  /// An empty handle: every call throws std::logic_error.
  threads_portal() noexcept = default;
  /// A closed portal of the runtime running on this thread; open() opens it.
  /// Its copies may be handed to other threads before or after it opens.
  /// @throws std::logic_error on a thread that runs no weft runtime; std::bad_alloc.
  static threads_portal create() { return threads_portal(detail::portal_create("weft::threads_portal::create")); }

  threads_portal(const threads_portal& o) noexcept : p_(o.p_) {
    if (p_ != nullptr) detail::portal_add_ref(*p_);
  }
  threads_portal(threads_portal&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  threads_portal& operator=(threads_portal o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~threads_portal() {
    if (p_ != nullptr) detail::portal_release(*p_);
  }

  /// True while it accepts calls.
  bool is_open() const noexcept { return p_ != nullptr && detail::portal_is_open(*p_); }

  /// Opens the portal in the calling task, runs body(*this) and closes it:
  /// refuses new calls, waits for the calls accepted before to run (a wait
  /// that cancellation does not interrupt), and waits for the coroutine
  /// calls' tasks (the portal's task group; if body throws, they are
  /// cancelled). Returns body's value. A portal opens once.
  /// @throws what body throws (with the failures of coroutine calls' tasks
  /// that were cancelled, as a task group does); std::logic_error outside a
  /// task of the portal's runtime, or if the portal is or was open.
  template <class F>
  auto open(F&& body) {
    using R = std::invoke_result_t<F, threads_portal&>;
    if constexpr (std::is_void_v<R>) {
      detail::portal_open(core("weft::threads_portal::open"), [&] { std::invoke(std::forward<F>(body), *this); });
    } else {
      std::optional<R> result;
      detail::portal_open(core("weft::threads_portal::open"),
                          [&] { result.emplace(std::invoke(std::forward<F>(body), *this)); });
      return std::move(*result);
    }
  }

  /// Runs fn(args...) soon on the runtime's thread, outside any task; the
  /// future gets its outcome. fn and args are moved (or copied) into the
  /// call, as by std::thread. Never blocks.
  /// @throws runtime_closed_error if the portal is not open;
  /// std::logic_error on the portal's runtime thread; std::bad_alloc.
  template <class F, class... A>
  auto run_sync_soon(F&& fn, A&&... args) const {
    using raw = detail::portal_fn_result_t<std::decay_t<F>, std::decay_t<A>...>;
    if constexpr (detail::is_awaitable_result_v<raw>) {
      static_assert(detail::dependent_false<F>,
                    "weft::threads_portal::run_sync: fn is a coroutine function (it returns an awaitable); use run_coroutine() or run_coroutine_soon()");
      return future<void>();  // after the assertion: no second error
    } else {
      return submit<detail::portal_sync_job<std::decay_t<raw>, std::decay_t<F>, std::decay_t<A>...>>(
          "weft::threads_portal::run_sync_soon", std::forward<F>(fn), std::forward<A>(args)...);
    }
  }
  /// run_sync_soon(fn, args...).get(): waits for the outcome (a checkpoint
  /// in a task of another runtime; blocks a plain thread).
  /// @throws what fn throws; future_cancelled_error; what run_sync_soon
  /// and future::get throw.
  template <class F, class... A>
  auto run_sync(F&& fn, A&&... args) const {
    if constexpr (detail::is_awaitable_result_v<detail::portal_fn_result_t<std::decay_t<F>, std::decay_t<A>...>>) {
      static_assert(detail::dependent_false<F>,
                    "weft::threads_portal::run_sync: fn is a coroutine function (it returns an awaitable); use run_coroutine() or run_coroutine_soon()");
      return detail::unawaitable::any_value{};  // after the assertion: no second error
    } else {
      return run_sync_soon(std::forward<F>(fn), std::forward<A>(args)...).get();
    }
  }

  /// Runs fn(args...) soon as a task of the portal's task group (awaiting
  /// what it returns if it is an awaitable); the future gets its outcome.
  /// See the header comment for cancellation. Never blocks.
  /// @throws as run_sync_soon.
  template <class F, class... A>
  auto run_coroutine_soon(F&& fn, A&&... args) const {
    using R = detail::portal_coroutine_value_t<std::decay_t<F>, std::decay_t<A>...>;
    return submit<detail::portal_task_job<R, std::decay_t<F>, std::decay_t<A>...>>(
        "weft::threads_portal::run_coroutine_soon", std::forward<F>(fn), std::forward<A>(args)...);
  }
  /// run_coroutine_soon(fn, args...).get().
  /// @throws what fn (or what it returns) throws; future_cancelled_error;
  /// what run_coroutine_soon and future::get throw.
  template <class F, class... A>
  auto run_coroutine(F&& fn, A&&... args) const {
    return run_coroutine_soon(std::forward<F>(fn), std::forward<A>(args)...).get();
  }

  friend bool operator==(const threads_portal& a, const threads_portal& b) noexcept { return a.p_ == b.p_; }

 private:
  explicit threads_portal(detail::portal_core* p) noexcept : p_(p) {}
  detail::portal_core& core(const char* what) const {
    if (p_ == nullptr) [[unlikely]]
      throw std::logic_error(std::string(what) + ": an empty threads_portal (default-constructed or moved from)");
    return *p_;
  }
  template <class Job, class F, class... A>
  auto submit(const char* what, F&& fn, A&&... args) const {
    return detail::portal_submit_new<Job>(core(what), what, std::forward<F>(fn), std::forward<A>(args)...);
  }

  detail::portal_core* p_ = nullptr;
};

/// threads_portal::create().open(body): a portal of this runtime, open
/// while body(portal) runs. @throws what threads_portal::open throws.
template <class F>
auto open_threads_portal(F&& body) {
  return threads_portal::create().open(std::forward<F>(body));
}

}  // namespace weft

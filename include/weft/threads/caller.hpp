// weft::caller: event loops on named threads that any thread can call.
//
//   weft::caller db = weft::caller::start_new({.name = "db"});  // a thread running weft::run
//   weft::future<int> f = db.call_soon([] { return query(); });  // from any thread
//   int n = f.get();     // a task parks, a plain thread blocks (see weft::future)
//   db.call_later(0.5s, [] { flush(); });
//   db.stop();           // from another thread: returns once the thread has ended
//
// A caller is a thread that runs a weft runtime until it is stopped, and
// accepts calls from every thread, its own included. Each call runs as a
// task of the caller's runtime: plain task code (it may block, sleep, use
// weft's networking), or a function returning a weft::coro, an
// asio::awaitable or another C++20 awaitable, which the task then awaits.
// The future it returns gets the outcome, as threads_portal's calls do:
// the value, or the very exception fn threw; a call that ends cancelled
// ends its future cancelled (future_cancelled_error). Cancelling the
// future before the call has started means it never runs; cancelling it
// while it runs cancels its task (the future is cancelled at once; the
// task gets the cancellation at its next checkpoint, and its later outcome
// is dropped, an exception going to weft::report_error).
//
// Names: every running caller has a name, unique among the running ones
// (caller_options::name; empty: "caller-<n>"), which is also its thread's
// name (its first 15 bytes, as debuggers and top -H show it).
// get_instance(name) finds a running caller by name; current() is the
// caller whose thread calls it.
//
// Stopping: stop() refuses new calls (runtime_closed_error), cancels the
// calls that run (their futures end cancelled unless they finish first)
// and resolves the calls that have not started as cancelled (they never
// run), then the thread ends. From another thread stop() waits for that;
// on the caller's own thread (in one of its calls) it only starts it. A
// protected caller (caller_options::protect) ignores stop() and stops
// with stop(true). Callers still running when the program exits (main
// returns, or std::exit) are stopped then, as by stop_all(true), before
// the static objects that existed when the first caller started are
// destroyed: stop them yourself if their calls use statics made later.
//
// Every member function is thread-safe; copies of a caller share it.
#pragma once

#include <weft/checkpoint.hpp>
#include <weft/function_ref.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/report_error.hpp>
#include <weft/run.hpp>
#include <weft/threads/errors.hpp>
#include <weft/threads/future.hpp>
#include <weft/threads/threads_portal.hpp>
#include <weft/time.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace weft {

struct caller_options {
  /// The caller's name, unique among running callers; empty: "caller-<n>".
  std::string name;
  /// stop() leaves a protected caller running; stop(true) stops it.
  bool protect = false;
  /// The options of the runtime the caller's thread runs.
  run_options run;
};

class caller;

namespace detail {

class caller_core;
void caller_add_ref(caller_core& c) noexcept;
void caller_release(caller_core& c) noexcept;
/// The caller's portal, which accepts calls from its own thread as well.
portal_core& caller_portal(caller_core& c) noexcept;
const std::string& caller_name(const caller_core& c) noexcept;
/// Its thread's runtime's current time (from any thread: the real clock's
/// time is the same everywhere; a caller on another clock counts a delay
/// from when the call reaches it).
bool caller_uses_real_clock(const caller_core& c) noexcept;
/// open_caller's work (see there).
void caller_open(caller_options& options, function_ref<void(caller&)> body);

/// Wraps fn for a caller: a call that starts in a stopping caller (its
/// task group cancelled) ends cancelled without running fn.
template <class F>
struct caller_call {
  F fn;
  template <class... A>
  decltype(auto) operator()(A&&... args) {
    lowlevel::raise_if_cancelled();
    return std::invoke(std::move(fn), std::forward<A>(args)...);
  }
};

/// fn delayed: it runs once `delay` has passed since the call was made.
template <class F>
struct caller_delayed_call {
  F fn;
  duration delay;
  std::chrono::steady_clock::time_point made;
  bool real_clock;
  template <class... A>
  decltype(auto) operator()(A&&... args) {
    duration left = delay;
    if (real_clock) left -= std::chrono::duration_cast<duration>(std::chrono::steady_clock::now() - made);
    if (left > duration::zero()) weft::sleep(left);  // a checkpoint: a stop or a cancelled future ends it here
    lowlevel::raise_if_cancelled();
    return std::invoke(std::move(fn), std::forward<A>(args)...);
  }
};

/// A call to run outside any task, whose outcome nobody waits for.
template <class F, class... A>
class caller_direct_job final : public portal_call {
 public:
  template <class G, class... B>
  explicit caller_direct_job(G&& g, B&&... b) : call_(std::forward<G>(g), std::forward<B>(b)...) {
    run = &run_call;
  }

 private:
  static void run_call(portal_call* c, bool open) noexcept {
    std::unique_ptr<caller_direct_job> self(static_cast<caller_direct_job*>(c));
    if (!open) return;
    try {
      std::apply([](auto& fn, auto&... a) { std::invoke(std::move(fn), std::move(a)...); }, self->call_);
    } catch (...) {  // outside any task, no weft::cancelled can come; nobody waits for fn: report it
      report_error(std::current_exception(), "weft::caller::call_direct");
    }
  }
  std::tuple<F, A...> call_;
};

}  // namespace detail

class caller {
 public:
  /// An empty handle: every call but the static ones throws std::logic_error.
  caller() noexcept = default;
  caller(const caller& o) noexcept : c_(o.c_) {
    if (c_ != nullptr) detail::caller_add_ref(*c_);
  }
  caller(caller&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  caller& operator=(caller o) noexcept {
    std::swap(c_, o.c_);
    return *this;
  }
  ~caller() {
    if (c_ != nullptr) detail::caller_release(*c_);
  }

  /// Starts a thread that runs a weft runtime (options.run) for the caller;
  /// returns once it accepts calls. Callable from any thread.
  /// @throws std::invalid_argument if a running caller has that name;
  /// std::system_error if no thread can be started; what weft::run throws
  /// when the runtime cannot start; std::bad_alloc.
  static caller start_new(caller_options options = {});
  /// The caller whose thread calls this. @throws std::logic_error on any
  /// other thread.
  static caller current();
  /// The running caller named `name`; with `create`, one is started under
  /// that name if there is none. @throws std::invalid_argument if there is
  /// none and !create; what start_new throws.
  static caller get_instance(std::string_view name = "main", bool create = false);
  /// The running callers (with !running_only, also those that are
  /// stopping), in the order they started.
  static std::vector<caller> all_callers(bool running_only = true);
  /// stop(force) for every running caller, from a thread that is none of
  /// theirs; returns once they have ended. @throws std::logic_error on a
  /// caller's thread.
  static void stop_all(bool force = false);

  /// The caller's name. @throws std::logic_error for an empty handle.
  const std::string& name() const { return detail::caller_name(core("weft::caller::name")); }
  /// True while it accepts calls.
  bool running() const noexcept { return c_ != nullptr && detail::portal_is_open(detail::caller_portal(*c_)); }
  /// True once its thread has ended (after a stop, or its runtime failing).
  bool stopped() const noexcept;

  /// Runs fn(args...) as a task of the caller (awaiting what it returns if
  /// it is an awaitable); the future gets the outcome. fn and args are
  /// moved (or copied) into the call, as by std::thread. Never blocks.
  /// @throws runtime_closed_error if the caller is stopping or stopped;
  /// std::logic_error for an empty handle; std::bad_alloc.
  template <class F, class... A>
  auto call_soon(F&& fn, A&&... args) const {
    return submit<detail::caller_call<std::decay_t<F>>>("weft::caller::call_soon",
                                                        detail::caller_call<std::decay_t<F>>{std::forward<F>(fn)},
                                                        std::forward<A>(args)...);
  }
  /// call_soon, with fn run once `delay` has passed since this call (a
  /// caller whose runtime has another clock than the real one counts it on
  /// that clock from when the call reaches it). While it waits, its future
  /// is running: cancelling it, or stopping the caller, ends it cancelled
  /// without running fn. @throws std::invalid_argument for a negative or
  /// NaN delay; as call_soon.
  template <class F, class... A>
  auto call_later(duration delay, F&& fn, A&&... args) const {
    if (!(delay >= duration::zero()))
      throw std::invalid_argument("weft::caller::call_later: the delay must be zero or more seconds");
    using wrapped = detail::caller_delayed_call<std::decay_t<F>>;
    return submit<wrapped>("weft::caller::call_later",
                           wrapped{std::forward<F>(fn), delay, std::chrono::steady_clock::now(),
                                   detail::caller_uses_real_clock(core("weft::caller::call_later"))},
                           std::forward<A>(args)...);
  }
  /// Runs fn(args...) soon on the caller's thread, outside any task (as an
  /// Asio handler runs: fn must not block), with no future: an exception
  /// fn throws goes to weft::report_error. @throws as call_soon.
  template <class F, class... A>
  void call_direct(F&& fn, A&&... args) const {
    detail::portal_submit_new<detail::caller_direct_job<std::decay_t<F>, std::decay_t<A>...>>(
        detail::caller_portal(core("weft::caller::call_direct")), "weft::caller::call_direct", std::forward<F>(fn),
        std::forward<A>(args)...);
  }

  /// Stops the caller (see the header comment); nothing for a protected
  /// caller unless `force`. From another thread it returns once the
  /// caller's thread has ended; on the caller's own thread it does not
  /// wait. Idempotent. Not a checkpoint: a task of another runtime that
  /// calls it blocks its thread while the caller's calls wind up.
  /// @throws std::logic_error for an empty handle.
  void stop(bool force = false) const;

  friend bool operator==(const caller& a, const caller& b) noexcept { return a.c_ == b.c_; }

 private:
  explicit caller(detail::caller_core* c) noexcept : c_(c) {}
  friend class detail::caller_core;
  detail::caller_core& core(const char* what) const {
    if (c_ == nullptr) [[unlikely]]
      throw std::logic_error(std::string(what) + ": an empty weft::caller (default-constructed or moved from)");
    return *c_;
  }
  template <class Fn, class... A>
  auto submit(const char* what, Fn&& fn, A&&... args) const {
    using R = detail::portal_coroutine_value_t<Fn, std::decay_t<A>...>;
    return detail::portal_submit_new<detail::portal_task_job<R, Fn, std::decay_t<A>...>>(
        detail::caller_portal(core(what)), what, std::forward<Fn>(fn), std::forward<A>(args)...);
  }

  detail::caller_core* c_ = nullptr;
};

/// Makes the calling task's runtime a caller while body(caller) runs: the
/// caller (named and found as start_new's are, its calls running as tasks
/// of this runtime, from every thread) is running until body returns; it
/// then stops as stop() stops a caller (its running calls are cancelled
/// and waited for, those not started end cancelled). A stop() meanwhile,
/// from any thread, cancels body too. options.run is not used (the
/// runtime is the calling task's).
/// @throws what body throws; std::logic_error outside a task;
/// std::invalid_argument if a running caller has that name; std::bad_alloc.
template <class F>
void open_caller(F&& body, caller_options options = {}) {
  static_assert(std::is_void_v<std::invoke_result_t<F, caller&>>,
                "weft::open_caller: body(caller&) returns nothing (a stop may end it early)");
  detail::caller_open(options, [&](caller& c) { std::invoke(std::forward<F>(body), c); });
}

}  // namespace weft

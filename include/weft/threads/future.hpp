// weft::future and weft::promise: a thread-safe outcome that any thread may
// set, cancel or wait for.
//
// A promise sets the outcome (a value, an exception, or "cancelled") once;
// futures read it. Both are copyable handles to one shared state; every
// member function of both is thread-safe. Who waits how:
//  - a weft task parks (any runtime's task, not only the home runtime's):
//    a checkpoint, except on a future that is done already, where the wait
//    returns at once without yielding (a cancelled future is a checkpoint
//    then: the task's own cancellation wins);
//  - a plain thread (no weft runtime on it, e.g. a run_in_thread worker)
//    blocks on a futex;
//  - a runtime's thread outside any task (an Asio handler, a soon call, a
//    done-callback) cannot block: the wait throws std::logic_error, unless
//    the future is done already.
// Cancel rules: cancel() on a pending future (its job has not started)
// cancels it and the job never runs; on a running job that can be
// cancelled (promise::set_running with a hook) it cancels the future at
// once and tells the job; on a running job that cannot be cancelled it is
// refused (false); on a cancelled future it appends its reason (true); on
// a future done otherwise it is refused (false).
//
// The home runtime is the runtime on whose thread the promise was created
// (none if it was created on a plain thread). Done-callbacks run there,
// outside any task, when the future is done. When the home runtime has
// ended before that, they are not run: they are destroyed and the loss is
// handed to weft::report_error. Everything else works the same after the
// home runtime has ended. A future without a home runs its callbacks on
// the thread that completes it, or inline when added to a done future.
#pragma once

#include <weft/detail/future_state.hpp>

#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace weft {

template <class T>
class promise;
template <class T>
class future;

namespace detail {
template <class T, class F>
struct future_callback_impl;
}

template <class T>
class future {
  static_assert(!std::is_reference_v<T>, "weft::future<T&> is not supported: use a pointer or std::reference_wrapper");

 public:
  /// An empty future (valid() is false); every member that needs a state
  /// throws invalid_state_error on it, the noexcept ones answer false/0.
  future() noexcept = default;
  future(const future& o) noexcept : s_(o.s_) {
    if (s_ != nullptr) s_->add_ref();
  }
  future(future&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  future& operator=(future o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~future() {
    if (s_ != nullptr) s_->release();
  }

  bool valid() const noexcept { return s_ != nullptr; }
  /// True once the outcome is set or the future is cancelled.
  bool done() const noexcept { return s_ != nullptr && s_->done(); }
  /// True while its job runs (promise::set_running was called) and it is not done.
  bool running() const noexcept { return s_ != nullptr && s_->current() == phase::running; }
  bool cancelled() const noexcept { return s_ != nullptr && s_->current() == phase::cancelled; }

  /// Cancels the future; returns whether it is cancelled now (see the
  /// header comment for the rules). Waiters wake at once. Never blocks;
  /// not a checkpoint. @throws std::bad_alloc (the reason is copied);
  /// invalid_state_error on an empty future.
  bool cancel(std::string_view reason = {}) { return s("weft::future::cancel").cancel(reason); }

  /// The value, without waiting (a copy). Not a checkpoint.
  /// @throws invalid_state_error if the future is not done; the job's
  /// exception (the same object every time); future_cancelled_error if
  /// the future was cancelled (what(): the reasons, joined by '\n');
  /// what copying the value throws.
  T result() const {
    if constexpr (std::is_void_v<T>)
      s("weft::future::result").value("weft::future::result", false);
    else
      return s("weft::future::result").value("weft::future::result", false);
  }
  /// The job's exception, or null if it returned a value. Not a checkpoint.
  /// @throws invalid_state_error if the future is not done; future_cancelled_error.
  std::exception_ptr exception() const { return s("weft::future::exception").exception(); }

  /// Blocks until the future is done (see the header comment for who waits
  /// how). In a task it is a checkpoint, unless the future is done already;
  /// if the waiting task is cancelled, the wait cancels the future (unless
  /// options.shield): when the future accepts, weft::cancelled is thrown;
  /// when it refuses (a running job that cannot be cancelled), the wait
  /// goes on, shielded, and the cancellation comes at the task's next
  /// checkpoint. After options.timeout, it cancels the future (unless
  /// options.shield) and throws weft::timeout_error.
  /// @throws weft::cancelled; weft::timeout_error; std::invalid_argument
  /// for a negative or NaN timeout; std::logic_error on a runtime's thread
  /// outside any task (unless done); invalid_state_error on an empty future.
  void wait(wait_options options = {}) const { s("weft::future::wait").wait(options); }
  /// wait(options), then the value (a copy) or the job's exception (the
  /// same object), or future_cancelled_error (in a cancelled task, a
  /// cancelled future throws weft::cancelled instead). A checkpoint as wait().
  /// @throws what wait() and result() throw.
  T get(wait_options options = {}) const {
    auto& st = s("weft::future::get");
    st.wait(options);
    if constexpr (std::is_void_v<T>)
      st.value("weft::future::get", true);
    else
      return st.value("weft::future::get", true);
  }

  /// Adds fn, called as fn(future<T>&) once the future is done, on its home
  /// runtime outside any task (see the header comment). Callbacks run in the
  /// reverse order of their registration. Added to a done future, fn is
  /// scheduled, never run inline (except without a home). An exception
  /// escaping fn goes to weft::report_error, except a weft::cancelled from
  /// fn run inline, which is the caller's. Never blocks.
  /// @throws std::bad_alloc; invalid_state_error on an empty future;
  /// weft::cancelled from fn run inline (no home runtime).
  template <class F>
  callback_id add_done_callback(F&& fn);
  /// Removes the callback `id` if it has not run yet; returns how many
  /// were removed (0 or 1). Never blocks.
  std::size_t remove_done_callback(callback_id id) noexcept { return s_ != nullptr ? s_->remove_callback(id) : 0; }

  friend bool operator==(const future& a, const future& b) noexcept { return a.s_ == b.s_; }

 private:
  using phase = detail::future_state_base::phase;
  friend class promise<T>;
  template <class, class>
  friend struct detail::future_callback_impl;
  explicit future(detail::future_state<T>* s) noexcept : s_(s) {
    if (s_ != nullptr) s_->add_ref();
  }
  detail::future_state<T>& s(const char* what) const {
    if (s_ == nullptr) [[unlikely]]
      throw invalid_state_error(std::string(what) + ": the future is empty (default-constructed or moved from)");
    return *s_;
  }
  detail::future_state<T>* s_ = nullptr;
};

/// The setting side. Copies share the state; when the last promise goes
/// before an outcome was set, the future fails with weft::abandoned_error.
template <class T>
class promise {
 public:
  /// A new state whose home is the calling thread's runtime (if any).
  /// @throws std::bad_alloc.
  promise() : s_(new detail::future_state<T>()) { s_->add_promise(); }
  promise(const promise& o) noexcept : s_(o.s_) {
    if (s_ != nullptr) {
      s_->add_ref();
      s_->add_promise();
    }
  }
  promise(promise&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  promise& operator=(promise o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~promise() {
    if (s_ != nullptr) {
      s_->release_promise();
      s_->release();
    }
  }

  /// A future of this state. @throws invalid_state_error on an empty promise.
  future<T> get_future() const { return future<T>(&s("weft::promise::get_future")); }

  /// Marks the job as started: true, or false if the future was cancelled
  /// first (the job must not run then). With a hook, the running job can
  /// be cancelled (see future_cancel_hook); without, cancel() refuses now.
  /// @throws invalid_state_error if it runs or is done already.
  bool set_running(future_cancel_hook* hook = nullptr) { return s("weft::promise::set_running").set_running(hook); }

  /// Sets the value; waiters wake, callbacks are scheduled. Returns false
  /// (and drops the value) if the future was cancelled. Any thread.
  /// @throws invalid_state_error if the outcome is set already; what
  /// constructing the value throws (then nothing is set).
  template <class... A>
  bool set_value(A&&... a) {
    return s("weft::promise::set_value").set_value(std::forward<A>(a)...);
  }
  /// Sets the exception (kept as the same object). A weft::cancelled never
  /// crosses threads: it makes the future cancelled instead. If the future
  /// was cancelled, returns false and hands the exception to
  /// weft::report_error. @throws invalid_state_error if the outcome is set
  /// already; std::invalid_argument for a null `e`.
  bool set_exception(std::exception_ptr e) { return s("weft::promise::set_exception").set_exception(std::move(e)); }

  bool done() const noexcept { return s_ != nullptr && s_->done(); }
  bool cancelled() const noexcept {
    return s_ != nullptr && s_->current() == detail::future_state_base::phase::cancelled;
  }

 private:
  detail::future_state<T>& s(const char* what) const {
    if (s_ == nullptr) [[unlikely]]
      throw invalid_state_error(std::string(what) + ": the promise is empty (moved from)");
    return *s_;
  }
  detail::future_state<T>* s_;
};

namespace detail {
/// Runs a job's function, fn(args...) moved out of `call`, and sets `p`
/// from its outcome: the value, or the exception (a weft::cancelled makes
/// the future cancelled). For job runners, once set_running() accepted the job.
template <class R, class F, class... A>
void fulfil(promise<R>& p, std::tuple<F, A...>& call) noexcept {
  try {
    if constexpr (std::is_void_v<R>) {
      std::apply([](F& fn, A&... a) { std::invoke(std::move(fn), std::move(a)...); }, call);
      p.set_value();
    } else {
      p.set_value(std::apply([](F& fn, A&... a) -> R { return std::invoke(std::move(fn), std::move(a)...); }, call));
    }
  } catch (...) {  // the job's outcome: it crosses to the future
    p.set_exception(std::current_exception());
  }
}

/// The callback record of add_done_callback.
template <class T, class F>
struct future_callback_impl final : future_callback {
  template <class G>
  explicit future_callback_impl(G&& g) : fn(std::forward<G>(g)) {}
  void invoke(future_state_base& s) override {
    future<T> f(static_cast<future_state<T>*>(&s));
    fn(f);
  }
  F fn;
};
}  // namespace detail

template <class T>
template <class F>
callback_id future<T>::add_done_callback(F&& fn) {
  static_assert(std::is_invocable_v<std::decay_t<F>&, future<T>&>, "a done-callback is called as fn(weft::future<T>&)");
  auto& st = s("weft::future::add_done_callback");
  return st.add_callback(new detail::future_callback_impl<T, std::decay_t<F>>(std::forward<F>(fn)));
}

/// f.get(): the outcome of a weft::future (see future::get). A checkpoint
/// in a task unless f is done already. @throws what future::get throws.
template <class T>
T unwrap_future(const future<T>& f, wait_options options = {}) {
  return f.get(options);
}

}  // namespace weft

// weft::async_executor: runs synchronous functions on an Asio executor
// (typically a boost::asio::thread_pool's) while weft tasks wait for them.
//
//   boost::asio::thread_pool pool(4);
//   weft::open_async_executor(pool.get_executor(), [&](auto& executor) {
//     int n = executor.run([](int a, int b) { return a * b; }, 6, 7);  // parks the task
//     for (std::string& page : executor.map(render, pages)) send(page);  // in input order
//   });  // waits for every job it submitted
//
// Each run() and each element of map() is one job, posted with
// boost::asio::post to the wrapped executor; its outcome goes to a
// weft::future (see future.hpp), which the task waits for. Cancel rules
// are the future's, with a job that cannot be cancelled once it runs:
//  - a job whose future is cancelled before the job has started (the
//    waiting task was cancelled, the map range was dropped, shutdown with
//    cancel_futures) never calls fn: its handler finds the future
//    cancelled and returns;
//  - once fn runs, it runs to the end: a task cancelled meanwhile waits
//    for the outcome, gets it, and is cancelled at its next checkpoint.
// Inside fn there is no weft runtime: it is a thread of the executor's
// execution context, as in run_in_thread's functions (weft's blocking
// calls throw std::logic_error there, lowlevel::in_task() is false).
// The threads are the executor's: jobs that wait for one another can
// deadlock a pool of fixed size (run_in_thread's elastic thread cache
// cannot).
//
// Outstanding jobs: a job is outstanding from its submission until its
// posted handler has returned (after fn, or at once when its future was
// cancelled before it started, fn and the arguments being destroyed
// before), or until the executor destroys the handler without running
// it (a stopped thread_pool that is destroyed or joined: the job's future
// then fails with weft::abandoned_error). shutdown() waits until none is
// left; a job cancelled while it waits in the executor's queue still
// counts until the executor gets to its handler. Destroying an
// async_executor does not wait and cancels nothing: the jobs hold the
// shared state, and go on (call shutdown() to wait for them).
#pragma once

#include <weft/cancel_scope.hpp>
#include <weft/detail/async_executor_jobs.hpp>
#include <weft/detail/core.hpp>
#include <weft/report_error.hpp>
#include <weft/threads/errors.hpp>
#include <weft/threads/future.hpp>

#include <boost/asio/execution/executor.hpp>
#include <boost/asio/is_executor.hpp>
#include <boost/asio/post.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace weft {


/// The results of async_executor::map, in input order: a move-only input
/// range (begin() and end(), for a range-for). Reaching an element waits
/// for its job (future::get: a checkpoint in a task unless the job has
/// finished; a plain thread blocks; a runtime's thread outside any task
/// gets std::logic_error); the job's exception comes out there. Both
/// dereferencing and incrementing reach the element the iterator is at.
/// Destroying the range cancels the jobs of the elements not reached yet
/// that have not started (they never run); running ones go on, their
/// outcome dropped.
template <class R>
class async_executor_results {
  static_assert(!std::is_void_v<R>, "weft::async_executor::map: fn returns void; call run() for each element");

 public:
  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = R;
    using difference_type = std::ptrdiff_t;

    iterator() noexcept = default;
    /// The current element's value (valid until the next increment); waits
    /// for it the first time. @throws what the job threw;
    /// future_cancelled_error; what future::get throws.
    R& operator*() const { return r_->current(); }
    R* operator->() const { return &r_->current(); }
    /// Moves to the next element, waiting for the current one first if it
    /// was not reached. @throws as operator*.
    iterator& operator++() {
      r_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.at_end(); }

   private:
    friend class async_executor_results;
    explicit iterator(async_executor_results* r) noexcept : r_(r) {}
    bool at_end() const noexcept { return r_ == nullptr || r_->exhausted(); }
    async_executor_results* r_ = nullptr;
  };

  async_executor_results() noexcept = default;
  async_executor_results(async_executor_results&& o) noexcept
      : futures_(std::move(o.futures_)),
        next_(std::exchange(o.next_, 0)),
        reached_(std::exchange(o.reached_, false)),
        value_(std::move(o.value_)) {
    o.futures_.clear();
    o.value_.reset();
  }
  async_executor_results& operator=(async_executor_results&& o) noexcept {
    if (this != &o) {
      cancel_rest();
      futures_ = std::move(o.futures_);
      next_ = std::exchange(o.next_, 0);
      reached_ = std::exchange(o.reached_, false);
      value_ = std::move(o.value_);
      o.futures_.clear();
      o.value_.reset();
    }
    return *this;
  }
  ~async_executor_results() { cancel_rest(); }

  /// An iterator at the first element not yet consumed. Never blocks.
  iterator begin() noexcept { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }
  /// Elements left, the current one included.
  std::size_t size() const noexcept { return futures_.size() - next_; }

 private:
  template <class>
  friend class async_executor;
  bool exhausted() const noexcept { return next_ >= futures_.size(); }
  R& current() {
    if (!value_) {
      reached_ = true;
      value_.emplace(futures_[next_].get());
    }
    return *value_;
  }
  void advance() {
    if (!reached_) {
      reached_ = true;
      (void)futures_[next_].get();
    }
    futures_[next_] = future<R>();
    value_.reset();
    reached_ = false;
    ++next_;
  }
  void cancel_rest() noexcept {
    // Without a reason, cancel() allocates nothing; nobody reads these
    // futures any more.
    for (std::size_t i = next_; i < futures_.size(); ++i)
      if (!futures_[i].done()) futures_[i].cancel();
    futures_.clear();
    next_ = 0;
  }

  std::vector<future<R>> futures_;
  std::size_t next_ = 0;
  bool reached_ = false;  // get() was called on futures_[next_]
  std::optional<R> value_;
};

template <class Executor>
class async_executor {
  static_assert(boost::asio::execution::is_executor<Executor>::value || boost::asio::is_executor<Executor>::value,
                "weft::async_executor<Executor>: Executor must be an Asio executor (e.g. "
                "boost::asio::thread_pool::executor_type)");

 public:
  /// Wraps `ex`; jobs are posted to it. @throws std::bad_alloc; what
  /// moving the executor throws.
  explicit async_executor(Executor ex) : ex_(std::move(ex)), s_(std::make_shared<detail::async_executor_state>()) {}
  async_executor(const async_executor&) = delete;
  async_executor& operator=(const async_executor&) = delete;
  /// Does not wait for the jobs and cancels nothing (see the header comment).
  ~async_executor() = default;

  /// The wrapped executor.
  Executor& wrapped() noexcept { return ex_; }

  /// Runs fn(args...) as a job on the executor and parks the calling task
  /// until it has finished; returns its value or rethrows its exception
  /// (the same object). fn and the arguments are moved (or copied) into
  /// the job, as by std::thread; pass references with std::ref. The value
  /// is copied out of the job's future (its type must be copyable). A
  /// weft::cancelled thrown by fn comes out as future_cancelled_error.
  ///
  /// A checkpoint: in a cancelled scope it throws weft::cancelled before
  /// submitting anything; then it waits with future::get (no yield if the
  /// job has finished by then). A cancellation while the job waits in the
  /// executor's queue cancels it (fn never runs) and throws
  /// weft::cancelled; once fn runs, the task waits for its outcome, which
  /// is returned, and the cancellation comes at the next checkpoint.
  /// @throws weft::cancelled; what fn throws; future_cancelled_error if the
  /// job's future was cancelled by someone else (shutdown with
  /// cancel_futures); weft::abandoned_error if the executor destroyed the
  /// job without running it; runtime_closed_error if the executor is shut
  /// down; std::logic_error outside a weft task; std::bad_alloc; what
  /// posting to the executor throws.
  template <class F, class... A>
  auto run(F&& fn, A&&... args) {
    using R = detail::async_result_t<std::decay_t<F>, std::decay_t<A>...>;
    detail::require_task("weft::async_executor::run");
    detail::raise_if_cancelled_at_entry();
    future<R> f = submit<R>("weft::async_executor::run", std::forward<F>(fn), std::forward<A>(args)...);
    return f.get();
  }

  /// Submits one job per element of the zipped ranges, fn(e1, e2, ...),
  /// at once (zipped as by Python's zip: up to the end of the shortest
  /// range), and returns the range of their results, in input order (see
  /// async_executor_results). fn is copied into each job, and each
  /// element (as the range's value type) too. Never blocks; not a
  /// checkpoint; any thread. If a submission fails, the jobs submitted
  /// before are cancelled.
  /// @throws runtime_closed_error if the executor is shut down;
  /// std::bad_alloc; what copying fn or an element throws; what posting to
  /// the executor throws.
  template <class F, std::ranges::input_range... Rs>
    requires(sizeof...(Rs) > 0 && std::copy_constructible<std::decay_t<F>>)
  auto map(F&& fn, Rs&&... ranges) {
    using fn_t = std::decay_t<F>;
    using R = detail::async_result_t<fn_t, std::ranges::range_value_t<Rs>...>;
    constexpr const char* what = "weft::async_executor::map";
    s_->check_open(what);
    fn_t f(std::forward<F>(fn));
    async_executor_results<R> results;
    auto its = std::make_tuple(std::ranges::begin(ranges)...);
    const auto ends = std::make_tuple(std::ranges::end(ranges)...);
    const auto more = [&]<std::size_t... I>(std::index_sequence<I...>) {
      return ((std::get<I>(its) != std::get<I>(ends)) && ...);
    };
    const auto step = [&]<std::size_t... I>(std::index_sequence<I...>) { (++std::get<I>(its), ...); };
    const auto submit_one = [&]<std::size_t... I>(std::index_sequence<I...>) {
      results.futures_.push_back(submit<R>(what, f, std::ranges::range_value_t<Rs>(*std::get<I>(its))...));
    };
    constexpr auto seq = std::index_sequence_for<Rs...>();
    for (; more(seq); step(seq)) {
      // Room first, so that push_back cannot throw after the job is posted.
      auto& fs = results.futures_;
      if (fs.size() == fs.capacity()) fs.reserve(fs.empty() ? 8 : 2 * fs.size());
      submit_one(seq);
    }
    return results;
  }

  /// Refuses new jobs (run and map throw runtime_closed_error from now on);
  /// with cancel_futures, cancels the jobs submitted that have not started
  /// (they never run; their waiters get future_cancelled_error); then parks
  /// the task until no job it submitted is outstanding (see the header
  /// comment). Idempotent: a later call waits the same way (and may cancel
  /// what an earlier one did not). Never blocks the runtime's thread.
  /// A checkpoint while it waits: a cancellation ends the wait with
  /// weft::cancelled (the executor stays shut down, the jobs go on); with
  /// no job outstanding it returns at once, without one.
  /// @throws weft::cancelled; std::logic_error outside a weft task;
  /// std::bad_alloc.
  void shutdown(bool cancel_futures = false) {
    detail::require_task("weft::async_executor::shutdown");
    s_->close(cancel_futures);
    if (future<void> drained = s_->drained(); drained.valid()) drained.get();
  }

  /// shutdown(cancel_futures) without the wait. Never blocks; not a
  /// checkpoint; any thread. @throws std::bad_alloc.
  void shutdown_nowait(bool cancel_futures = false) { s_->close(cancel_futures); }

  /// True once shutdown or shutdown_nowait was called.
  bool is_shut_down() const noexcept { return s_->shut_down(); }
  /// Jobs submitted and not finished yet (see the header comment).
  std::size_t outstanding_jobs() const noexcept { return s_->outstanding(); }

 private:
  template <class R, class F, class... A>
  future<R> submit(const char* what, F&& fn, A&&... args) {
    using job_t = detail::async_job<R, std::decay_t<F>, std::decay_t<A>...>;
    auto job = std::make_unique<job_t>(s_, std::forward<F>(fn), std::forward<A>(args)...);
    future<R> f = job->get_future();
    s_->add(*job, what);
    // From here the job ends by async_job_base::finish, through the handler
    // (also if post throws: the handler is destroyed then).
    boost::asio::post(ex_, detail::async_job_handler(job.release()));
    return f;
  }

  Executor ex_;
  std::shared_ptr<detail::async_executor_state> s_;
};

/// Runs body(executor) with an async_executor wrapping `ex`, then shuts it
/// down and waits for its jobs (a wait that cancellation does not
/// interrupt). If body throws (a weft::cancelled included), the jobs that
/// have not started are cancelled first (shutdown with cancel_futures),
/// and the exception comes out once the running ones have finished.
/// Returns body's value. A checkpoint as body and the wait make it.
/// @throws what body throws; std::logic_error outside a weft task;
/// std::bad_alloc.
template <class Ex, class F>
auto open_async_executor(Ex ex, F&& body) {
  using executor_t = async_executor<Ex>;
  using R = std::invoke_result_t<F, executor_t&>;
  detail::require_task("weft::open_async_executor");
  executor_t executor(std::move(ex));
  std::exception_ptr failure;
  [[maybe_unused]] std::optional<std::conditional_t<std::is_void_v<R>, int, R>> result;
  try {
    if constexpr (std::is_void_v<R>)
      std::invoke(std::forward<F>(body), executor);
    else
      result.emplace(std::invoke(std::forward<F>(body), executor));
  } catch (...) {  // comes out below, after the shutdown (never parks inside a handler)
    failure = std::current_exception();
  }
  if (failure == nullptr) {
    ignore_cancellation([&] { executor.shutdown(false); });
  } else {
    try {
      ignore_cancellation([&] { executor.shutdown(true); });
    } catch (...) {  // no memory to shut down: body's exception goes on, this one is reported
      report_error(std::current_exception(), "weft::open_async_executor: shutting down after the body failed");
    }
    std::rethrow_exception(failure);
  }
  if constexpr (!std::is_void_v<R>) return std::move(*result);
}

}  // namespace weft

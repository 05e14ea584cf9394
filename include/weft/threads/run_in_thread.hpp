// weft::run_in_thread: runs a blocking function on a worker thread while
// the calling task parks.
//
//   std::string text = weft::run_in_thread([&] { return read_whole_file(path); });
//
// The function runs on a worker of a process-wide, elastic thread cache:
// the most recently idle worker, or a new thread, while fewer workers are
// running than the process has CPUs; beyond that it waits in a short queue
// for the next worker that finishes a job. A worker whose job has run for
// 500 µs counts as blocked, and queued jobs then get more workers, so jobs
// that wait for one another cannot deadlock the cache (an
// asio::thread_pool of fixed size can). Workers idle for 10 s end. How
// many jobs a runtime's tasks hand over at once is bounded by a
// capacity_limiter (40 by default, per runtime).
//
// Inside the function there is no weft runtime: it is a plain thread.
// weft's blocking calls throw std::logic_error there, current_backend()
// throws, lowlevel::in_task() is false; a weft::future can be waited for
// (it blocks the worker); weft::run may start a runtime of its own.
// thread_local variables are the worker's, not the task's.
#pragma once

#include <weft/detail/offload.hpp>
#include <weft/threads/capacity_limiter.hpp>

#include <functional>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

namespace weft {

struct thread_options {
  /// false (the default): a cancellation of the waiting task waits for the
  /// function to finish, returns its outcome, and is delivered at the
  /// task's next checkpoint. true: the task gets weft::cancelled at once
  /// and the worker finishes alone; its value is dropped, its exception
  /// goes to weft::report_error, and the limiter's token stays borrowed
  /// until it has finished.
  bool abandon_on_cancel = false;
  /// The limiter whose token the job holds; null: current_default_thread_limiter().
  capacity_limiter* limiter = nullptr;
};

namespace detail {

template <class F, class... A>
inline constexpr bool takes_stop_token_v = std::is_invocable_v<F, std::stop_token, A...>;

template <class F, class... A>
using offload_call_result_t =
    std::conditional_t<takes_stop_token_v<F, A...>, std::invoke_result<F, std::stop_token, A...>,
                       std::invoke_result<F, A...>>;

template <class F, class... A>
using offload_result_t = std::remove_cvref_t<typename offload_call_result_t<F, A...>::type>;

template <class R, class F, class... A>
class offload_job final : public offload_base {
 public:
  static constexpr bool with_stop = takes_stop_token_v<F, A...>;

  template <class G, class... B>
  explicit offload_job(G&& g, B&&... b) : call_(std::forward<G>(g), std::forward<B>(b)...) {
    run = &run_job;
    destroy = &destroy_job;
    if constexpr (with_stop) {
      stop_.emplace();
      stop = &*stop_;
    }
    count_offload_job(1);
  }
  offload_job(const offload_job&) = delete;
  offload_job& operator=(const offload_job&) = delete;
  ~offload_job() { count_offload_job(-1); }

  /// The outcome, once finished: the value, or the exception rethrown.
  R take() {
    rethrow_offload_error(*this);
    if constexpr (!std::is_void_v<R>) return std::move(*value_);
  }

 private:
  static void run_job(thread_job* j) noexcept {
    auto* self = static_cast<offload_job*>(j);
    try {
      std::apply(
          [self](F& fn, A&... a) {
            if constexpr (std::is_void_v<R>) {
              if constexpr (with_stop)
                std::invoke(std::move(fn), self->stop_->get_token(), std::move(a)...);
              else
                std::invoke(std::move(fn), std::move(a)...);
            } else {
              if constexpr (with_stop)
                self->value_.emplace(std::invoke(std::move(fn), self->stop_->get_token(), std::move(a)...));
              else
                self->value_.emplace(std::invoke(std::move(fn), std::move(a)...));
            }
          },
          self->call_);
    } catch (...) {  // handed to the waiting task, which rethrows it (a weft::cancelled as future_cancelled_error)
      self->error = std::current_exception();
    }
    finish_offload(*self);  // the last touch of the job unless it lives on the heap
  }
  static void destroy_job(offload_base* b) noexcept { delete static_cast<offload_job*>(b); }

  std::tuple<F, A...> call_;
  struct nothing {};
  std::conditional_t<std::is_void_v<R>, nothing, std::optional<std::conditional_t<std::is_void_v<R>, int, R>>> value_;
  std::optional<std::stop_source> stop_;
};

/// Gives the token back when the task is done with it.
class token_guard {
 public:
  explicit token_guard(limiter_state& s) noexcept : s_(&s) {}
  token_guard(const token_guard&) = delete;
  token_guard& operator=(const token_guard&) = delete;
  ~token_guard() {
    if (s_ != nullptr) s_->give_back();
  }
  void dismiss() noexcept { s_ = nullptr; }

 private:
  limiter_state* s_;
};

/// The task's reference to a job on the heap.
struct job_ref {
  offload_base* job;
  ~job_ref() { job->release(); }
};

}  // namespace detail

/// Runs fn(args...) — or fn(stop_token, args...) when fn accepts a
/// std::stop_token first — on a worker thread, and parks the calling task
/// until it has finished; returns its value or rethrows its exception (the
/// same object). fn and the arguments are moved (or copied) into the job,
/// as by std::thread; pass references with std::ref. A weft::cancelled
/// thrown by fn comes out as weft::future_cancelled_error (it does not
/// cross threads).
///
/// A checkpoint: it first borrows a token of the limiter (a cancellable
/// wait); while fn runs, a cancellation of the task requests a stop (fn's
/// stop_token) and then either waits for fn (the default: fn's outcome is
/// returned and the cancellation is delivered at the next checkpoint) or,
/// with options.abandon_on_cancel, throws weft::cancelled at once. The
/// stop callbacks fn registered run on the task's runtime thread then, and
/// must be quick.
///
/// In the steady state (an idle worker waiting, fn without a stop_token) a
/// call allocates nothing when it does not abandon, and one job record
/// when it may.
/// @throws weft::cancelled; what fn throws; std::logic_error outside a weft
/// task, or with a limiter of another runtime; std::system_error if no
/// worker thread could be started; std::bad_alloc.
template <class F, class... A>
auto run_in_thread(thread_options options, F&& fn, A&&... args) {
  using R = detail::offload_result_t<std::decay_t<F>, std::decay_t<A>...>;
  using job_t = detail::offload_job<R, std::decay_t<F>, std::decay_t<A>...>;
  detail::require_task("weft::run_in_thread");
  capacity_limiter limiter = options.limiter != nullptr ? *options.limiter : current_default_thread_limiter();
  limiter.acquire();
  detail::token_guard token(limiter.state());
  lowlevel::completion done;
  if (!options.abandon_on_cancel) {
    // The task waits for the job whatever happens: it lives on its stack.
    job_t job(std::forward<F>(fn), std::forward<A>(args)...);
    job.done = &done;
    detail::start_in_worker(job);
    detail::wait_offload(job, done);
    return job.take();
  }
  auto* job = new job_t(std::forward<F>(fn), std::forward<A>(args)...);
  job->on_heap = true;
  job->done = &done;
  detail::job_ref ref{job};
  try {
    detail::start_in_worker(*job);
  } catch (...) {
    job->release();  // the worker's reference: it never started
    throw;
  }
  bool abandoned = false;
  try {
    detail::wait_offload_or_abandon(*job, done, limiter.state(), abandoned);
  } catch (...) {
    if (abandoned) token.dismiss();  // the job gives it back when it ends
    throw;
  }
  return job->take();
}

/// run_in_thread({}, fn, args...).
template <class F, class... A>
  requires(!std::is_same_v<std::remove_cvref_t<F>, thread_options>)
auto run_in_thread(F&& fn, A&&... args) {
  return run_in_thread(thread_options{}, std::forward<F>(fn), std::forward<A>(args)...);
}

}  // namespace weft

// Internal: the jobs of weft::async_executor and the state they share with
// it (see threads/async_executor.hpp and docs/internals.md, "async_executor").
#pragma once

#include <weft/detail/core.hpp>
#include <weft/detail/intrusive_list.hpp>
#include <weft/threads/errors.hpp>
#include <weft/threads/future.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace weft {

namespace detail {

class async_executor_state;
struct async_job_tag;

/// A submitted job, linked in its executor's registry until it is finished.
class async_job_base : public list_hook<async_job_tag> {
 public:
  explicit async_job_base(std::shared_ptr<async_executor_state> state) noexcept : state_(std::move(state)) {}
  async_job_base(const async_job_base&) = delete;
  async_job_base& operator=(const async_job_base&) = delete;
  virtual ~async_job_base() = default;
  /// Runs the job unless its future was cancelled first; sets the outcome.
  virtual void run() noexcept = 0;
  /// Cancels the future if the job has not started. @throws std::bad_alloc.
  virtual void cancel_if_pending(std::string_view reason) = 0;
  /// Unlinks and destroys `job`, then counts it as finished.
  static void finish(async_job_base* job) noexcept;

 private:
  std::shared_ptr<async_executor_state> state_;
};

/// What an async_executor and its jobs share: whether it is shut down, the
/// jobs not finished yet, and the tasks waiting for them to finish.
class async_executor_state {
 public:
  async_executor_state() = default;
  async_executor_state(const async_executor_state&) = delete;
  async_executor_state& operator=(const async_executor_state&) = delete;

  /// @throws runtime_closed_error if shut down.
  void check_open(const char* what) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shut_down_) throw_closed(what);
  }
  /// Registers `job`; from then on it must end by async_job_base::finish.
  /// @throws runtime_closed_error if shut down.
  void add(async_job_base& job, const char* what) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shut_down_) throw_closed(what);
    jobs_.push_back(job);
    ++outstanding_;
  }
  /// Refuses new jobs from now on; with cancel_futures, cancels the
  /// futures of the jobs that have not started. @throws std::bad_alloc.
  void close(bool cancel_futures) {
    std::lock_guard<std::mutex> lock(mutex_);
    shut_down_ = true;
    if (cancel_futures)
      jobs_.for_each([](async_job_base& job) {
        job.cancel_if_pending("weft::async_executor::shutdown: the executor was shut down with cancel_futures");
      });
  }
  /// A future that is done once no job is outstanding; an empty one if none
  /// is now. Only after close() (no job can be added any more).
  /// @throws std::bad_alloc.
  future<void> drained() {
    promise<void> p;
    std::lock_guard<std::mutex> lock(mutex_);
    if (outstanding_ == 0) return {};
    waiters_.push_back(p);
    return p.get_future();
  }
  bool shut_down() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return shut_down_;
  }
  std::size_t outstanding() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return outstanding_;
  }

 private:
  friend class async_job_base;
  [[noreturn]] static void throw_closed(const char* what) {
    throw runtime_closed_error(std::string(what) + ": the executor is shut down");
  }
  void unlink(async_job_base& job) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.erase(job);
  }
  void count_finished() noexcept {
    std::vector<promise<void>> wake;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--outstanding_ == 0 && shut_down_) wake.swap(waiters_);
    }
    // A waiter that was cancelled meanwhile refuses the value: nothing to do.
    for (promise<void>& p : wake) p.set_value();
  }

  mutable std::mutex mutex_;
  bool shut_down_ = false;
  std::size_t outstanding_ = 0;  // registered jobs not yet counted as finished
  intrusive_list<async_job_base, async_job_tag> jobs_;
  std::vector<promise<void>> waiters_;  // one per shutdown() waiting
};

inline void async_job_base::finish(async_job_base* job) noexcept {
  std::shared_ptr<async_executor_state> s = std::move(job->state_);
  s->unlink(*job);
  delete job;  // fn and the arguments go before the job counts as finished
  s->count_finished();
}

template <class R, class F, class... A>
class async_job final : public async_job_base {
 public:
  template <class G, class... B>
  async_job(std::shared_ptr<async_executor_state> state, G&& g, B&&... b)
      : async_job_base(std::move(state)), call_(std::forward<G>(g), std::forward<B>(b)...) {}

  future<R> get_future() const { return promise_.get_future(); }

  void run() noexcept override {
    if (!promise_.set_running()) return;  // cancelled before it started: fn never runs
    fulfil(promise_, call_);
  }

  void cancel_if_pending(std::string_view reason) override {
    future<R> f = promise_.get_future();
    if (!f.done() && !f.running()) f.cancel(reason);
  }

 private:
  promise<R> promise_;
  std::tuple<F, A...> call_;
};

/// The posted handler: owns the job; the job is finished when the handler
/// has run it, or when the handler is destroyed without running.
class async_job_handler {
 public:
  explicit async_job_handler(async_job_base* job) noexcept : job_(job) {}
  async_job_handler(async_job_handler&& o) noexcept : job_(std::exchange(o.job_, nullptr)) {}
  async_job_handler& operator=(async_job_handler&&) = delete;
  ~async_job_handler() {
    if (job_ != nullptr) async_job_base::finish(job_);
  }
  void operator()() noexcept {
    async_job_base* job = std::exchange(job_, nullptr);
    job->run();
    async_job_base::finish(job);
  }

 private:
  async_job_base* job_;
};

template <class F, class... A>
using async_result_t = std::remove_cvref_t<std::invoke_result_t<F, A...>>;

}  // namespace detail

}  // namespace weft

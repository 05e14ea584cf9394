// Where an operation completes, for the completion tests: the task's own
// runtime, another weft runtime's thread, an asio::thread_pool, a strand on
// that pool, or a plain std::thread. Each place runs functions, runs timed
// waits that can be cancelled, and (except the plain thread) has an Asio
// executor for I/O objects and co_spawn.
#pragma once

#include "support/support.hpp"

#include <weft/lowlevel/park.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace weft_test {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

enum class place_kind { same_runtime, other_runtime, thread_pool, strand, plain_thread };

inline const char* name_of(place_kind k) {
  switch (k) {
    case place_kind::same_runtime: return "the task's own runtime";
    case place_kind::other_runtime: return "another weft runtime";
    case place_kind::thread_pool: return "an asio::thread_pool";
    case place_kind::strand: return "a strand on a thread_pool";
    case place_kind::plain_thread: return "a plain std::thread";
  }
  return "?";
}

inline constexpr place_kind all_places[] = {place_kind::same_runtime, place_kind::other_runtime,
                                            place_kind::thread_pool, place_kind::strand, place_kind::plain_thread};

/// A move-only nullary (or unary) function.
template <class... A>
class unique_fn {
 public:
  unique_fn() = default;
  template <class F>
  unique_fn(F f) : p_(std::make_unique<impl<F>>(std::move(f))) {}
  void operator()(A... a) { (*p_)(std::move(a)...); }
  explicit operator bool() const noexcept { return static_cast<bool>(p_); }

 private:
  struct base {
    virtual ~base() = default;
    virtual void operator()(A... a) = 0;
  };
  template <class F>
  struct impl final : base {
    explicit impl(F f) : f(std::move(f)) {}
    void operator()(A... a) override { f(std::move(a)...); }
    F f;
  };
  std::unique_ptr<base> p_;
};

/// A plain thread that runs functions in order, and timed callbacks that
/// can be cancelled (they then run at once with operation_aborted).
class worker_thread {
 public:
  worker_thread() : thread_([this] { loop(); }) {}
  ~worker_thread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  worker_thread(const worker_thread&) = delete;
  worker_thread& operator=(const worker_thread&) = delete;

  void run(unique_fn<> fn) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  std::uint64_t new_id() {
    std::lock_guard lock(mutex_);
    return ++last_id_;
  }
  void run_at(std::uint64_t id, std::chrono::steady_clock::time_point when, unique_fn<error_code> fn) {
    {
      std::lock_guard lock(mutex_);
      timed_.emplace(id, timed{when, std::move(fn)});
    }
    cv_.notify_one();
  }
  /// Thread-safe; a timed callback still pending runs (soon, on the worker) with operation_aborted.
  void cancel(std::uint64_t id) {
    {
      std::lock_guard lock(mutex_);
      auto it = timed_.find(id);
      if (it == timed_.end()) return;
      it->second.when = std::chrono::steady_clock::time_point::min();
      it->second.aborted = true;
    }
    cv_.notify_one();
  }

 private:
  struct timed {
    std::chrono::steady_clock::time_point when;
    unique_fn<error_code> fn;
    bool aborted = false;
  };
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!jobs_.empty()) {
        unique_fn<> job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        job();
        lock.lock();
        continue;
      }
      auto due = timed_.end();
      for (auto it = timed_.begin(); it != timed_.end(); ++it)
        if (due == timed_.end() || it->second.when < due->second.when) due = it;
      if (due != timed_.end() && due->second.when <= std::chrono::steady_clock::now()) {
        unique_fn<error_code> fn = std::move(due->second.fn);
        const bool aborted = due->second.aborted;
        timed_.erase(due);
        lock.unlock();
        fn(aborted ? error_code(asio::error::operation_aborted) : error_code());
        lock.lock();
        continue;
      }
      if (stop_ && timed_.empty()) return;
      if (due != timed_.end())
        cv_.wait_until(lock, due->second.when);
      else
        cv_.wait(lock);
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<unique_fn<>> jobs_;
  std::map<std::uint64_t, timed> timed_;
  std::uint64_t last_id_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

/// A weft runtime on its own thread, idle until destroyed.
class other_runtime {
 public:
  other_runtime()
      : thread_([this] {
          weft::run([this] {
            asio::steady_timer stop(weft::lowlevel::io_context(), asio::steady_timer::time_point::max());
            {
              std::lock_guard lock(mutex_);
              io_ = &weft::lowlevel::io_context();
              stop_ = &stop;
            }
            cv_.notify_all();
            error_code ec;
            stop.async_wait(weft::use_fiber[ec]);  // until the destructor cancels it
          });
        }) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return io_ != nullptr; });
  }
  ~other_runtime() {
    asio::post(*io_, [t = stop_] { t->cancel(); });
    thread_.join();
  }
  other_runtime(const other_runtime&) = delete;
  other_runtime& operator=(const other_runtime&) = delete;
  asio::io_context& io() { return *io_; }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  asio::io_context* io_ = nullptr;
  asio::steady_timer* stop_ = nullptr;
  std::thread thread_;
};

/// Every place but the task's own runtime (which is whichever runtime runs
/// the test body).
struct places {
  other_runtime r2;
  asio::thread_pool pool{2};
  asio::strand<asio::thread_pool::executor_type> strand{asio::make_strand(pool)};
  worker_thread worker;

  ~places() { pool.join(); }

  /// The place's executor (the plain thread has none: the runtime's).
  asio::any_io_executor executor(place_kind k) {
    switch (k) {
      case place_kind::same_runtime: return weft::lowlevel::io_context().get_executor();
      case place_kind::other_runtime: return r2.io().get_executor();
      case place_kind::thread_pool: return pool.get_executor();
      case place_kind::strand: return strand;
      case place_kind::plain_thread: break;
    }
    return weft::lowlevel::io_context().get_executor();
  }

  /// Runs fn there.
  void run(place_kind k, unique_fn<> fn) {
    if (k == place_kind::plain_thread)
      worker.run(std::move(fn));
    else
      asio::post(executor(k), std::move(fn));
  }
};

/// Completes a handler as an Asio operation does: through its associated
/// executor (by default inline, on the completing thread).
template <class Handler, class... A>
void complete_handler(Handler h, A... a) {
  auto ex = asio::get_associated_executor(h);
  asio::dispatch(ex, [h = std::move(h), ... a = std::move(a)]() mutable { std::move(h)(std::move(a)...); });
}

/// An operation that completes on place `k` with 2 * x.
template <class Token>
auto async_double(places& p, place_kind k, int x, Token&& token) {
  return asio::async_initiate<Token, void(error_code, int)>(
      [&p, k](auto handler, int v) {
        p.run(k, [h = std::move(handler), v]() mutable { complete_handler(std::move(h), error_code(), 2 * v); });
      },
      token, x);
}

/// A timed wait on place `k`, cancellable through the handler's slot; the
/// task owns it while it waits. Its initiation names the executor the wait
/// runs on (the plain thread's waits cancel from any thread: the runtime's).
class sleeper {
 public:
  sleeper(places& p, place_kind k) : p_(p) {
    if (k != place_kind::plain_thread) timer_.emplace(p.executor(k));
  }
  template <class Token>
  auto async_wait(std::chrono::microseconds d, Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(initiation{this}, token, d);
  }

 private:
  struct initiation {
    sleeper* self;
    asio::any_io_executor get_executor() const {
      return self->timer_ ? self->timer_->get_executor() : weft::lowlevel::io_context().get_executor();
    }
    template <class Handler>
    void operator()(Handler handler, std::chrono::microseconds d) const {
      if (self->timer_) {
        self->timer_->expires_after(d);
        self->timer_->async_wait(std::move(handler));
        return;
      }
      worker_thread& w = self->p_.worker;
      const std::uint64_t id = w.new_id();
      // Assigned before the worker can complete the handler.
      auto slot = asio::get_associated_cancellation_slot(handler);
      if (slot.is_connected()) slot.assign([w = &w, id](asio::cancellation_type) { w->cancel(id); });
      w.run_at(id, std::chrono::steady_clock::now() + d,
               [h = std::move(handler)](error_code ec) mutable { complete_handler(std::move(h), ec); });
    }
  };
  places& p_;
  std::optional<asio::steady_timer> timer_;
};

/// A C++20 awaitable (not Asio) resumed on place `k` after `delay`, with
/// 2 * x.
struct resume_there {
  places& p;
  place_kind k;
  int x;
  std::chrono::microseconds delay{0};
  int result = 0;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    auto resume = [this, h](error_code) {
      result = 2 * x;
      h.resume();
    };
    if (delay.count() == 0) {
      p.run(k, [resume]() mutable { resume(error_code()); });
    } else if (k == place_kind::plain_thread) {
      p.worker.run_at(p.worker.new_id(), std::chrono::steady_clock::now() + delay, resume);
    } else {
      auto timer = std::make_shared<asio::steady_timer>(p.executor(k), delay);
      timer->async_wait([timer, resume](error_code ec) mutable { resume(ec); });
    }
  }
  int await_resume() const noexcept { return result; }
};

}  // namespace weft_test

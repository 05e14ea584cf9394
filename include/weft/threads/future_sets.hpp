// Waiting for sets of weft::futures: wait() until one, one failure, or all
// of them are done, and as_completed() to take them in the order they
// finish.
//
//   std::vector<weft::future<int>> jobs = ...;   // from callers, portals, executors
//   auto [done, pending] = weft::wait(jobs, {.timeout = weft::duration(2)});
//   for (weft::future<int>& f : weft::as_completed(jobs))
//     use(f.get());                              // done: get() does not wait
//
// Both wait the way future::wait does: a weft task parks (a checkpoint), a
// plain thread blocks, a runtime's thread outside any task is refused
// (std::logic_error) unless nothing has to be waited for. Neither cancels
// the futures on a timeout.
#pragma once

#include <weft/errors.hpp>
#include <weft/threads/future.hpp>
#include <weft/time.hpp>

#include <cstddef>
#include <deque>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <ranges>
#include <stdexcept>
#include <utility>
#include <vector>

namespace weft {

/// When wait() returns.
enum class return_when {
  first_completed,  ///< once any future is done
  first_exception,  ///< once any future ends with an exception (or is cancelled), or all are done
  all_completed,    ///< once every future is done
};

struct future_set_options {
  /// Return (with what is done by then) after this long; infinite: never.
  duration timeout{std::numeric_limits<double>::infinity()};
  return_when when = return_when::all_completed;
};

/// What wait() found: the futures done and those still pending, each in
/// the order they were given.
template <class T>
struct wait_result {
  std::vector<future<T>> done;
  std::vector<future<T>> pending;
};

namespace detail {

/// The shared part of a wait over a set of futures: a count, and a signal
/// that the callbacks (on any thread) complete once the condition holds.
struct future_set_signal {
  std::mutex mutex;
  std::size_t remaining = 0;
  promise<void> reached;
};

template <class T>
bool ended_badly(const future<T>& f) {
  return f.cancelled() || f.exception() != nullptr;
}

}  // namespace detail

/// Waits until `futures` (a range of weft::future<T>) meet `options.when`,
/// or until options.timeout has passed, and returns which are done. Never
/// throws a timeout and never cancels a future. A checkpoint in a task
/// (unless the condition holds already): a cancelled task throws
/// weft::cancelled, and the futures go on.
/// @throws weft::cancelled; std::invalid_argument for a negative or NaN
/// timeout, or an empty (default-constructed) future; std::logic_error on
/// a runtime's thread outside any task when it would have to wait.
template <std::ranges::input_range Range>
auto wait(Range&& futures, future_set_options options = {}) {
  using F = std::remove_cvref_t<std::ranges::range_reference_t<Range>>;
  using T = decltype(std::declval<F&>().get());
  if (!(options.timeout >= duration::zero()))
    throw std::invalid_argument("weft::wait: the timeout must be zero or more seconds");
  std::vector<future<T>> all;
  for (auto&& f : futures) {
    if (!f.valid()) throw std::invalid_argument("weft::wait: an empty weft::future");
    all.push_back(f);
  }
  auto holds = [&] {
    std::size_t done = 0;
    for (auto& f : all) {
      if (!f.done()) continue;
      ++done;
      if (options.when == return_when::first_completed) return true;
      if (options.when == return_when::first_exception && detail::ended_badly(f)) return true;
    }
    return done == all.size();
  };
  if (!holds() && options.timeout > duration::zero()) {
    auto signal = std::make_shared<detail::future_set_signal>();
    future<void> reached = signal->reached.get_future();
    {
      std::lock_guard<std::mutex> lock(signal->mutex);
      signal->remaining = all.size();
    }
    std::vector<callback_id> ids;
    ids.reserve(all.size());
    const return_when when = options.when;
    for (auto& f : all)
      ids.push_back(f.add_done_callback([signal, when](future<T>& done) {
        bool now = when == return_when::first_completed ||
                   (when == return_when::first_exception && detail::ended_badly(done));
        {
          std::lock_guard<std::mutex> lock(signal->mutex);
          if (--signal->remaining == 0) now = true;
        }
        if (now) signal->reached.set_value();  // false after the first: fine
      }));
    struct remove_callbacks {
      std::vector<future<T>>& all;
      std::vector<callback_id>& ids;
      ~remove_callbacks() {
        for (std::size_t i = 0; i < ids.size(); ++i) all[i].remove_done_callback(ids[i]);
      }
    } cleanup{all, ids};
    // The callbacks may run later than the futures are done (on their home
    // runtime): the condition is checked again after each wake.
    if (!holds()) {
      try {
        reached.wait({.timeout = options.timeout, .shield = false});
      } catch (const timeout_error&) {
        // Return what is done by now.
      }
    }
  }
  wait_result<T> result;
  for (auto& f : all) (f.done() ? result.done : result.pending).push_back(std::move(f));
  return result;
}

/// The futures of `futures` (a range of weft::future<T>), each once, in
/// the order they finish (those done already first, in the given order):
/// an input range whose every step waits for the next future to be done,
/// as future::wait waits (a checkpoint in a task, unless one is done
/// already). If the waiting task is cancelled, the futures not yet taken
/// are cancelled and weft::cancelled is thrown.
/// @throws std::invalid_argument for an empty future; from the steps,
/// weft::cancelled and what future::wait throws.
template <class T>
class as_completed_range {
 public:
  template <std::ranges::input_range Range>
  explicit as_completed_range(Range&& futures) : state_(std::make_shared<state>()) {
    for (auto&& f : futures) {
      if (!f.valid()) throw std::invalid_argument("weft::as_completed: an empty weft::future");
      state_->all.push_back(f);
    }
    for (std::size_t i = 0; i < state_->all.size(); ++i) {
      auto st = state_;
      state_->ids.push_back(state_->all[i].add_done_callback([st, i](future<T>&) { st->finished(i); }));
    }
    // Those done already come first, in the given order (their callbacks
    // are only scheduled).
    std::lock_guard<std::mutex> lock(state_->mutex);
    for (std::size_t i = 0; i < state_->all.size(); ++i)
      if (state_->all[i].done()) state_->mark(i);
  }
  as_completed_range(as_completed_range&&) noexcept = default;
  as_completed_range& operator=(as_completed_range&&) noexcept = default;
  as_completed_range(const as_completed_range&) = delete;
  as_completed_range& operator=(const as_completed_range&) = delete;
  ~as_completed_range() {
    if (state_ == nullptr) return;
    for (std::size_t i = 0; i < state_->ids.size(); ++i) state_->all[i].remove_done_callback(state_->ids[i]);
  }

  class iterator {
   public:
    using value_type = future<T>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    future<T>& operator*() const { return range_->current_; }
    iterator& operator++() {
      range_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const noexcept { return range_->at_end_; }

   private:
    friend class as_completed_range;
    explicit iterator(as_completed_range* r) noexcept : range_(r) {}
    as_completed_range* range_ = nullptr;
  };

  /// The first step (it waits). Call once.
  iterator begin() {
    advance();
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  struct state {
    std::mutex mutex;
    std::vector<future<T>> all;
    std::vector<callback_id> ids;
    std::vector<bool> queued;       // by index: put in `ready` already
    std::deque<std::size_t> ready;  // done, not taken yet
    std::size_t taken = 0;
    promise<void> wake;  // set when `ready` gets an entry while a step waits
    bool waiting = false;

    void mark(std::size_t i) {  // under the mutex
      if (queued.size() < all.size()) queued.resize(all.size(), false);
      if (queued[i]) return;
      queued[i] = true;
      ready.push_back(i);
    }
    void finished(std::size_t i) {
      promise<void> to_wake;
      {
        std::lock_guard<std::mutex> lock(mutex);
        mark(i);
        if (!waiting) return;
        waiting = false;
        to_wake = wake;
      }
      to_wake.set_value();
    }
  };

  void advance() {
    state& s = *state_;
    for (;;) {
      future<void> wait_for;
      {
        std::lock_guard<std::mutex> lock(s.mutex);
        if (s.taken == s.all.size()) {
          at_end_ = true;
          current_ = future<T>();
          return;
        }
        // A future may be done before its callback has run (on its home):
        // look for one before waiting.
        if (s.ready.empty())
          for (std::size_t i = 0; i < s.all.size(); ++i)
            if (s.all[i].done()) s.mark(i);
        if (!s.ready.empty()) {
          const std::size_t i = s.ready.front();
          s.ready.pop_front();
          ++s.taken;
          current_ = s.all[i];
          return;
        }
        s.wake = promise<void>();
        s.waiting = true;
        wait_for = s.wake.get_future();
      }
      try {
        wait_for.wait();
      } catch (const cancelled&) {
        cancel_rest();
        throw;
      }
    }
  }

  void cancel_rest() {
    state& s = *state_;
    std::vector<future<T>> rest;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      if (s.queued.size() < s.all.size()) s.queued.resize(s.all.size(), false);
      for (std::size_t i = 0; i < s.all.size(); ++i)
        if (!s.queued[i]) rest.push_back(s.all[i]);
    }
    for (auto& f : rest) f.cancel("weft::as_completed: the waiting task was cancelled");
  }

  std::shared_ptr<state> state_;
  future<T> current_;
  bool at_end_ = false;
};

/// as_completed_range over `futures` (see there).
template <std::ranges::input_range Range>
auto as_completed(Range&& futures) {
  using F = std::remove_cvref_t<std::ranges::range_reference_t<Range>>;
  using T = decltype(std::declval<F&>().get());
  return as_completed_range<T>(std::forward<Range>(futures));
}

}  // namespace weft

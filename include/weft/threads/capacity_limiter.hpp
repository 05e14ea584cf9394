// weft::capacity_limiter: how many of something (worker threads, by
// default) the tasks of one runtime may use at once (trio's CapacityLimiter).
//
// A limiter holds `total_tokens` tokens; acquire() borrows one, waiting in
// FIFO order while none is free; release() gives it back (handing it to
// the first waiter). run_in_thread borrows a token of its limiter for as
// long as its job runs: when a task abandons its job (abandon_on_cancel),
// the token stays borrowed until the worker has finished.
//
// A limiter belongs to the runtime whose task first acquires from it; like
// weft::semaphore it is not thread-safe, and a use by another runtime's
// task throws std::logic_error. It is a copyable handle: copies share the
// tokens, and the tokens outlive every handle while a job holds one. (It
// is built on the parking lot under weft::semaphore, not on a semaphore:
// its total can change, and a token may be given back by a job that
// outlived its task.)
#pragma once

#include <weft/detail/core.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace weft {

namespace detail {
/// The shared tokens of a capacity_limiter (its handles and the jobs that
/// hold one reference it). Used on its runtime's thread only, but it may
/// be released last by a worker thread, hence the atomic count.
struct limiter_state {
  std::atomic<std::uint32_t> refs{1};
  std::size_t total = 0;
  std::size_t borrowed = 0;
  std::uint64_t runtime_serial = 0;  // the runtime it belongs to; 0 until first used
  parking_lot waiters;
  void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  /// Gives one token back (the runtime's thread).
  void give_back() noexcept;
};
}  // namespace detail

class capacity_limiter {
 public:
  /// @throws std::invalid_argument if total_tokens is 0; std::bad_alloc.
  explicit capacity_limiter(std::size_t total_tokens);
  capacity_limiter(const capacity_limiter& o) noexcept : s_(o.s_) { s_->add_ref(); }
  capacity_limiter& operator=(const capacity_limiter& o) noexcept {
    o.s_->add_ref();
    s_->release();
    s_ = o.s_;
    return *this;
  }
  ~capacity_limiter() { s_->release(); }

  /// Borrows a token, blocking (FIFO) while none is free. Checkpoint: in a
  /// cancelled scope it throws even when a token is free (and borrows
  /// none); a free token with nobody waiting is taken without yielding.
  /// @throws weft::cancelled; std::logic_error outside a task, or from a
  /// task of another runtime than the limiter's.
  void acquire();
  /// Borrows a free token if there is one, without blocking. Not a checkpoint.
  /// @throws std::logic_error from another runtime's thread.
  bool try_acquire();
  /// Gives a token back (to the first waiter, if any). Never blocks.
  /// @throws std::logic_error if no token is borrowed, or from another
  /// runtime's thread.
  void release();

  std::size_t total_tokens() const noexcept { return s_->total; }
  /// Changes the number of tokens; more tokens wake waiters at once. Fewer
  /// than are borrowed take effect as tokens come back.
  /// @throws std::invalid_argument for 0; std::logic_error from another
  /// runtime's thread.
  void set_total_tokens(std::size_t n);
  std::size_t borrowed_tokens() const noexcept { return s_->borrowed; }
  std::size_t available_tokens() const noexcept {
    return s_->borrowed < s_->total ? s_->total - s_->borrowed : 0;
  }
  /// Tasks waiting in acquire().
  std::size_t waiting() const noexcept { return s_->waiters.size(); }

  /// For run_in_thread: the shared tokens.
  detail::limiter_state& state() const noexcept { return *s_; }

 private:
  detail::limiter_state* s_;
};

/// The limiter run_in_thread uses when given none: 40 tokens, one per
/// runtime (a new one for each weft::run on the thread). Not a checkpoint.
/// @throws std::logic_error when no weft runtime runs on this thread.
capacity_limiter& current_default_thread_limiter();

}  // namespace weft

// weft::semaphore: a counting semaphore with FIFO hand-off.
//
// Single-runtime by design: no locks on the hot path. Use it from the tasks
// (and Asio handlers) of one runtime. A call from another thread that would
// wake a task ends the program with a message naming the misuse, instead of
// corrupting the runtime; other threads hand work to the runtime with
// weft::use_fiber / greenback::await_ (operations on any executor),
// weft::lowlevel::completion, or asio::post to its io_context.
#pragma once

#include <weft/detail/core.hpp>

#include <cstddef>
#include <limits>

namespace weft {

class semaphore {
 public:
  /// @throws std::invalid_argument if initial > max.
  explicit semaphore(std::size_t initial, std::size_t max = std::numeric_limits<std::size_t>::max());
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  /// Takes one unit, blocking while none is available (FIFO). Taking an
  /// available unit with nobody waiting does not yield. Checkpoint: in a
  /// cancelled scope it throws even when a unit is available (and takes
  /// none). @throws weft::cancelled.
  void acquire();
  bool try_acquire() noexcept;
  /// Returns one unit (handed to the first waiter, if any).
  /// @throws std::logic_error if that would exceed the maximum, or if the
  /// waiters are tasks of another runtime than the calling thread's.
  void release();
  std::size_t value() const noexcept { return value_; }
  std::size_t max_value() const noexcept { return max_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

  async_backend& backend() const noexcept;

 private:
  std::size_t value_;
  std::size_t max_;
  detail::parking_lot waiters_;
};

}  // namespace weft

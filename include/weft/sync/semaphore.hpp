// weft::semaphore: a counting semaphore with FIFO hand-off.
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
  /// @throws std::logic_error if that would exceed the maximum.
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

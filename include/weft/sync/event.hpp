// weft::event: a one-shot flag tasks can wait for.
#pragma once

#include <weft/detail/core.hpp>

namespace weft {

/// Not thread-safe: belongs to one runtime (set() may be called from Asio
/// handlers of that runtime too).
class event {
 public:
  event() noexcept = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  /// Sets the flag and wakes every waiter. Idempotent. Not a checkpoint.
  void set() noexcept;
  bool is_set() const noexcept { return set_; }
  /// Blocks until the flag is set; returns at once, without yielding, if
  /// it already is. Checkpoint: in a cancelled scope it throws even when
  /// the flag is set.
  /// @throws weft::cancelled; std::logic_error outside a task.
  void wait();

  async_backend& backend() const noexcept;

 private:
  detail::parking_lot waiters_;
  bool set_ = false;
};

}  // namespace weft

// weft::event: a one-shot flag tasks can wait for.
//
// Single-runtime by design: no locks on the hot path. Use it from the tasks
// (and Asio handlers) of one runtime. A call from another thread (or from a
// task of another runtime) that would wake or join its waiters is refused,
// never a silent corruption of the runtime: set() throws std::logic_error
// naming the rule. Other threads hand work to the runtime with
// weft::use_fiber / greenback::await_ (operations on any executor),
// weft::lowlevel::completion, or asio::post to its io_context.
#pragma once

#include <weft/detail/core.hpp>

namespace weft {

/// Not thread-safe: belongs to one runtime (set() may be called from Asio
/// handlers of that runtime too; see the header comment).
class event {
 public:
  event() noexcept = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  /// Sets the flag and wakes every waiter. Idempotent. Not a checkpoint.
  /// @throws std::logic_error (and sets nothing) if tasks of another
  /// runtime than the calling thread's wait for it.
  void set();
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

// weft::testing::sequencer: force an explicit interleaving of tasks.
#pragma once

#include <weft/detail/core.hpp>

#include <cstddef>
#include <set>
#include <utility>

namespace weft::testing {

/// seq(i, fn) waits until every position before i has finished, runs fn,
/// then lets position i + 1 go. Each position is used once. If a task is
/// cancelled while waiting for its turn, the sequencer is broken and every
/// waiter gets std::runtime_error.
class sequencer {
 public:
  template <class F>
  decltype(auto) operator()(std::size_t position, F&& fn) {
    wait_turn(position);
    struct done_guard {
      sequencer& s;
      ~done_guard() { s.finish(); }
    } guard{*this};
    return std::forward<F>(fn)();
  }

  /// Blocks until it is `position`'s turn. Checkpoint.
  /// @throws std::logic_error if the position was used; std::runtime_error
  /// if the sequencer is broken; weft::cancelled.
  void wait_turn(std::size_t position);
  /// Ends the current position.
  void finish() noexcept;

 private:
  std::set<std::size_t> claimed_;
  std::size_t next_ = 0;
  bool broken_ = false;
  detail::parking_lot waiters_;
};

}  // namespace weft::testing

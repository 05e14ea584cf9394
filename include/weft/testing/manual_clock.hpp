// weft::testing::manual_clock: virtual time for tests (jump, autojump).
#pragma once

#include <weft/time.hpp>

namespace weft::testing {

/// A clock whose time moves only when told to: by jump(), or, with
/// autojump on, to the next deadline whenever every task is blocked and no
/// I/O is ready — so timeout tests run instantly and exactly.
/// Used from its runtime's thread only.
class manual_clock final : public clock {
 public:
  explicit manual_clock(time_point start = time_point{}, bool autojump = false) noexcept
      : now_(start), autojump_(autojump) {}

  time_point now() const override { return now_; }
  std::optional<std::chrono::steady_clock::time_point> wake_time(time_point) const override { return std::nullopt; }
  bool try_autojump(time_point next_deadline) override;

  /// Advances the time by d; deadlines that are now due fire at once.
  /// @throws std::invalid_argument if d is negative or NaN.
  void jump(duration d);
  void set_autojump(bool on) noexcept { autojump_ = on; }
  bool autojump() const noexcept { return autojump_; }

 private:
  time_point now_;
  bool autojump_;
};

}  // namespace weft::testing

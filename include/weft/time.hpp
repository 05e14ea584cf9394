// Time in weft: runtime-clock durations and time points, and the clock interface.
#pragma once

#include <chrono>
#include <limits>
#include <optional>

namespace weft {

namespace detail {
class runtime;
}

/// Seconds as a double: accepts any std::chrono duration (`weft::sleep(10ms)`),
/// and can be infinite (no deadline) or NaN (rejected by every function that
/// takes one).
using duration = std::chrono::duration<double>;

/// The tag clock of weft's time points. Time points are only meaningful
/// relative to the runtime clock that produced them (see `current_time()`).
struct runtime_clock {
  using rep = double;
  using period = std::ratio<1>;
  using duration = weft::duration;
  using time_point = std::chrono::time_point<runtime_clock, duration>;
  static constexpr bool is_steady = true;
};

using time_point = runtime_clock::time_point;

/// A time point later than every other: "no deadline".
inline constexpr time_point inf_time{duration{std::numeric_limits<double>::infinity()}};

/// The clock a runtime reads its time from. A runtime owns one clock for its
/// whole run; every deadline (sleeps, cancel scopes, timed waits) is expressed
/// in its time. Clocks are used from their runtime's thread only.
class clock {
 public:
  virtual ~clock();

  /// The current time. Monotonic.
  virtual time_point now() const = 0;

  /// The real (steady_clock) time at which the runtime must wake up to honour
  /// `deadline`, or nullopt if real time never brings that deadline closer
  /// (a manual clock: only `jump` does).
  virtual std::optional<std::chrono::steady_clock::time_point> wake_time(time_point deadline) const = 0;

  /// Called by the runtime when every task is blocked, no I/O is ready and
  /// `next_deadline` is the earliest pending deadline. A clock that returns
  /// true has advanced its time to `next_deadline` (autojump).
  virtual bool try_autojump(time_point next_deadline);

 protected:
  /// Tells the runtime using this clock that time moved forward outside its
  /// control (a manual jump), so expired deadlines fire now.
  void time_changed();

 private:
  friend class detail::runtime;
  detail::runtime* runtime_ = nullptr;
};

/// The default clock: std::chrono::steady_clock, in seconds.
class real_clock final : public clock {
 public:
  time_point now() const override;
  std::optional<std::chrono::steady_clock::time_point> wake_time(time_point deadline) const override;

 private:
  static double now_seconds() noexcept;
};

}  // namespace weft

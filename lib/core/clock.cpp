// The clock base and the real clock (time.hpp).

#include "core/runtime.hpp"
#include "core/time_checks.hpp"

#include <weft/time.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include <time.h>

namespace weft {

clock::~clock() = default;
bool clock::try_autojump(time_point) { return false; }
void clock::time_changed() {
  if (runtime_ != nullptr) runtime_->fire_expired();
}

void throw_nan_time(const char* what) { throw std::invalid_argument(std::string(what) + ": the time is NaN"); }
void throw_bad_delay(duration d, const char* what) {
  throw std::invalid_argument(std::string(what) + (std::isnan(d.count()) ? ": the delay is NaN" : ": the delay is negative"));
}
void throw_no_runtime(const char* what) {
  throw std::logic_error(std::string(what) + " must be called on a thread running a weft runtime");
}

namespace detail {

double coarse_clock_tick() noexcept {
  // CLOCK_MONOTONIC_COARSE is CLOCK_MONOTONIC as of the kernel's last tick:
  // behind it by less than one tick (its resolution).
  timespec res{};
  if (::clock_getres(CLOCK_MONOTONIC_COARSE, &res) != 0) return -1;
  return static_cast<double>(res.tv_sec) + static_cast<double>(res.tv_nsec) * 1e-9;
}

}  // namespace detail

time_point real_clock::now() const { return time_point(duration(now_seconds())); }

std::optional<std::chrono::steady_clock::time_point> real_clock::wake_time(time_point deadline) const {
  const double secs = deadline.time_since_epoch().count();
  const double now = now_seconds();
  // Far deadlines (or infinity): wake in a day and look again.
  const double capped = secs - now > 86400.0 ? now + 86400.0 : secs;
  const auto ns = std::chrono::nanoseconds(static_cast<std::int64_t>(std::ceil(capped * 1e9)));
  return std::chrono::steady_clock::time_point(std::chrono::duration_cast<std::chrono::steady_clock::duration>(ns));
}

double real_clock::now_seconds() noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace weft

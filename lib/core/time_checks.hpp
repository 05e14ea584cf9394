// Argument checks shared by the functions that take times and delays.
#pragma once

#include "core/runtime.hpp"

#include <weft/time.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

namespace weft {

// The throws, out of line: the checks themselves stay a compare or two.
[[noreturn]] void throw_nan_time(const char* what);
[[noreturn]] void throw_bad_delay(duration d, const char* what);
[[noreturn]] void throw_no_runtime(const char* what);

inline void check_not_nan(time_point t, const char* what) {
  if (std::isnan(t.time_since_epoch().count())) [[unlikely]]
    throw_nan_time(what);
}
inline void check_delay(duration d, const char* what) {
  if (!(d.count() >= 0)) [[unlikely]]  // negative or NaN
    throw_bad_delay(d, what);
}
inline detail::runtime& require_runtime(const char* what) {
  detail::runtime* rt = detail::t_runtime;
  if (rt == nullptr) [[unlikely]]
    throw_no_runtime(what);
  return *rt;
}

}  // namespace weft

// Argument checks shared by the functions that take times and delays.
#pragma once

#include "core/runtime.hpp"

#include <weft/time.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

namespace weft {

inline void check_not_nan(time_point t, const char* what) {
  if (std::isnan(t.time_since_epoch().count())) throw std::invalid_argument(std::string(what) + ": the time is NaN");
}
inline void check_delay(duration d, const char* what) {
  if (std::isnan(d.count())) throw std::invalid_argument(std::string(what) + ": the delay is NaN");
  if (d.count() < 0) throw std::invalid_argument(std::string(what) + ": the delay is negative");
}
inline detail::runtime& require_runtime(const char* what) {
  detail::runtime* rt = detail::runtime::current();
  if (rt == nullptr) throw std::logic_error(std::string(what) + " must be called on a thread running a weft runtime");
  return *rt;
}

}  // namespace weft

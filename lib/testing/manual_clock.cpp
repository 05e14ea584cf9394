// The manual clock (testing/manual_clock.hpp).

#include "core/runtime.hpp"

#include <weft/testing/manual_clock.hpp>

#include <cmath>
#include <stdexcept>

namespace weft::testing {

bool manual_clock::try_autojump(time_point next_deadline) {
  if (!autojump_) return false;
  if (next_deadline > now_) now_ = next_deadline;
  return true;
}

void manual_clock::jump(duration d) {
  if (std::isnan(d.count()) || d.count() < 0)
    throw std::invalid_argument("weft::testing::manual_clock::jump: the time can only move forward");
  now_ += d;
  time_changed();
}

}  // namespace weft::testing

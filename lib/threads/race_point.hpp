// Race points: places in the cross-thread code where a test may stretch a
// race window (weft::testing::set_race_point_hook). Off by default: one
// relaxed load and a branch, on paths that are not hot.
#pragma once

#include <atomic>

namespace weft::detail {

using race_point_hook = void (*)(const char* point) noexcept;
extern std::atomic<race_point_hook> g_race_point_hook;

inline void race_point(const char* point) noexcept {
  if (race_point_hook h = g_race_point_hook.load(std::memory_order_relaxed)) [[unlikely]]
    h(point);
}

}  // namespace weft::detail

// The counters of testing/threads.hpp.

#include "threads/race_point.hpp"
#include "threads/thread_cache.hpp"

#include <weft/detail/future_state.hpp>
#include <weft/detail/offload.hpp>
#include <weft/testing/threads.hpp>

namespace weft::testing {

std::size_t worker_threads() noexcept { return detail::thread_cache::instance().threads(); }
std::size_t idle_worker_threads() noexcept { return detail::thread_cache::instance().idle(); }
std::chrono::nanoseconds set_worker_idle_timeout(std::chrono::nanoseconds timeout) noexcept {
  auto& cache = detail::thread_cache::instance();
  const auto previous = cache.idle_timeout();
  cache.set_idle_timeout(timeout);
  return previous;
}
std::chrono::nanoseconds set_worker_blocking_after(std::chrono::nanoseconds after) noexcept {
  auto& cache = detail::thread_cache::instance();
  const auto previous = cache.blocking_after();
  cache.set_blocking_after(after);
  return previous;
}
std::size_t worker_concurrency() noexcept { return detail::thread_cache::instance().concurrency(); }
race_point_hook set_race_point_hook(race_point_hook hook) noexcept {
  return detail::g_race_point_hook.exchange(hook);
}
std::size_t live_future_states() noexcept { return detail::future_states_alive(); }
std::size_t live_thread_jobs() noexcept { return detail::offload_jobs_alive(); }

}  // namespace weft::testing

// weft::testing for the cross-thread layer: the thread cache's workers and
// the counts of futures and run_in_thread jobs still alive.
#pragma once

#include <chrono>
#include <cstddef>

namespace weft::testing {

/// Worker threads of run_in_thread's thread cache, running or idle.
std::size_t worker_threads() noexcept;
/// Worker threads waiting for a job.
std::size_t idle_worker_threads() noexcept;
/// How long an idle worker waits for a job before it ends (default 10 s);
/// returns the previous value. Applies to workers that go idle from now on.
std::chrono::nanoseconds set_worker_idle_timeout(std::chrono::nanoseconds timeout) noexcept;
/// How long a worker's job runs before the thread cache takes the worker to
/// be blocked and lets queued jobs have more workers (default 500 µs);
/// returns the previous value.
std::chrono::nanoseconds set_worker_blocking_after(std::chrono::nanoseconds after) noexcept;
/// Workers the thread cache lets run before it queues jobs (the CPUs this
/// process may use, at least two).
std::size_t worker_concurrency() noexcept;
/// weft::future shared states alive in the process.
std::size_t live_future_states() noexcept;
/// run_in_thread jobs alive in the process (a job a task abandoned lives
/// until its worker has finished it).
std::size_t live_thread_jobs() noexcept;

/// Installs `hook` (null: none), called at each race point of the
/// cross-thread code with the point's description, on the thread that
/// reaches it: a place where two threads race (a completion and a
/// cancellation, a hand-off and a worker's idle timeout). A test stretches
/// the window with a delay or a yield there. Returns the previous hook.
/// The hook must not throw and must not use weft.
using race_point_hook = void (*)(const char* point) noexcept;
race_point_hook set_race_point_hook(race_point_hook hook) noexcept;

}  // namespace weft::testing

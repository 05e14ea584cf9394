// Core runtime benchmarks: weft against raw Boost.Fiber / Boost.Context,
// measured side by side in one run (medians of BENCH_REPS repetitions).
//
//   switch        two tasks ping-ponging coro_yield vs two fibers ping-ponging
//                 boost::this_fiber::yield, per hand-off
//   switch_vs_context  the same weft hand-off vs a raw boost::context::fiber resume
//   spawn_join    100,000 tasks through a task group vs boost::fibers::fiber
//                 create + join, same stack size, per task
//   guarded_spawn_join  the same weft workload with the default (guarded)
//                 stacks vs stack_guard::none, per task
//   skynet        1,000,000 tasks (tree of 10) vs the same on raw Boost.Fiber,
//                 same stack size; each run in its own process, peak RSS printed
//   burst_spawn   a fresh process starts 100,000 tasks (16 KiB stacks) at
//                 once, each yields once, and joins them (the runtime's end
//                 included) vs the same with raw Boost.Fiber fibers
//                 (fixedsize_stack of 16 KiB); wall time, system time printed
//   idle_memory   RSS per parked task, 100,000 parked tasks vs parked fibers
//   idle_cpu      CPU time of a runtime sleeping 1 s, as a share of wall time,
//                 vs a plain thread sleeping 1 s
//   cancel_scope  a checkpoint inside move_on_after(1h) vs a bare checkpoint
//   switch_watchdog  the switch workload with the stall watchdog on (100 ms)
//                 vs off, per hand-off
//
// Usage: bench_core [name...]   (default: all)
#include "bench_util.hpp"

#include <weft/testing/wait_all_tasks_blocked.hpp>
#include <weft/weft.hpp>

#include <boost/context/fiber.hpp>
#include <boost/fiber/all.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t small_stack = 16 * 1024;

weft::run_options options_with_stack(std::size_t stack, weft::stack_guard guard = weft::stack_guard::automatic) {
  weft::run_options o;
  o.stack_size = stack;
  o.stack_guard = guard;
  return o;
}

// --- switch -------------------------------------------------------------------

double weft_switch_ns(int n, const weft::run_options& options = {}) {
  return bench::on_thread([n, &options] {
    return weft::run(options, [n] {
      double start = 0;
      double end = 0;
      weft::open_task_group([&](weft::task_group& tg) {
        auto body = [n] {
          for (int i = 0; i < n; ++i) weft::coro_yield();
        };
        tg.start_soon(body);
        tg.start_soon(body);
        start = bench::now_seconds();
      });
      end = bench::now_seconds();
      return (end - start) * 1e9 / (2.0 * n);
    });
  });
}

double fiber_switch_ns(int n) {
  return bench::on_thread([n] {
    auto body = [n] {
      for (int i = 0; i < n; ++i) boost::this_fiber::yield();
    };
    boost::fibers::fiber a(body);
    boost::fibers::fiber b(body);
    const double start = bench::now_seconds();
    a.join();
    b.join();
    return (bench::now_seconds() - start) * 1e9 / (2.0 * n);
  });
}

double context_switch_ns(int n) {
  namespace ctx = boost::context;
  ctx::fiber f{[n](ctx::fiber&& c) {
    for (int i = 0; i < n; ++i) c = std::move(c).resume();
    return std::move(c);
  }};
  const double start = bench::now_seconds();
  for (int i = 0; i <= n; ++i) f = std::move(f).resume();
  return (bench::now_seconds() - start) * 1e9 / (2.0 * n);
}

void bench_switch() {
  const int n = 1'000'000;
  std::vector<double> w, f, c;
  for (int r = 0; r < bench::reps(); ++r) {
    w.push_back(weft_switch_ns(n));
    f.push_back(fiber_switch_ns(n));
    c.push_back(context_switch_ns(n));
  }
  bench::report("switch", bench::median(w), "boost_fiber_yield", bench::median(f), "ns");
  bench::report("switch_vs_context", bench::median(w), "boost_context_resume", bench::median(c), "ns",
                "(reference: raw context switch)");
}

// --- spawn_join ---------------------------------------------------------------

double weft_spawn_join_ns(int n, weft::stack_guard guard = weft::stack_guard::automatic) {
  return bench::on_thread([n, guard] {
    return weft::run(options_with_stack(small_stack, guard), [n] {
      const double start = bench::now_seconds();
      weft::open_task_group([n](weft::task_group& tg) {
        for (int i = 0; i < n; ++i) tg.start_soon([] {});
      });
      return (bench::now_seconds() - start) * 1e9 / n;
    });
  });
}

double fiber_spawn_join_ns(int n) {
  return bench::on_thread([n] {
    std::vector<boost::fibers::fiber> fibers;
    fibers.reserve(static_cast<std::size_t>(n));
    const double start = bench::now_seconds();
    for (int i = 0; i < n; ++i)
      fibers.emplace_back(std::allocator_arg, boost::fibers::fixedsize_stack(small_stack), [] {});
    for (auto& f : fibers) f.join();
    return (bench::now_seconds() - start) * 1e9 / n;
  });
}

void bench_spawn_join() {
  const int n = 100'000;
  std::vector<double> w, f;
  for (int r = 0; r < bench::reps(); ++r) {
    w.push_back(weft_spawn_join_ns(n));
    f.push_back(fiber_spawn_join_ns(n));
  }
  bench::report("spawn_join", bench::median(w), "boost_fiber", bench::median(f), "ns");
}

// Every stack of the 100,000 comes from a fresh slab (a fresh runtime each
// time), so each pays for installing its guard.
void bench_guarded_spawn_join() {
  const int n = 100'000;
  std::vector<double> g, u;
  for (int r = 0; r < bench::reps(); ++r) {
    g.push_back(weft_spawn_join_ns(n));
    u.push_back(weft_spawn_join_ns(n, weft::stack_guard::none));
  }
  bench::report("guarded_spawn_join", bench::median(g), "unguarded", bench::median(u), "ns");
}

// --- skynet ---------------------------------------------------------------------

long weft_skynet(long num, long size, long div) {
  if (size == 1) return num;
  std::array<long, 10> results{};
  weft::open_task_group([&](weft::task_group& tg) {
    for (long i = 0; i < div; ++i)
      tg.start_soon([&results, i, num, size, div] {
        results[static_cast<std::size_t>(i)] = weft_skynet(num + i * (size / div), size / div, div);
      });
  });
  return std::accumulate(results.begin(), results.end(), 0L);
}

long fiber_skynet(long num, long size, long div) {
  if (size == 1) return num;
  std::array<long, 10> results{};
  std::array<boost::fibers::fiber, 10> fibers;
  for (long i = 0; i < div; ++i)
    fibers[static_cast<std::size_t>(i)] =
        boost::fibers::fiber(std::allocator_arg, boost::fibers::fixedsize_stack(small_stack), [&results, i, num, size, div] {
          results[static_cast<std::size_t>(i)] = fiber_skynet(num + i * (size / div), size / div, div);
        });
  for (long i = 0; i < div; ++i) fibers[static_cast<std::size_t>(i)].join();
  return std::accumulate(results.begin(), results.end(), 0L);
}

// --- burst_spawn ------------------------------------------------------------------

constexpr long burst_tasks = 100'000;

void bench_burst_spawn() {
  std::vector<double> w, f, wsys, fsys;
  for (int r = 0; r < bench::reps(); ++r) {
    auto wr = bench::in_child([] {
      const double start = bench::now_seconds();
      const double sys = bench::system_seconds();
      long done = 0;
      weft::run(options_with_stack(small_stack), [&done] {
        weft::open_task_group([&done](weft::task_group& tg) {
          for (long i = 0; i < burst_tasks; ++i)
            tg.start_soon([&done] {
              weft::coro_yield();
              ++done;
            });
        });
      });
      const double t = bench::now_seconds() - start;
      if (done != burst_tasks) std::_Exit(4);
      return std::vector<double>{t, bench::system_seconds() - sys};
    });
    auto fr = bench::in_child([] {
      const double start = bench::now_seconds();
      const double sys = bench::system_seconds();
      long done = 0;
      {
        std::vector<boost::fibers::fiber> fibers;
        fibers.reserve(burst_tasks);
        for (long i = 0; i < burst_tasks; ++i)
          fibers.emplace_back(std::allocator_arg, boost::fibers::fixedsize_stack(small_stack), [&done] {
            boost::this_fiber::yield();
            ++done;
          });
        for (auto& fiber : fibers) fiber.join();
      }
      const double t = bench::now_seconds() - start;
      if (done != burst_tasks) std::_Exit(4);
      return std::vector<double>{t, bench::system_seconds() - sys};
    });
    w.push_back(wr[0] * 1e3);
    wsys.push_back(wr[1] * 1e3);
    f.push_back(fr[0] * 1e3);
    fsys.push_back(fr[1] * 1e3);
  }
  const std::string note = "(100k tasks, 16 KiB stacks, fresh process; system time weft=" +
                           std::to_string(static_cast<long>(bench::median(wsys))) +
                           "ms boost_fiber=" + std::to_string(static_cast<long>(bench::median(fsys))) + "ms)";
  bench::report("burst_spawn", bench::median(w), "boost_fiber", bench::median(f), "ms", note.c_str());
}

constexpr long skynet_size = 1'000'000;
constexpr long skynet_expected = skynet_size * (skynet_size - 1) / 2;

void bench_skynet() {
  std::vector<double> w, f, wrss, frss;
  for (int r = 0; r < bench::reps(); ++r) {
    auto wr = bench::in_child([] {
      const double start = bench::now_seconds();
      const long sum = weft::run(options_with_stack(small_stack), [] { return weft_skynet(0, skynet_size, 10); });
      const double t = bench::now_seconds() - start;
      if (sum != skynet_expected) std::_Exit(4);
      return std::vector<double>{t, bench::peak_rss_bytes()};
    });
    auto fr = bench::in_child([] {
      const double start = bench::now_seconds();
      long sum = 0;
      boost::fibers::fiber root(std::allocator_arg, boost::fibers::fixedsize_stack(small_stack),
                                [&sum] { sum = fiber_skynet(0, skynet_size, 10); });
      root.join();
      const double t = bench::now_seconds() - start;
      if (sum != skynet_expected) std::_Exit(4);
      return std::vector<double>{t, bench::peak_rss_bytes()};
    });
    w.push_back(wr[0]);
    wrss.push_back(wr[1]);
    f.push_back(fr[0]);
    frss.push_back(fr[1]);
  }
  char extra[160];
  std::snprintf(extra, sizeof extra, "peak_rss_weft=%.0fMiB peak_rss_boost_fiber=%.0fMiB",
                bench::median(wrss) / (1 << 20), bench::median(frss) / (1 << 20));
  bench::report("skynet", bench::median(w) * 1e3, "boost_fiber", bench::median(f) * 1e3, "ms", extra);
}

// --- idle_memory ---------------------------------------------------------------------

constexpr int parked = 100'000;

std::vector<double> weft_idle_memory() {
  return bench::in_child([] {
    double per_task = 0;
    weft::run(options_with_stack(small_stack), [&] {
      weft::event go;
      const double before = bench::rss_bytes();
      weft::open_task_group([&](weft::task_group& tg) {
        for (int i = 0; i < parked; ++i) tg.start_soon([&go] { go.wait(); });
        weft::testing::wait_all_tasks_blocked();
        per_task = (bench::rss_bytes() - before) / parked;
        go.set();
      });
    });
    return std::vector<double>{per_task};
  });
}

std::vector<double> fiber_idle_memory() {
  return bench::in_child([] {
    boost::fibers::mutex m;
    boost::fibers::condition_variable cv;
    bool go = false;
    int started = 0;
    std::vector<boost::fibers::fiber> fibers;
    fibers.reserve(parked);
    const double before = bench::rss_bytes();
    for (int i = 0; i < parked; ++i)
      fibers.emplace_back(std::allocator_arg, boost::fibers::fixedsize_stack(small_stack), [&] {
        std::unique_lock<boost::fibers::mutex> lk(m);
        ++started;
        cv.wait(lk, [&] { return go; });
      });
    while (started < parked) boost::this_fiber::yield();
    const double per_fiber = (bench::rss_bytes() - before) / parked;
    {
      std::unique_lock<boost::fibers::mutex> lk(m);
      go = true;
    }
    cv.notify_all();
    for (auto& f : fibers) f.join();
    return std::vector<double>{per_fiber};
  });
}

void bench_idle_memory() {
  std::vector<double> w, f;
  for (int r = 0; r < bench::reps(); ++r) {
    w.push_back(weft_idle_memory()[0] / 1024.0);
    f.push_back(fiber_idle_memory()[0] / 1024.0);
  }
  bench::report("idle_memory", bench::median(w), "boost_fiber", bench::median(f), "KiB",
                "(per parked task, 16 KiB stacks, 100k tasks)");
}

// --- idle_cpu -------------------------------------------------------------------------

using bench::thread_cpu_seconds;

void bench_idle_cpu() {
  const double w = bench::on_thread([] {
    return weft::run([] {
      const double cpu = thread_cpu_seconds();
      const double wall = bench::now_seconds();
      weft::sleep(1s);
      return (thread_cpu_seconds() - cpu) / (bench::now_seconds() - wall) * 100.0;
    });
  });
  const double t = bench::on_thread([] {
    const double cpu = thread_cpu_seconds();
    const double wall = bench::now_seconds();
    std::this_thread::sleep_for(1s);
    return (thread_cpu_seconds() - cpu) / (bench::now_seconds() - wall) * 100.0;
  });
  bench::report("idle_cpu", w, "thread_sleep", t, "%", "(CPU time / wall time while sleeping 1 s)");
}

// --- cancel_scope ------------------------------------------------------------------------

void bench_cancel_scope() {
  const int n = 1'000'000;
  std::vector<double> bare, scoped;
  weft::run([&] {
    for (int r = 0; r < bench::reps(); ++r) {
      double start = bench::now_seconds();
      for (int i = 0; i < n; ++i) weft::coro_yield();
      bare.push_back((bench::now_seconds() - start) * 1e9 / n);
      start = bench::now_seconds();
      for (int i = 0; i < n; ++i) weft::move_on_after(1h).run([] { weft::coro_yield(); });
      scoped.push_back((bench::now_seconds() - start) * 1e9 / n);
    }
  });
  bench::report("cancel_scope", bench::median(scoped), "bare_checkpoint", bench::median(bare), "ns");
}

// --- switch_watchdog ----------------------------------------------------------------------

void bench_switch_watchdog() {
  const int n = 1'000'000;
  weft::run_options watched;
  watched.stall_warning = 100ms;
  std::vector<double> on, off;
  for (int r = 0; r < bench::reps(); ++r) {
    on.push_back(weft_switch_ns(n, watched));
    off.push_back(weft_switch_ns(n));
  }
  bench::report("switch_watchdog", bench::median(on), "unwatched", bench::median(off), "ns");
}

constexpr bench::entry benches[] = {
    {"switch", bench_switch},
    {"spawn_join", bench_spawn_join},
    {"guarded_spawn_join", bench_guarded_spawn_join},
    {"skynet", bench_skynet},
    {"burst_spawn", bench_burst_spawn},
    {"idle_memory", bench_idle_memory},
    {"idle_cpu", bench_idle_cpu},
    {"cancel_scope", bench_cancel_scope},
    {"switch_watchdog", bench_switch_watchdog},
};

}  // namespace

int main(int argc, char** argv) { return bench::main_of("bench_core", benches, argc, argv); }

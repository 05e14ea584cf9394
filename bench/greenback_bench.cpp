// greenback benchmarks: the cost of a portal against the native way of doing
// the same wait, measured side by side in one run.
//
//   await_ready      greenback::await_(c()) of a weft::coro<int> that completes
//                    without suspending, from task code, vs `co_await c()` of
//                    the same coroutine in a loop inside one weft::coro that
//                    task code drives once; per await
//   await_asio       greenback::await_(a()) of an asio::awaitable<int> that posts
//                    once and returns, from task code, vs an asio::awaitable
//                    parent doing `co_await co_spawn(ex, a(), use_awaitable)`;
//                    per await
//   use_fiber        a zero-expiry steady_timer awaited with weft::use_fiber
//                    from a task vs with asio::spawn's yield_context on a plain
//                    io_context; per wait
//   portal_run_sync  `co_await greenback::with_portal_run_sync(noop)` from an
//                    asio::awaitable on the runtime's io_context vs a
//                    boost::fibers::fiber spawn + join of the same noop; per call
//
// Each repetition runs both sides for the same number of operations (at
// least 100 ms per side), split into `rounds` alternating chunks (weft first
// in even rounds, the peer first in odd ones), so that a load change on the
// machine weighs on both sides alike. Every chunk runs on a fresh thread
// (and a fresh runtime or io_context) after untimed warm-up operations;
// only its loop is timed. Medians over BENCH_REPS repetitions are reported.
// Every task, fiber and stackful coroutine here has a stack of `stack_size`.
//
// Usage: bench_greenback [name...]   (default: all)
#include "bench_util.hpp"

#include <weft/greenback/greenback.hpp>
#include <weft/use_fiber.hpp>
#include <weft/weft.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <boost/fiber/all.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t stack_size = 64 * 1024;
constexpr int rounds = 10;

weft::run_options options() {
  weft::run_options o;
  o.stack_size = stack_size;
  return o;
}

// Untimed operations before each timed loop (both sides), so that frame
// caches, stack pools and the reactor are warm.
int warmup_of(int m) { return m / 20; }

// The sum 0 + 1 + ... + (m - 1): what every summing loop below must produce.
long expected_sum(int m) { return static_cast<long>(m) * (m - 1) / 2; }

void check(const char* what, long got, long want) {
  if (got != want) {
    std::fprintf(stderr, "bench_greenback: %s produced %ld, expected %ld\n", what, got, want);
    std::exit(1);
  }
}

template <class W, class P>
void compare(const char* name, const char* peer_name, const char* per, int n, W&& weft_chunk, P&& peer_chunk) {
  bench::alternating_compare(name, peer_name, per, n, rounds, weft_chunk, peer_chunk);
}

// Runs fn(m) as the root task of a fresh runtime on a fresh thread.
template <class F>
double in_runtime(F fn, int m) {
  return bench::on_thread([&] { return weft::run(options(), [&] { return fn(m); }); });
}

// --- await_ready ------------------------------------------------------------------

weft::coro<int> ready_value(int i) { co_return i; }

weft::coro<long> co_await_ready_loop(int m) {
  long sum = 0;
  for (int i = 0; i < m; ++i) sum += co_await ready_value(i);
  co_return sum;
}

long await_ready_loop(int m) {
  long sum = 0;
  for (int i = 0; i < m; ++i) sum += greenback::await_(ready_value(i));
  return sum;
}

double weft_await_ready(int m) {
  check("await_ready warm-up", await_ready_loop(warmup_of(m)), expected_sum(warmup_of(m)));
  const double start = bench::now_seconds();
  const long sum = await_ready_loop(m);
  const double elapsed = bench::now_seconds() - start;
  check("await_ready", sum, expected_sum(m));
  return elapsed;
}

double coro_await_ready(int m) {
  check("co_await warm-up", greenback::await_(co_await_ready_loop(warmup_of(m))), expected_sum(warmup_of(m)));
  const double start = bench::now_seconds();
  const long sum = greenback::await_(co_await_ready_loop(m));
  const double elapsed = bench::now_seconds() - start;
  check("co_await", sum, expected_sum(m));
  return elapsed;
}

void bench_await_ready() {
  compare("await_ready", "co_await", "await", 20'000'000,  //
          [](int m) { return in_runtime(weft_await_ready, m); },
          [](int m) { return in_runtime(coro_await_ready, m); });
}

// --- await_asio ---------------------------------------------------------------------
//
// Both sides run the awaitable on the weft runtime's io_context
// (weft::lowlevel::io_context()), so that the reactor and its configuration
// are the same: the peer's parent coroutine is co_spawned there from the root
// task, which waits for it with use_fiber (one wait per chunk, not per
// operation).

boost::asio::awaitable<int> posted_value(int i) {
  co_await boost::asio::post(boost::asio::use_awaitable);
  co_return i;
}

long await_asio_loop(int m) {
  long sum = 0;
  for (int i = 0; i < m; ++i) sum += greenback::await_(posted_value(i));
  return sum;
}

boost::asio::awaitable<long> co_spawn_loop(int m) {
  auto ex = co_await boost::asio::this_coro::executor;
  long sum = 0;
  for (int i = 0; i < m; ++i) sum += co_await boost::asio::co_spawn(ex, posted_value(i), boost::asio::use_awaitable);
  co_return sum;
}

long run_co_spawn_loop(int m) {
  return boost::asio::co_spawn(weft::lowlevel::io_context(), co_spawn_loop(m), weft::use_fiber);
}

double weft_await_asio(int m) {
  check("await_asio warm-up", await_asio_loop(warmup_of(m)), expected_sum(warmup_of(m)));
  const double start = bench::now_seconds();
  const long sum = await_asio_loop(m);
  const double elapsed = bench::now_seconds() - start;
  check("await_asio", sum, expected_sum(m));
  return elapsed;
}

double co_spawn_await(int m) {
  check("co_spawn warm-up", run_co_spawn_loop(warmup_of(m)), expected_sum(warmup_of(m)));
  const double start = bench::now_seconds();
  const long sum = run_co_spawn_loop(m);
  const double elapsed = bench::now_seconds() - start;
  check("co_spawn", sum, expected_sum(m));
  return elapsed;
}

void bench_await_asio() {
  compare("await_asio", "asio_co_spawn", "await", 300'000,  //
          [](int m) { return in_runtime(weft_await_asio, m); },
          [](int m) { return in_runtime(co_spawn_await, m); });
}

// --- use_fiber -------------------------------------------------------------------------
//
// The same Asio operation on both sides: a steady_timer on an io_context
// created with concurrency hint 1 (as the runtime's), re-armed with a zero
// expiry and waited for, m times.

long timer_wait_loop(boost::asio::steady_timer& timer, int m) {
  long waited = 0;
  for (int i = 0; i < m; ++i) {
    timer.expires_after(0ns);
    timer.async_wait(weft::use_fiber);
    ++waited;
  }
  return waited;
}

long timer_wait_loop(boost::asio::steady_timer& timer, int m, boost::asio::yield_context yield) {
  long waited = 0;
  for (int i = 0; i < m; ++i) {
    timer.expires_after(0ns);
    timer.async_wait(yield);
    ++waited;
  }
  return waited;
}

double weft_use_fiber(int m) {
  boost::asio::steady_timer timer(weft::lowlevel::io_context());
  check("use_fiber warm-up", timer_wait_loop(timer, warmup_of(m)), warmup_of(m));
  const double start = bench::now_seconds();
  const long waited = timer_wait_loop(timer, m);
  const double elapsed = bench::now_seconds() - start;
  check("use_fiber", waited, m);
  return elapsed;
}

double asio_spawn_yield(int m) {
  return bench::on_thread([m] {
    boost::asio::io_context io(1);
    double elapsed = 0;
    boost::asio::spawn(
        io, std::allocator_arg, boost::context::fixedsize_stack(stack_size),
        [&io, &elapsed, m](boost::asio::yield_context yield) {
          boost::asio::steady_timer timer(io);
          check("yield_context warm-up", timer_wait_loop(timer, warmup_of(m), yield), warmup_of(m));
          const double start = bench::now_seconds();
          const long waited = timer_wait_loop(timer, m, yield);
          elapsed = bench::now_seconds() - start;
          check("yield_context", waited, m);
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run();
    return elapsed;
  });
}

void bench_use_fiber() {
  compare("use_fiber", "asio_yield_context", "wait", 20'000,  //
          [](int m) { return in_runtime(weft_use_fiber, m); }, asio_spawn_yield);
}

// --- portal_run_sync ----------------------------------------------------------------------
//
// The noop returns how often it has been called, which both sides hand back
// to their caller, and every call is counted. (It returns a value because
// with_portal_run_sync of a void function does not compile as an
// asio::awaitable: portal_asio_body<void> forms void(std::exception_ptr, void).)

struct noop {
  long* calls;
  long operator()() const { return ++*calls; }
};

boost::asio::awaitable<long> portal_loop(int m) {
  long calls = 0;
  long last = 0;
  for (int i = 0; i < m; ++i) last = co_await greenback::with_portal_run_sync(noop{&calls});
  check("portal_run_sync calls", calls, m);
  co_return last;
}

long run_portal_loop(int m) {
  return boost::asio::co_spawn(weft::lowlevel::io_context(), portal_loop(m), weft::use_fiber);
}

long fiber_spawn_join_loop(int m) {
  long calls = 0;
  long last = 0;
  for (int i = 0; i < m; ++i) {
    boost::fibers::fiber f(std::allocator_arg, boost::fibers::fixedsize_stack(stack_size),
                           [&last, fn = noop{&calls}] { last = fn(); });
    f.join();
  }
  check("fiber spawn + join calls", calls, m);
  return last;
}

double weft_portal_run_sync(int m) {
  check("portal_run_sync warm-up", run_portal_loop(warmup_of(m)), warmup_of(m));
  const double start = bench::now_seconds();
  const long last = run_portal_loop(m);
  const double elapsed = bench::now_seconds() - start;
  check("portal_run_sync", last, m);
  return elapsed;
}

double fiber_spawn_join(int m) {
  return bench::on_thread([m] {
    check("fiber spawn + join warm-up", fiber_spawn_join_loop(warmup_of(m)), warmup_of(m));
    const double start = bench::now_seconds();
    const long last = fiber_spawn_join_loop(m);
    const double elapsed = bench::now_seconds() - start;
    check("fiber spawn + join", last, m);
    return elapsed;
  });
}

void bench_portal_run_sync() {
  compare("portal_run_sync", "boost_fiber_spawn_join", "call", 500'000,  //
          [](int m) { return in_runtime(weft_portal_run_sync, m); }, fiber_spawn_join);
}

constexpr bench::entry benches[] = {
    {"await_ready", bench_await_ready},
    {"await_asio", bench_await_asio},
    {"use_fiber", bench_use_fiber},
    {"portal_run_sync", bench_portal_run_sync},
};

}  // namespace

int main(int argc, char** argv) { return bench::main_of("bench_greenback", benches, argc, argv); }

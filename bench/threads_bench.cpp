// Cross-thread benchmarks: waits whose completion comes from another
// thread, against the plain Asio way of doing the same hops, measured side
// by side in one run.
//
//   pool_hop   a task doing `asio::post(pool, weft::use_fiber)` (hop to an
//              asio::thread_pool thread and back to the task's runtime) vs
//              an Asio callback chain doing the same hop: a handler on an
//              io_context thread posts to the pool, whose handler posts the
//              next step back to the io_context; per round trip
//
//   run_in_thread  a task calling weft::run_in_thread(trivial fn) on an
//              otherwise idle runtime vs (a) a plain thread doing
//              post(pool, use_future(fn)).get() on an asio::thread_pool of
//              one thread, and (b) a Boost.Fiber fiber handing fn to a
//              std::thread worker (mutex + condition variable) and waiting
//              on a boost::fibers::promise it sets; per round trip
//
// Every side uses one worker thread (weft's: the thread cache's, reused),
// and runs on a fresh thread (a fresh runtime or io_context). A round trip
// costs two thread wake-ups, whose price depends on whether the two
// threads share a CPU: on every side the loop's thread is pinned to the
// first CPU this process may use and the worker thread to the second (when
// there is one), so that every chunk measures the same placement. Each
// repetition runs both sides for the same number of hops, split into
// `rounds` alternating chunks after untimed warm-up hops; medians over
// BENCH_REPS repetitions are reported.
//
// Usage: bench_threads [name...]   (default: all)
#include "bench_util.hpp"

#include <weft/threads/run_in_thread.hpp>
#include <weft/use_fiber.hpp>
#include <weft/weft.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/fiber/future.hpp>
#include <boost/fiber/fiber.hpp>

#include <pthread.h>
#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace {

constexpr int rounds = 10;

// The i-th CPU this process may run on, or -1.
int allowed_cpu(int i) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set) && i-- == 0) return cpu;
  return -1;
}

void pin_this_thread(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

const int loop_cpu = allowed_cpu(0);
const int pool_cpu = allowed_cpu(1) >= 0 ? allowed_cpu(1) : allowed_cpu(0);

// A thread pool of one thread, pinned.
struct pinned_pool {
  boost::asio::thread_pool pool{1};
  pinned_pool() {
    std::promise<void> pinned;
    boost::asio::post(pool, [&pinned] {
      pin_this_thread(pool_cpu);
      pinned.set_value();
    });
    pinned.get_future().wait();
  }
  ~pinned_pool() { pool.join(); }
};

int warmup_of(int m) { return m / 20 + 1; }

void check(const char* what, long got, long want) {
  if (got != want) {
    std::fprintf(stderr, "bench_threads: %s: %ld hops, expected %ld\n", what, got, want);
    std::exit(1);
  }
}

// --- pool_hop ---------------------------------------------------------------------
//
// Every hop checks where it runs: the pool side on the pool's thread, the
// way back on the runtime's (io_context's) thread.

long weft_hops(boost::asio::thread_pool& pool, int m, std::thread::id home) {
  long hops = 0;
  for (int i = 0; i < m; ++i) {
    boost::asio::post(pool, weft::use_fiber);
    if (std::this_thread::get_id() != home) return -1;
    ++hops;
  }
  return hops;
}

double weft_pool_hop(int m) {
  return bench::on_thread([m] {
    pin_this_thread(loop_cpu);
    pinned_pool pinned;
    boost::asio::thread_pool& pool = pinned.pool;
    return weft::run([&] {
      const std::thread::id home = std::this_thread::get_id();
      check("pool_hop weft warm-up", weft_hops(pool, warmup_of(m), home), warmup_of(m));
      const double start = bench::now_seconds();
      const long hops = weft_hops(pool, m, home);
      const double seconds = bench::now_seconds() - start;
      check("pool_hop weft", hops, m);
      return seconds;
    });
  });
}

// The callback chain: step() runs on the io_context thread, posts to the
// pool, and the pool's handler posts step() back.
struct chain {
  boost::asio::io_context& io;
  boost::asio::thread_pool& pool;
  std::thread::id home;
  long left;
  long hops = 0;
  bool misplaced = false;
  // io.run() must not return while a hop is on the pool.
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> busy{io.get_executor()};
  void step() {
    if (left == 0) {
      busy.reset();
      return;
    }
    --left;
    boost::asio::post(pool, [this] {
      boost::asio::post(io, [this] {
        misplaced = misplaced || std::this_thread::get_id() != home;
        ++hops;
        step();
      });
    });
  }
};

long asio_hops(boost::asio::io_context& io, boost::asio::thread_pool& pool, int m) {
  chain c{io, pool, std::this_thread::get_id(), m};
  boost::asio::post(io, [&c] { c.step(); });
  io.restart();
  io.run();
  return c.misplaced ? -1 : c.hops;
}

double asio_pool_hop(int m) {
  return bench::on_thread([m] {
    pin_this_thread(loop_cpu);
    pinned_pool pinned;
    boost::asio::thread_pool& pool = pinned.pool;
    boost::asio::io_context io(1);
    check("pool_hop asio warm-up", asio_hops(io, pool, warmup_of(m)), warmup_of(m));
    const double start = bench::now_seconds();
    const long hops = asio_hops(io, pool, m);
    const double elapsed = bench::now_seconds() - start;
    check("pool_hop asio", hops, m);
    return elapsed;
  });
}

void bench_pool_hop() {
  bench::alternating_compare("pool_hop", "asio_callbacks", "round trip", 40'000, rounds, weft_pool_hop,
                             asio_pool_hop);
}

// --- run_in_thread ------------------------------------------------------------------
//
// The function is trivial; every round trip checks its value. weft's
// workers come from its thread cache (the job pins the worker it runs on,
// which the next call reuses: the most recently idle worker is taken).

int trivial(int i) noexcept { return i + 1; }

double weft_run_in_thread(int m) {
  return bench::on_thread([m] {
    pin_this_thread(loop_cpu);
    return weft::run([m] {
      long ok = 0;
      auto round = [&ok](int i) {
        const int v = weft::run_in_thread([i] {
          thread_local bool pinned = false;
          if (!pinned) {
            pin_this_thread(pool_cpu);
            pinned = true;
          }
          return trivial(i);
        });
        ok += v == i + 1;
      };
      for (int i = 0; i < warmup_of(m); ++i) round(i);
      ok = 0;
      const double start = bench::now_seconds();
      for (int i = 0; i < m; ++i) round(i);
      const double seconds = bench::now_seconds() - start;
      check("run_in_thread weft", ok, m);
      return seconds;
    });
  });
}

double asio_pool_round_trip(int m) {
  return bench::on_thread([m] {
    pin_this_thread(loop_cpu);
    pinned_pool pinned;
    long ok = 0;
    auto round = [&](int i) {
      ok += boost::asio::post(pinned.pool, boost::asio::use_future([i] { return trivial(i); })).get() == i + 1;
    };
    for (int i = 0; i < warmup_of(m); ++i) round(i);
    ok = 0;
    const double start = bench::now_seconds();
    for (int i = 0; i < m; ++i) round(i);
    const double seconds = bench::now_seconds() - start;
    check("run_in_thread asio_thread_pool", ok, m);
    return seconds;
  });
}

// A worker thread taking one job at a time from a slot.
class slot_worker {
 public:
  slot_worker()
      : thread_([this] {
          pin_this_thread(pool_cpu);
          for (;;) {
            std::function<void()> job;
            {
              std::unique_lock lock(mutex_);
              cv_.wait(lock, [this] { return job_ || stop_; });
              if (!job_) return;
              job = std::move(job_);
              job_ = nullptr;
            }
            job();
          }
        }) {}
  ~slot_worker() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void submit(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      job_ = std::move(job);
    }
    cv_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool stop_ = false;
  std::thread thread_;
};

double fiber_thread_promise(int m) {
  return bench::on_thread([m] {
    pin_this_thread(loop_cpu);
    slot_worker worker;
    double seconds = 0;
    boost::fibers::fiber([&] {
      long ok = 0;
      auto round = [&](int i) {
        boost::fibers::promise<int> p;
        boost::fibers::future<int> f = p.get_future();
        worker.submit([&p, i] { p.set_value(trivial(i)); });
        ok += f.get() == i + 1;
      };
      for (int i = 0; i < warmup_of(m); ++i) round(i);
      ok = 0;
      const double start = bench::now_seconds();
      for (int i = 0; i < m; ++i) round(i);
      seconds = bench::now_seconds() - start;
      check("run_in_thread fiber_thread_promise", ok, m);
    }).join();
    return seconds;
  });
}

void bench_run_in_thread() {
  bench::alternating_compare("run_in_thread", "asio_thread_pool", "round trip", 20'000, rounds, weft_run_in_thread,
                             asio_pool_round_trip);
  bench::alternating_compare("run_in_thread", "fiber_thread_promise", "round trip", 20'000, rounds,
                             weft_run_in_thread, fiber_thread_promise);
}

constexpr bench::entry benches[] = {
    {"pool_hop", bench_pool_hop},
    {"run_in_thread", bench_run_in_thread},
};

}  // namespace

int main(int argc, char** argv) { return bench::main_of("bench_threads", benches, argc, argv); }

// Cross-thread benchmarks: waits whose completion comes from another
// thread, against the plain Asio (or Boost.Fiber) way of doing the same
// hops, measured side by side in one run.
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
//   thread_offload  the same weft task loop vs pool_hop's Asio callback
//              chain calling the trivial function on the pool (of one
//              thread) and posting its value back to the io_context, whose
//              handler starts the next round trip; per round trip
//
//   offload_throughput  64 tasks of one runtime each calling
//              run_in_thread(trivial fn) N times vs 64 independent Asio
//              callback chains (as in thread_offload) of N round trips
//              each on an asio::thread_pool of two threads, their
//              io_context run by one thread; the total time of a run. N is
//              BENCH_OFFLOAD_N (default 1000). weft's side is bounded by
//              run_in_thread's default capacity limiter (40 jobs at once
//              per runtime), its jobs run by the thread cache (as many
//              running workers as CPUs take queued jobs in turn): that is
//              part of what is measured. The workers
//              of both sides may run on any CPU (see below)
//
//   portal_call  a plain thread calling portal.run_sync(trivial fn) on a
//              weft::threads_portal open in a runtime whose root task
//              waits for that thread in run_in_thread (no polling) vs a
//              plain thread doing post(io, use_future(fn)).get() into a
//              thread blocked in io.run() (kept running by a work guard);
//              per call
//
//   caller_call  a task of one runtime waiting on
//              caller.call_soon(trivial fn).get(), the call running as a
//              task of a weft::caller (another runtime on its own thread)
//              vs two io_contexts on two threads, a handler on A posting
//              to B a handler that posts the result back to A, whose
//              handler starts the next round trip; per round trip
//
//   future_wake  a task parked on a weft::future<int> that a plain thread
//              sets vs a Boost.Fiber fiber parked on a
//              boost::fibers::future<int> set the same way; per round
//              trip. Both sides run one code, templated on the promise
//              type: each round the parked side creates a promise, hands
//              it to the setter thread through a slot, publishes the round
//              in a std::atomic<int> (store + notify_one) and parks in
//              future.get(); the setter thread, blocked in
//              std::atomic::wait on that round counter, takes the promise
//              and sets the round's number. Each round trip is thus one
//              futex wake of the setter thread and one future wake of the
//              parked side: only the latter differs
//
// Reference lines, not comparisons (BENCH_REF <name> value=<v><unit>):
//
//   spin_pingpong  two plain threads passing a turn back and forth in a
//              std::atomic<int>, spinning on it; per round trip
//   futex_pingpong  the same, waiting in std::atomic::wait (libstdc++ spins
//              briefly, then blocks on a futex) and waking with
//              notify_one; per round trip
//   run_in_thread_allocations  heap allocations (every thread's) per
//              run_in_thread call of one task, in the steady state: this
//              program replaces the global operator new with one counting
//              in a relaxed atomic, which every benchmark here pays on
//              both sides
//
// Each side runs on a fresh thread (a fresh runtime or io_context). A
// round trip costs two thread wake-ups, whose price depends on whether the
// two threads share a CPU: on every side the loop's thread (the runtime's,
// the io_context's, the parked side's, the first ping-pong thread) is
// pinned to the first CPU this process may use and the worker thread
// (run_in_thread's, the pool's, the caller or setter thread, the second
// ping-pong thread) to the second (when there is one), so that every chunk
// measures the same placement. Except in offload_throughput: with more
// workers than CPUs, pinning them all to one CPU would measure how that
// CPU's scheduler queues their wake-ups more than the hand-offs, so there
// the workers of both sides may run on any CPU. Each repetition runs both
// sides for the same number of operations, split into `rounds` alternating
// chunks after untimed warm-up operations; medians over BENCH_REPS
// repetitions are reported.
//
// Usage: bench_threads [name...]   (default: all)
#include "bench_util.hpp"

#include <weft/threads/caller.hpp>
#include <weft/threads/future.hpp>
#include <weft/threads/run_in_thread.hpp>
#include <weft/threads/threads_portal.hpp>
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

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <vector>

// Heap allocations of the whole process, for run_in_thread_allocations: a
// replacement of the global operator new that counts (one relaxed atomic
// increment per allocation, which the other benchmarks pay on both sides).
namespace {
std::atomic<unsigned long> g_allocations{0};

void* counted_allocate(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

void* counted_allocate(std::size_t n, std::align_val_t al) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const auto a = static_cast<std::size_t>(al);
  if (void* p = std::aligned_alloc(a, (n + a - 1) / a * a + (n == 0 ? a : 0))) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_allocate(n); }
void* operator new[](std::size_t n) { return counted_allocate(n); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_allocate(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_allocate(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

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

// Every CPU the process may run on, as it started (a thread inherits the
// affinity of the thread that created it).
const cpu_set_t process_cpus = [] {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) CPU_ZERO(&set);
  return set;
}();

// Where a pool's threads run: one CPU, or any_cpu (any of process_cpus).
constexpr int any_cpu = -2;

void place_this_thread(int cpu) {
  if (cpu != any_cpu) {
    pin_this_thread(cpu);
  } else if (CPU_COUNT(&process_cpus) > 0) {
    ::pthread_setaffinity_np(::pthread_self(), sizeof process_cpus, &process_cpus);
  }
}

// A thread pool (of one thread unless told), every thread placed on `cpu`
// (the second CPU unless told): each thread takes one of the placing
// handlers, which wait for each other (they share the latch: one may
// still be leaving it when the constructor returns).
struct pinned_pool {
  boost::asio::thread_pool pool;
  explicit pinned_pool(int threads = 1, int cpu = pool_cpu) : pool(static_cast<std::size_t>(threads)) {
    auto placed = std::make_shared<std::latch>(threads);
    for (int i = 0; i < threads; ++i)
      boost::asio::post(pool, [placed, cpu] {
        place_this_thread(cpu);
        placed->arrive_and_wait();
      });
    placed->wait();
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
// pool, and the pool's handler posts step() back. on_pool(i) runs on the
// pool's thread for the i-th hop and returns whether its work was right,
// which the way back records: pool_hop runs nothing there, thread_offload
// a trivial function.
template <class OnPool>
struct chain {
  boost::asio::io_context& io;
  boost::asio::thread_pool& pool;
  std::thread::id home;
  long left;
  OnPool on_pool;
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
    boost::asio::post(pool, [this, i = static_cast<int>(hops)] {
      const bool ok = on_pool(i);
      boost::asio::post(io, [this, ok] {
        misplaced = misplaced || !ok || std::this_thread::get_id() != home;
        ++hops;
        step();
      });
    });
  }
};

// `chains` independent chains of m hops each, run together by this
// thread; the hops they made (-1 if one was misplaced or wrong).
template <class OnPool>
long asio_hops(boost::asio::io_context& io, boost::asio::thread_pool& pool, int m, OnPool on_pool, int chains) {
  std::vector<std::unique_ptr<chain<OnPool>>> cs;
  for (int i = 0; i < chains; ++i) {
    cs.emplace_back(new chain<OnPool>{io, pool, std::this_thread::get_id(), m, on_pool});
    boost::asio::post(io, [c = cs.back().get()] { c->step(); });
  }
  io.restart();
  io.run();
  long hops = 0;
  for (const auto& c : cs) {
    if (c->misplaced) return -1;
    hops += c->hops;
  }
  return hops;
}

// `chains` callback chains of m hops each (after warm-up hops), on a fresh
// io_context thread and a fresh pool of `pool_threads` placed on
// `pool_placement`; the seconds they took.
template <class OnPool>
double asio_chain_seconds(const char* what, int m, OnPool on_pool, int pool_threads = 1, int chains = 1,
                          int pool_placement = pool_cpu) {
  return bench::on_thread([what, m, on_pool, pool_threads, chains, pool_placement] {
    pin_this_thread(loop_cpu);
    pinned_pool pinned(pool_threads, pool_placement);
    boost::asio::thread_pool& pool = pinned.pool;
    boost::asio::io_context io(1);
    check(what, asio_hops(io, pool, warmup_of(m), on_pool, chains), long{warmup_of(m)} * chains);
    const double start = bench::now_seconds();
    const long hops = asio_hops(io, pool, m, on_pool, chains);
    const double elapsed = bench::now_seconds() - start;
    check(what, hops, long{m} * chains);
    return elapsed;
  });
}

double asio_pool_hop(int m) {
  return asio_chain_seconds("pool_hop asio", m, [](int) { return true; });
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

// A worker of weft's thread cache places itself on `cpu` (the second CPU
// unless told) when its job asks for another placement than its last.
void pin_worker(int cpu = pool_cpu) {
  thread_local int placed = -3;  // none yet
  if (placed != cpu) {
    place_this_thread(cpu);
    placed = cpu;
  }
}

double weft_run_in_thread_seconds(const char* what, int m) {
  return bench::on_thread([what, m] {
    pin_this_thread(loop_cpu);
    return weft::run([what, m] {
      long ok = 0;
      auto round = [&ok](int i) {
        const int v = weft::run_in_thread([i] {
          pin_worker();
          return trivial(i);
        });
        ok += v == i + 1;
      };
      for (int i = 0; i < warmup_of(m); ++i) round(i);
      ok = 0;
      const double start = bench::now_seconds();
      for (int i = 0; i < m; ++i) round(i);
      const double seconds = bench::now_seconds() - start;
      check(what, ok, m);
      return seconds;
    });
  });
}

double weft_run_in_thread(int m) { return weft_run_in_thread_seconds("run_in_thread weft", m); }

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
    // The worker takes the promise over before it sets it: set_value may
    // still be inside the shared state (notifying) when get() returns here,
    // so the round must not destroy a promise the worker is using.
    std::optional<boost::fibers::promise<int>> handed;
    double seconds = 0;
    boost::fibers::fiber([&] {
      long ok = 0;
      auto round = [&](int i) {
        boost::fibers::promise<int> p;
        boost::fibers::future<int> f = p.get_future();
        handed.emplace(std::move(p));
        worker.submit([&handed, i] {
          boost::fibers::promise<int> mine = std::move(*handed);
          handed.reset();
          mine.set_value(trivial(i));
        });
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

// --- thread_offload -----------------------------------------------------------------
//
// weft's side is run_in_thread's; Asio's is pool_hop's chain calling the
// trivial function on the pool and checking its value on the way back.

double weft_thread_offload(int m) { return weft_run_in_thread_seconds("thread_offload weft", m); }

double asio_thread_offload(int m) {
  return asio_chain_seconds("thread_offload asio", m, [](int i) { return trivial(i) == i + 1; });
}

void bench_thread_offload() {
  bench::alternating_compare("thread_offload", "asio_callbacks", "round trip", 20'000, rounds, weft_thread_offload,
                             asio_thread_offload);
}

// --- offload_throughput -------------------------------------------------------------
//
// offload_tasks tasks (chains) of N calls each; N is BENCH_OFFLOAD_N
// (default 1000), split into the alternating chunks. The loop's thread is
// pinned to the first CPU; the workers (weft's, the pool's) may run on
// any CPU: with more workers than CPUs, pinning them all to one CPU
// would measure how that CPU's scheduler queues wake-ups more than the
// hand-offs.

constexpr int offload_tasks = 64;

int offload_calls_per_task() {
  const char* e = std::getenv("BENCH_OFFLOAD_N");
  const int n = e ? std::atoi(e) : 1000;
  return n >= rounds ? n : 1000;
}

double weft_offload_throughput(int m) {
  return bench::on_thread([m] {
    pin_this_thread(loop_cpu);
    return weft::run([m] {
      long ok = 0;
      auto batch = [&ok](int calls) {
        weft::open_task_group([&](weft::task_group& tg) {
          for (int t = 0; t < offload_tasks; ++t)
            tg.start_soon([&ok, calls] {
              for (int i = 0; i < calls; ++i) {
                const int v = weft::run_in_thread([i] {
                  pin_worker(any_cpu);
                  return trivial(i);
                });
                ok += v == i + 1;
              }
            });
        });
      };
      batch(warmup_of(m));
      ok = 0;
      const double start = bench::now_seconds();
      batch(m);
      const double seconds = bench::now_seconds() - start;
      check("offload_throughput weft", ok, long{m} * offload_tasks);
      return seconds;
    });
  });
}

double asio_offload_throughput(int m) {
  return asio_chain_seconds(
      "offload_throughput asio", m, [](int i) { return trivial(i) == i + 1; }, 2, offload_tasks, any_cpu);
}

void bench_offload_throughput() {
  const int n = offload_calls_per_task();
  std::vector<double> w, p;
  for (int r = 0; r < bench::reps(); ++r)
    bench::alternating_repetition(n, rounds, weft_offload_throughput, asio_offload_throughput, w, p);
  // alternating_repetition gives ns per call of one task: times the calls
  // of one task, the time of the whole run.
  const double calls = static_cast<double>(n / rounds * rounds);
  const std::string note = "(total time of " + std::to_string(offload_tasks) + " x " +
                           std::to_string(n / rounds * rounds) + " calls per side and repetition)";
  bench::report("offload_throughput", bench::median(w) * calls / 1e6, "asio_thread_pool",
                bench::median(p) * calls / 1e6, "ms", note.c_str());
}

// --- portal_call ------------------------------------------------------------------
//
// The calling thread is pinned to the second CPU, the runtime's (the
// io_context's) thread to the first. The runtime's root task waits for the
// caller in run_in_thread (a worker blocked in join).

double weft_portal_call(int m) {
  double seconds = 0;
  bench::on_thread([m, &seconds] {
    pin_this_thread(loop_cpu);
    weft::run([m, &seconds] {
      weft::open_threads_portal([m, &seconds](weft::threads_portal& portal) {
        std::thread caller([m, &seconds, portal] {
          pin_this_thread(pool_cpu);
          long ok = 0;
          auto round = [&](int i) { ok += portal.run_sync([i] { return trivial(i); }) == i + 1; };
          for (int i = 0; i < warmup_of(m); ++i) round(i);
          ok = 0;
          const double start = bench::now_seconds();
          for (int i = 0; i < m; ++i) round(i);
          seconds = bench::now_seconds() - start;
          check("portal_call weft", ok, m);
        });
        weft::run_in_thread([&caller] { caller.join(); });
      });
    });
    return 0.0;
  });
  return seconds;
}

double asio_portal_call(int m) {
  return bench::on_thread([m] {
    pin_this_thread(loop_cpu);
    boost::asio::io_context io(1);
    auto guard = boost::asio::make_work_guard(io);
    double seconds = 0;
    std::thread caller([&] {
      pin_this_thread(pool_cpu);
      long ok = 0;
      auto round = [&](int i) {
        ok += boost::asio::post(io, boost::asio::use_future([i] { return trivial(i); })).get() == i + 1;
      };
      for (int i = 0; i < warmup_of(m); ++i) round(i);
      ok = 0;
      const double start = bench::now_seconds();
      for (int i = 0; i < m; ++i) round(i);
      seconds = bench::now_seconds() - start;
      check("portal_call asio", ok, m);
      boost::asio::post(io, [&guard] { guard.reset(); });
    });
    io.run();
    caller.join();
    return seconds;
  });
}

void bench_portal_call() {
  bench::alternating_compare("portal_call", "asio_use_future", "call", 20'000, rounds, weft_portal_call,
                             asio_portal_call);
}

// --- caller_call ------------------------------------------------------------------
//
// The calling runtime's thread is pinned to the first CPU, the caller's (or
// B's) thread to the second.

double weft_caller_call(int m) {
  weft::caller b = weft::caller::start_new();
  b.call_soon([] { pin_this_thread(pool_cpu); }).get();
  const double seconds = bench::on_thread([&b, m] {
    pin_this_thread(loop_cpu);
    return weft::run([&b, m] {
      long ok = 0;
      auto round = [&](int i) { ok += b.call_soon([i] { return trivial(i); }).get() == i + 1; };
      for (int i = 0; i < warmup_of(m); ++i) round(i);
      ok = 0;
      const double start = bench::now_seconds();
      for (int i = 0; i < m; ++i) round(i);
      const double elapsed = bench::now_seconds() - start;
      check("caller_call weft", ok, m);
      return elapsed;
    });
  });
  b.stop();
  return seconds;
}

double asio_caller_call(int m) {
  boost::asio::io_context b(1);
  auto guard = boost::asio::make_work_guard(b);
  std::thread tb([&b] {
    pin_this_thread(pool_cpu);
    b.run();
  });
  const double seconds = bench::on_thread([&b, m] {
    pin_this_thread(loop_cpu);
    boost::asio::io_context a(1);
    auto a_guard = boost::asio::make_work_guard(a);  // a waits for B's replies
    const int total = warmup_of(m) + m;
    int next = 0;
    long ok = 0;
    double start = 0, stop = 0;
    std::function<void()> round = [&] {
      if (next == warmup_of(m)) {
        ok = 0;
        start = bench::now_seconds();
      }
      if (next == total) {
        stop = bench::now_seconds();
        a_guard.reset();
        return;
      }
      const int i = next++;
      boost::asio::post(b, [&, i] {
        const int r = trivial(i);
        boost::asio::post(a, [&, i, r] {
          ok += r == i + 1;
          round();
        });
      });
    };
    boost::asio::post(a, round);
    a.run();
    check("caller_call asio", ok, m);
    return stop - start;
  });
  guard.reset();
  tb.join();
  return seconds;
}

void bench_caller_call() {
  bench::alternating_compare("caller_call", "asio_two_io_contexts", "round trip", 20'000, rounds, weft_caller_call,
                             asio_caller_call);
}

// --- future_wake ------------------------------------------------------------------
//
// Round i: the parked side (a weft task, or a Boost.Fiber fiber) creates a
// promise, hands it to the setter thread through `slot`, publishes the
// round in `round` (store + notify_one) and parks on the future; the setter
// thread, waiting on `round` (std::atomic::wait), takes the promise and
// sets i. Both sides run the same code but for the promise type.

template <class Promise>
struct wake_slot {
  std::atomic<int> round{0};
  std::optional<Promise> promise;
};

template <class Promise>
void set_rounds(wake_slot<Promise>& s, int total) {
  pin_this_thread(pool_cpu);
  for (int i = 0; i < total; ++i) {
    s.round.wait(i, std::memory_order_acquire);
    Promise p = std::move(*s.promise);
    s.promise.reset();
    p.set_value(i);
  }
}

template <class Promise>
double wake_rounds(const char* what, wake_slot<Promise>& s, int m) {
  int next = 0;
  long ok = 0;
  auto round = [&] {
    const int i = next++;
    Promise p;
    auto f = p.get_future();
    s.promise.emplace(std::move(p));
    s.round.store(i + 1, std::memory_order_release);
    s.round.notify_one();
    ok += f.get() == i;
  };
  for (int i = 0; i < warmup_of(m); ++i) round();
  ok = 0;
  const double start = bench::now_seconds();
  for (int i = 0; i < m; ++i) round();
  const double seconds = bench::now_seconds() - start;
  check(what, ok, m);
  return seconds;
}

double weft_future_wake(int m) {
  return bench::on_thread([m] {
    pin_this_thread(loop_cpu);
    wake_slot<weft::promise<int>> s;
    std::thread setter([&s, m] { set_rounds(s, warmup_of(m) + m); });
    const double seconds = weft::run([&s, m] { return wake_rounds("future_wake weft", s, m); });
    setter.join();
    return seconds;
  });
}

double fiber_future_wake(int m) {
  return bench::on_thread([m] {
    pin_this_thread(loop_cpu);
    wake_slot<boost::fibers::promise<int>> s;
    std::thread setter([&s, m] { set_rounds(s, warmup_of(m) + m); });
    double seconds = 0;
    boost::fibers::fiber([&] { seconds = wake_rounds("future_wake boost_fiber", s, m); }).join();
    setter.join();
    return seconds;
  });
}

void bench_future_wake() {
  bench::alternating_compare("future_wake", "boost_fiber_future", "round trip", 20'000, rounds, weft_future_wake,
                             fiber_future_wake);
}

// --- references -------------------------------------------------------------------
//
// Two plain threads (pinned as above) passing a turn back and forth in one
// std::atomic<int>: the first sets odd values, the second even ones.
// spin_pingpong spins on it (yielding if both threads share the one CPU);
// futex_pingpong blocks in std::atomic::wait (libstdc++ spins briefly
// first) and wakes with notify_one.

template <bool Spin>
double pingpong_seconds(int m) {
  std::atomic<int> turn{0};
  auto await_turn = [&turn](int want) {
    if constexpr (Spin) {
      while (turn.load(std::memory_order_acquire) != want)
        if (loop_cpu == pool_cpu) std::this_thread::yield();
    } else {
      for (int v = turn.load(std::memory_order_acquire); v != want; v = turn.load(std::memory_order_acquire))
        turn.wait(v, std::memory_order_acquire);
    }
  };
  auto pass = [&turn](int v) {
    turn.store(v, std::memory_order_release);
    if constexpr (!Spin) turn.notify_one();
  };
  std::thread other([&] {
    pin_this_thread(pool_cpu);
    for (int i = 0; i < m; ++i) {
      await_turn(2 * i + 1);
      pass(2 * i + 2);
    }
  });
  double seconds = 0;
  bench::on_thread([&] {
    pin_this_thread(loop_cpu);
    const double start = bench::now_seconds();
    for (int i = 0; i < m; ++i) {
      pass(2 * i + 1);
      await_turn(2 * i + 2);
    }
    seconds = bench::now_seconds() - start;
    return 0.0;
  });
  other.join();
  return seconds;
}

template <bool Spin>
void pingpong_ref(const char* name, int m) {
  pingpong_seconds<Spin>(m / 20 + 1);  // warm-up
  std::vector<double> us;
  for (int r = 0; r < bench::reps(); ++r) us.push_back(pingpong_seconds<Spin>(m) * 1e6 / m);
  bench::report_ref(name, bench::median(us), "us");
}

void bench_spin_pingpong() { pingpong_ref<true>("spin_pingpong", 200'000); }
void bench_futex_pingpong() { pingpong_ref<false>("futex_pingpong", 20'000); }

// Heap allocations (all threads) per run_in_thread call, after warm-up
// calls have filled the thread cache and every pool.
void bench_run_in_thread_allocations() {
  constexpr int warmup = 1'000;
  constexpr int calls = 10'000;
  const double per_call = bench::on_thread([] {
    pin_this_thread(loop_cpu);
    return weft::run([] {
      auto call = [](int i) {
        const int v = weft::run_in_thread([i] {
          pin_worker();
          return trivial(i);
        });
        check("run_in_thread_allocations", v, i + 1);
      };
      for (int i = 0; i < warmup; ++i) call(i);
      const unsigned long before = g_allocations.load();
      for (int i = 0; i < calls; ++i) call(i);
      return static_cast<double>(g_allocations.load() - before) / calls;
    });
  });
  bench::report_ref("run_in_thread_allocations", per_call, "");
}

constexpr bench::entry benches[] = {
    {"pool_hop", bench_pool_hop},
    {"run_in_thread", bench_run_in_thread},
    {"thread_offload", bench_thread_offload},
    {"offload_throughput", bench_offload_throughput},
    {"portal_call", bench_portal_call},
    {"caller_call", bench_caller_call},
    {"future_wake", bench_future_wake},
    {"spin_pingpong", bench_spin_pingpong},
    {"futex_pingpong", bench_futex_pingpong},
    {"run_in_thread_allocations", bench_run_in_thread_allocations},
};

}  // namespace

int main(int argc, char** argv) { return bench::main_of("bench_threads", benches, argc, argv); }

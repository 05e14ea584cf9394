// weft::run_in_thread, capacity limiters and the thread cache; unwrap_future
// for std::future and Boost.Fiber futures.
//
// This file replaces the global operator new of the thread test program
// with one that counts every allocation of the process (workers included).
#include "threads/threads_support.hpp"

#include "support/child_process.hpp"

#include <weft/lowlevel/park.hpp>
#include <weft/threads/run_in_thread.hpp>
#include <weft/threads/unwrap_future.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <latch>
#include <memory>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

namespace {
std::atomic<std::size_t> g_allocations{0};
void* allocate(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace weft_test;
using namespace weft_threads_test;

TEST_CASE("run_in_thread returns the function's value, computed on another thread") {
  run([] {
    const auto caller = std::this_thread::get_id();
    std::thread::id worker;
    const int got = weft::run_in_thread(
        [&](int a, std::string b) {
          worker = std::this_thread::get_id();
          return a + static_cast<int>(b.size());
        },
        40, std::string("ab"));
    CHECK(got == 42);
    CHECK(worker != caller);
    weft::run_in_thread([] {});  // void
    auto moved = weft::run_in_thread([](std::unique_ptr<int> p) { return p; }, std::make_unique<int>(5));
    CHECK(*moved == 5);
  });
}

TEST_CASE("inside the function there is no runtime; the caller's context is unchanged") {
  run([] {
    bool backend_threw = false;
    bool sleep_threw = false;
    bool nested_threw = false;
    bool in_task = true;
    weft::run_in_thread([&] {
      in_task = weft::lowlevel::in_task();
      try {
        weft::current_backend();
      } catch (const std::logic_error&) {
        backend_threw = true;
      }
      try {
        weft::sleep(1s);
      } catch (const std::logic_error&) {
        sleep_threw = true;
      }
      try {
        weft::run_in_thread([] {});
      } catch (const std::logic_error&) {
        nested_threw = true;
      }
    });
    CHECK_FALSE(in_task);
    CHECK(backend_threw);
    CHECK(sleep_threw);
    CHECK(nested_threw);
    CHECK(weft::lowlevel::in_task());
    CHECK(weft::current_backend().name() == "weft");
  });
}

TEST_CASE("run_in_thread outside a task is a logic_error") {
  CHECK_THROWS_AS(weft::run_in_thread([] {}), std::logic_error);
}

TEST_CASE("by default a cancellation waits for the function; it is delivered at the next checkpoint") {
  run_real([] {
    std::latch gate(1);
    auto scope = weft::open_cancel_scope();
    int got = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          got = weft::run_in_thread([&] {
            gate.wait();
            return 42;
          });
        });
      });
      weft::testing::wait_all_tasks_blocked();
      for (int i = 0; i < 4; ++i) scope.cancel();
      gate.count_down();
    });
    CHECK(got == 42);
    CHECK(scope.cancel_called());
    CHECK_FALSE(scope.cancelled_caught());  // no checkpoint came before the scope's end
  });
}

TEST_CASE("a cancellation requests a stop when the function takes a stop_token") {
  run_real([] {
    auto scope = weft::open_cancel_scope();
    std::string got;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          got = weft::run_in_thread([](std::stop_token st, std::string tag) {
            std::mutex m;
            std::condition_variable_any cv;
            std::unique_lock lock(m);
            cv.wait(lock, st, [] { return false; });
            return tag + (st.stop_requested() ? " stopped" : " not stopped");
          }, std::string("job"));
          weft::checkpoint();
          got += ", after the checkpoint";
        });
      });
      weft::testing::wait_all_tasks_blocked();
      scope.cancel();
    });
    CHECK(got == "job stopped");
    CHECK(scope.cancelled_caught());
  });
}

TEST_CASE("abandon_on_cancel: the task is cancelled at once; the worker finishes alone, its error reported") {
  reports r;
  std::latch gate(1);
  std::latch finished(1);
  run_real([&] {
    weft::capacity_limiter one(1);
    auto scope = weft::move_on_after(10ms);
    scope.run([&] {
      weft::run_in_thread(weft::thread_options{.abandon_on_cancel = true, .limiter = &one}, [&]() -> int {
        gate.wait();
        finished.count_down();
        throw std::runtime_error("after abandonment");
      });
    });
    CHECK(scope.cancelled_caught());
    CHECK(one.borrowed_tokens() == 1);  // the job holds it until it ends
    gate.count_down();
    one.acquire();  // given back by the job, on this runtime
    one.release();
    finished.wait();
  });
  wait_until([] { return weft::testing::live_thread_jobs() == 0; }, "the abandoned job's record to go");
  REQUIRE(r.count() == 1);
  CHECK(message_of(r.errors()[0]) == "after abandonment");
}

TEST_CASE("abandoned, then the runtime ends while the worker runs: the worker touches nothing of it") {
  reports r;
  std::latch gate(1);
  run_real([&] {
    auto scope = weft::move_on_after(1ms);
    scope.run([&] {
      weft::run_in_thread(weft::thread_options{.abandon_on_cancel = true}, [&] {
        gate.wait();
        return std::string(100, 'x');  // dropped
      });
    });
    CHECK(scope.cancelled_caught());
  });
  gate.count_down();
  wait_until([] { return weft::testing::live_thread_jobs() == 0; }, "the abandoned job's record to go");
  CHECK(r.count() == 0);
}

namespace {
// At exit, while static objects are being destroyed, an abandoned job is
// released and ends with an exception: its worker reports it and gives
// its token back to an ended runtime, touching nothing already destroyed.
struct release_at_exit {
  std::latch* job_gate;
  ~release_at_exit() {
    job_gate->count_down();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the worker runs meanwhile (a bound, not a sync)
  }
};
void job_ends_during_static_destruction() {
  static std::latch job_gate(1);
  static release_at_exit releaser{&job_gate};
  weft::run([] {
    auto scope = weft::move_on_after(1ms);
    scope.run([] {
      weft::run_in_thread(weft::thread_options{.abandon_on_cancel = true}, [] {
        job_gate.wait();
        throw std::runtime_error("thrown during exit");
      });
    });
  });
  std::exit(0);
}
const weft_test::child_scenario exit_scenario{"job ends during static destruction", job_ends_during_static_destruction};
}  // namespace

TEST_CASE("a worker that finishes an abandoned job while the program exits touches nothing destroyed") {
  const weft_test::child_outcome o = weft_test::run_child("job ends during static destruction");
  INFO(o.describe());
  CHECK(o.exited_with(0));
  CHECK(o.err.find("weft: the exception of a run_in_thread job whose task was cancelled and left it: thrown during "
                   "exit") != std::string::npos);
}

TEST_CASE("exceptions cross as the same object; weft::cancelled becomes future_cancelled_error") {
  run([] {
    const auto ep = std::make_exception_ptr(std::runtime_error("in the worker"));
    try {
      weft::run_in_thread([&] { std::rethrow_exception(ep); });
    } catch (const std::runtime_error&) {
      CHECK(std::current_exception() == ep);
    }
    CHECK_THROWS_AS(weft::run_in_thread([] { throw weft::cancelled(); }), weft::future_cancelled_error);
  });
}

TEST_CASE("a capacity limiter bounds how many functions run at once; acquire is a cancellable checkpoint") {
  run_real([] {
    weft::capacity_limiter two(2);
    std::atomic<int> running{0};
    std::atomic<int> most{0};
    std::atomic<int> ran{0};
    std::latch release(1);
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 6; ++i)
        tg.start_soon([&] {
          weft::run_in_thread(weft::thread_options{.limiter = &two}, [&] {
            const int now = ++running;
            for (int m = most; m < now && !most.compare_exchange_weak(m, now);) {
            }
            ++ran;
            // The first two hold their tokens until the other four wait for one.
            release.wait();
            --running;
          });
        });
      weft::testing::wait_all_tasks_blocked();
      CHECK(two.borrowed_tokens() == 2);
      CHECK(two.waiting() == 4);
      wait_until([&] { return running == 2; }, "two jobs to run");
      release.count_down();
    });
    CHECK(most == 2);
    CHECK(ran == 6);
    CHECK(two.borrowed_tokens() == 0);
    // A task cancelled while it waits for a token never runs its function.
    CHECK(two.try_acquire());
    CHECK(two.try_acquire());
    bool ran_anyway = false;
    auto scope = weft::move_on_after(5ms);
    scope.run([&] { weft::run_in_thread(weft::thread_options{.limiter = &two}, [&] { ran_anyway = true; }); });
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(ran_anyway);
    two.release();
    two.release();
    CHECK_THROWS_AS(two.release(), std::logic_error);
  });
}

TEST_CASE("more tokens wake waiters at once; fewer take effect as tokens come back") {
  run([] {
    weft::capacity_limiter limiter(1);
    limiter.acquire();
    int got = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 2; ++i)
        tg.start_soon([&] {
          limiter.acquire();
          ++got;
        });
      weft::testing::wait_all_tasks_blocked();
      CHECK(limiter.waiting() == 2);
      limiter.set_total_tokens(3);
    });
    CHECK(got == 2);
    CHECK(limiter.borrowed_tokens() == 3);
    limiter.set_total_tokens(1);
    CHECK(limiter.available_tokens() == 0);
    limiter.release();
    limiter.release();
    CHECK(limiter.available_tokens() == 0);  // still 1 borrowed of 1
    CHECK_FALSE(limiter.try_acquire());
    limiter.release();
    CHECK(limiter.try_acquire());
    limiter.release();
    CHECK_THROWS_AS(limiter.set_total_tokens(0), std::invalid_argument);
  });
}

TEST_CASE("the default limiter has 40 tokens and belongs to one runtime") {
  CHECK_THROWS_AS(weft::current_default_thread_limiter(), std::logic_error);
  weft::capacity_limiter* first = nullptr;
  std::unique_ptr<weft::capacity_limiter> kept;
  run([&] {
    first = &weft::current_default_thread_limiter();
    CHECK(first->total_tokens() == 40);
    CHECK(&weft::current_default_thread_limiter() == first);
    kept = std::make_unique<weft::capacity_limiter>(*first);
    kept->acquire();
    kept->release();
  });
  std::thread([&] {
    weft::run([&] { CHECK_THROWS_AS(kept->acquire(), std::logic_error); });  // another runtime's
  }).join();
  CHECK_THROWS_AS(weft::capacity_limiter(0), std::invalid_argument);
}

TEST_CASE("idle workers are reused, most recently idle first, and end after their idle timeout") {
  run([] {
    // Workers of earlier cases may still be on their way back to the idle
    // list: wait until every worker is idle, so that the most recently idle
    // one is the one that ran the last job.
    auto all_idle = [] { return weft::testing::idle_worker_threads() == weft::testing::worker_threads(); };
    weft::run_in_thread([] {});
    wait_until(all_idle, "every worker to go idle");
    const auto threads = weft::testing::worker_threads();
    std::thread::id first;
    weft::run_in_thread([&] { first = std::this_thread::get_id(); });
    CHECK(weft::testing::worker_threads() == threads);  // no new thread
    wait_until(all_idle, "the worker to go idle again");
    std::thread::id second;
    weft::run_in_thread([&] { second = std::this_thread::get_id(); });
    CHECK(second == first);
  });
  const auto before = weft::testing::set_worker_idle_timeout(1ms);
  run([] {
    // Make every idle worker take a job, so that each goes idle again
    // under the short timeout.
    const auto idle = weft::testing::idle_worker_threads();
    std::latch all(static_cast<std::ptrdiff_t>(idle) + 1);
    weft::open_task_group([&](weft::task_group& tg) {
      for (std::size_t i = 0; i <= idle; ++i)
        tg.start_soon([&] { weft::run_in_thread([&] { all.arrive_and_wait(); }); });
    });
  });
  wait_until([] { return weft::testing::worker_threads() == 0; }, "idle workers to end");
  weft::testing::set_worker_idle_timeout(before);
}

TEST_CASE("jobs that wait for one another all get a worker (no fixed pool to deadlock)") {
  run_real([] {
    constexpr int n = 12;
    std::latch all(n);
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < n; ++i) tg.start_soon([&] { weft::run_in_thread([&] { all.arrive_and_wait(); }); });
    });
  });
}

TEST_CASE("a burst of short jobs runs on as many workers as CPUs, not on a thread each") {
  // So long that no trivial job counts as blocked, even on a loaded machine.
  const auto before = weft::testing::set_worker_blocking_after(30s);
  const std::size_t threads_before = weft::testing::worker_threads();
  std::mutex m;
  std::set<std::thread::id> ran_on;
  run([&] {
    weft::open_task_group([&](weft::task_group& tg) {
      for (int t = 0; t < 32; ++t)
        tg.start_soon([&] {
          for (int i = 0; i < 20; ++i)
            weft::run_in_thread([&] {
              std::lock_guard<std::mutex> lock(m);
              ran_on.insert(std::this_thread::get_id());
            });
        });
    });
  });
  weft::testing::set_worker_blocking_after(before);
  const std::size_t concurrency = weft::testing::worker_concurrency();
  CHECK(concurrency >= 2);
  CHECK(ran_on.size() <= concurrency);
  CHECK(weft::testing::worker_threads() <= std::max(threads_before, concurrency));
}

TEST_CASE("jobs do not wait behind workers blocked in long calls") {
  const auto before = weft::testing::set_worker_blocking_after(1ms);
  run_real([] {
    const std::size_t places = weft::testing::worker_concurrency();
    std::latch release(1);
    std::atomic<std::size_t> blocked{0};
    int ran = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (std::size_t i = 0; i < places; ++i)
        tg.start_soon([&] {
          weft::run_in_thread([&] {
            ++blocked;
            release.wait();
          });
        });
      tg.start_soon([&] {
        // Every place is held by a job that waits for these.
        wait_until([&] { return blocked.load() == places; }, "every place to be held");
        for (int i = 0; i < 10; ++i) ran += weft::run_in_thread([] { return 1; });
        release.count_down();
      });
    });
    CHECK(ran == 10);
  });
  weft::testing::set_worker_blocking_after(before);
}

TEST_CASE("a run_in_thread call allocates nothing in the steady state, and one record when it may abandon") {
  run([] {
    auto trivial = [] { return 1; };
    for (int i = 0; i < 20; ++i) weft::run_in_thread(trivial);
    // Wait for the worker to be idle, so that the call hands off to it.
    auto counted = [&](weft::thread_options options) {
      wait_until([] { return weft::testing::idle_worker_threads() > 0; }, "an idle worker");
      const std::size_t before = g_allocations.load();
      weft::run_in_thread(options, trivial);
      return g_allocations.load() - before;
    };
    std::size_t plain = 100;
    std::size_t abandoning = 100;
    for (int i = 0; i < 5; ++i) {  // a post's memory is recycled after the first calls
      plain = std::min(plain, counted({}));
      abandoning = std::min(abandoning, counted({.abandon_on_cancel = true}));
    }
    CHECK(plain == 0);
    CHECK(abandoning == 1);
  });
}

TEST_CASE("unwrap_future waits for a std::future, a shared_future and a Boost.Fiber future") {
  run_real([] {
    std::promise<int> ready;
    ready.set_value(1);
    CHECK(weft::unwrap_future(ready.get_future()) == 1);  // ready: read at once
    std::promise<int> later;
    auto f = later.get_future();
    std::thread setter([&] { later.set_value(2); });
    CHECK(weft::unwrap_future(std::move(f)) == 2);
    setter.join();
    std::promise<void> shared;
    auto sf = shared.get_future().share();
    shared.set_value();
    weft::unwrap_future(sf);
    boost::fibers::promise<int> fiber_promise;
    auto ff = fiber_promise.get_future();
    std::thread fiber_setter([&] { fiber_promise.set_value(3); });
    CHECK(weft::unwrap_future(std::move(ff)) == 3);
    fiber_setter.join();
    std::future<int> empty;
    CHECK_THROWS_AS(weft::unwrap_future(std::move(empty)), std::invalid_argument);
  });
}

TEST_CASE("unwrap_future of a std::future is cancelled at once; the worker waits on alone") {
  std::promise<int> never_yet;
  run_real([&] {
    auto scope = weft::move_on_after(1ms);
    scope.run([&] { weft::unwrap_future(never_yet.get_future()); });
    CHECK(scope.cancelled_caught());
  });
  never_yet.set_value(0);
  wait_until([] { return weft::testing::live_thread_jobs() == 0; }, "the abandoned wait to end");
}

TEST_CASE("the backend offers run_in_thread") {
  run([] {
    weft::async_backend& b = weft::current_backend();
    CHECK(b.run_in_thread([](int x) { return x * 2; }, 21) == 42);
    CHECK(b.run_in_thread(weft::thread_options{}, [] { return 1; }) == 1);
  });
}

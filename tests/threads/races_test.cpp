// Races of the cross-thread layer, as bounded stress loops with seeded
// jitter: each iteration checks the exactly-once invariants, and the leak
// check after each test case that no future state or job record is left.
// The seed comes from WEFT_TEST_SEED (else it is random) and is shown when
// a check fails.
#include "threads/threads_support.hpp"

#include <weft/threads/future.hpp>
#include <weft/testing/threads.hpp>
#include <weft/threads/run_in_thread.hpp>

#include <barrier>
#include <cstdlib>
#include <functional>
#include <latch>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

using namespace weft_test;
using namespace weft_threads_test;

namespace {

// Iterations per race: WEFT_STRESS_ITERATIONS, else 10 000 (the ctest test
// labelled `stress`, built with -DWEFT_STRESS_TESTS=ON, runs 200 000).
int iterations() {
  static const int n = [] {
    if (const char* env = std::getenv("WEFT_STRESS_ITERATIONS")) {
      const long v = std::strtol(env, nullptr, 10);
      if (v > 0 && v < 100'000'000) return static_cast<int>(v);
    }
    return 10'000;
  }();
  return n;
}

// The real time one race may take before its watchdog fails the test
// instead of letting it hang.
std::chrono::seconds race_limit() { return std::chrono::seconds(30 + iterations() / 1000 * 3); }

unsigned seed() {
  static const unsigned s = [] {
    if (const char* env = std::getenv("WEFT_TEST_SEED")) return static_cast<unsigned>(std::strtoul(env, nullptr, 10));
    return std::random_device{}();
  }();
  return s;
}

// Moves one side of a race against the other: up to `max_ns` of busy
// waiting, or (on a loaded machine, where the two sides may share a CPU)
// a few yields of the thread.
void jitter(std::minstd_rand& rng, int max_ns = 20'000) {
  const unsigned r = static_cast<unsigned>(rng());
  if (r % 3 == 0) {
    for (unsigned n = (r >> 2) % 4; n > 0; --n) std::this_thread::yield();
    return;
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds((r >> 2) % max_ns);
  while (std::chrono::steady_clock::now() < until) {
  }
}

// Stretches the race windows of weft's own code (its race points) with the
// same jitter, while alive.
class stretched_races {
 public:
  stretched_races() { previous_ = weft::testing::set_race_point_hook(&at_point); }
  ~stretched_races() { weft::testing::set_race_point_hook(previous_); }
  stretched_races(const stretched_races&) = delete;
  stretched_races& operator=(const stretched_races&) = delete;

 private:
  static void at_point(const char*) noexcept {
    thread_local std::minstd_rand rng(seed() ^ static_cast<unsigned>(std::hash<std::thread::id>()(std::this_thread::get_id())));
    jitter(rng, 30'000);
  }
  weft::testing::race_point_hook previous_;
};

// Two persistent threads that run one step each per iteration, started
// together (a barrier), so that iterations cost no thread creation.
class racers {
 public:
  racers(std::function<void(int)> a, std::function<void(int)> b) : a_(std::move(a)), b_(std::move(b)) {}
  void run(int n) {
    hang_backstop backstop(race_limit(), "a race between two threads");
    std::barrier start(3);
    std::barrier end(3);
    auto side = [&](std::function<void(int)>& fn) {
      for (int i = 0; i < n; ++i) {
        start.arrive_and_wait();
        fn(i);
        end.arrive_and_wait();
      }
    };
    std::thread ta([&] { side(a_); });
    std::thread tb([&] { side(b_); });
    for (int i = 0; i < n; ++i) {
      start.arrive_and_wait();
      end.arrive_and_wait();
      if (check_) check_(i);
    }
    ta.join();
    tb.join();
  }
  std::function<void(int)> check_;

 private:
  std::function<void(int)> a_;
  std::function<void(int)> b_;
};

}  // namespace

TEST_CASE("a completion racing the waiting task's cancellation: exactly one of value returned, cancelled thrown") {
  INFO("WEFT_TEST_SEED=" << seed());
  stretched_races stretched;
  std::minstd_rand rng(seed());
  int returned_count = 0;
  int cancelled_count = 0;
  std::size_t dropped_exceptions = 0;
  reports r;
  run_real([&] {
    for (int i = 0; i < iterations(); ++i) {
      weft::promise<int> p;
      auto f = p.get_future();
      const bool with_exception = i % 3 == 0;
      const auto ep = std::make_exception_ptr(std::runtime_error("job failed"));
      std::atomic<bool> set_ok{false};
      std::latch go(1);
      const unsigned setter_seed = static_cast<unsigned>(rng());
      std::thread setter([&] {
        std::minstd_rand local(setter_seed);
        go.wait();
        jitter(local);
        set_ok = with_exception ? p.set_exception(ep) : p.set_value(i);
      });
      auto scope = weft::open_cancel_scope();
      bool returned = false;
      bool same_exception = false;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          scope.run([&] {
            try {
              const int v = f.get();  // not inside CHECK: doctest would catch weft::cancelled
              CHECK(v == i);
            } catch (const std::runtime_error&) {
              same_exception = std::current_exception() == ep;
            }
            returned = true;
          });
        });
        weft::testing::wait_all_tasks_blocked();
        go.count_down();
        jitter(rng);
        scope.cancel();
      });
      setter.join();
      REQUIRE(returned != scope.cancelled_caught());
      REQUIRE(returned == set_ok.load());
      REQUIRE(f.cancelled() == !returned);
      if (returned && with_exception) REQUIRE(same_exception);
      if (!returned && with_exception) ++dropped_exceptions;  // reported, exactly once
      REQUIRE(r.count() == dropped_exceptions);
      (returned ? returned_count : cancelled_count)++;
    }
  }, race_limit());
  const std::string tally =
      "returned " + std::to_string(returned_count) + ", cancelled " + std::to_string(cancelled_count);
  MESSAGE(tally);
}

TEST_CASE("an abandoning run_in_thread racing its job's end: one of value or cancelled, the job finished once") {
  INFO("WEFT_TEST_SEED=" << seed());
  stretched_races stretched;
  std::minstd_rand rng(seed() + 1);
  std::atomic<int> runs{0};
  reports r;
  run_real([&] {
    weft::capacity_limiter limiter(1);
    for (int i = 0; i < iterations(); ++i) {
      const unsigned job_seed = static_cast<unsigned>(rng());
      auto scope = weft::open_cancel_scope();
      bool returned = false;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          scope.run([&] {
            try {
              const int v = weft::run_in_thread(weft::thread_options{.abandon_on_cancel = true, .limiter = &limiter},
                                                [&runs, job_seed, i] {
                                                  std::minstd_rand local(job_seed);
                                                  jitter(local);
                                                  ++runs;
                                                  if (i % 4 == 0) throw std::runtime_error("job failed");
                                                  return i;
                                                });
              CHECK(v == i);
            } catch (const std::runtime_error& e) {
              CHECK(std::string(e.what()) == "job failed");
            }
            returned = true;
          });
        });
        weft::testing::wait_all_tasks_blocked();
        jitter(rng);
        scope.cancel();
      });
      REQUIRE(returned != scope.cancelled_caught());
      // The token comes back (from the abandoned job, or at once): the next
      // iteration waits for it, so every job ends before the test does.
      limiter.acquire();
      limiter.release();
    }
  }, race_limit());
  CHECK(runs == iterations());
  wait_until([] { return weft::testing::live_thread_jobs() == 0; }, "every job record to go");
  // A failure is reported only when its task had left (abandoned it).
  for (const auto& e : r.errors()) CHECK(message_of(e) == "job failed");
}

TEST_CASE("cancel() from another thread racing the job's start and end: the rules hold for each winner") {
  INFO("WEFT_TEST_SEED=" << seed());
  stretched_races stretched;
  struct counting_hook : weft::future_cancel_hook {
    std::atomic<int> calls{0};
    counting_hook() {
      fn = [](weft::future_cancel_hook* h) noexcept { static_cast<counting_hook*>(h)->calls++; };
    }
  };
  for (const bool cancellable : {false, true}) {
    weft::promise<int> p;
    weft::future<int> f;
    counting_hook hook;
    int ran = 0;
    bool set_ok = false;
    bool cancel_ok = false;
    std::minstd_rand rng_a(seed() + 2), rng_b(seed() + 3);
    racers race(
        [&](int) {
          jitter(rng_a, 20'000);
          if (p.set_running(cancellable ? &hook : nullptr)) {
            ++ran;
            jitter(rng_a, 20'000);
            set_ok = p.set_value(1);
          }
        },
        [&](int) {
          jitter(rng_b, 20'000);
          cancel_ok = f.cancel("third party");
        });
    int cancelled_pending = 0, cancelled_running = 0, refused = 0;
    race.check_ = [&](int) {
      REQUIRE(ran <= 1);
      REQUIRE(f.done());
      if (!cancel_ok) {
        REQUIRE(ran == 1);  // refused: it ran and set its value (or was running, uncancellable)
        REQUIRE(set_ok);
        REQUIRE(f.result() == 1);
        ++refused;
      } else if (ran == 0) {
        ++cancelled_pending;  // cancelled before it started: never ran
      } else {
        REQUIRE(cancellable);  // cancelled while running: only with a hook
        REQUIRE_FALSE(set_ok);
        ++cancelled_running;
      }
      REQUIRE(f.cancelled() == cancel_ok);
      REQUIRE(hook.calls == (cancel_ok && ran == 1 ? 1 : 0));
      // Fresh state for the next iteration.
      p = weft::promise<int>();
      f = p.get_future();
      hook.calls = 0;
      ran = 0;
      set_ok = cancel_ok = false;
    };
    f = p.get_future();
    race.run(iterations());
    const std::string tally = std::string(cancellable ? "with a hook: " : "uncancellable: ") +
                              std::to_string(cancelled_pending) + " cancelled pending, " +
                              std::to_string(cancelled_running) + " cancelled running, " + std::to_string(refused) +
                              " refused";
    MESSAGE(tally);
  }
}

TEST_CASE("no lost wake-up: a plain thread's futex wait against a completion on another thread") {
  INFO("WEFT_TEST_SEED=" << seed());
  stretched_races stretched;
  hang_backstop backstop(race_limit(), "a futex wait");
  weft::promise<int> p;
  weft::future<int> f = p.get_future();
  int got = -1;
  std::minstd_rand rng_a(seed() + 4), rng_b(seed() + 5);
  racers race(
      [&](int) {
        jitter(rng_a, 20'000);
        got = f.get();
      },
      [&](int i) {
        jitter(rng_b, 20'000);
        p.set_value(i);
      });
  race.check_ = [&](int i) {
    REQUIRE(got == i);
    p = weft::promise<int>();
    f = p.get_future();
  };
  race.run(iterations());
}

TEST_CASE("no lost wake-up: a task registering as a waiter while another thread completes") {
  INFO("WEFT_TEST_SEED=" << seed());
  stretched_races stretched;
  std::minstd_rand rng(seed() + 6);
  run_real([&] {
    for (int i = 0; i < iterations(); ++i) {
      weft::promise<int> p;
      auto f = p.get_future();
      const unsigned s = static_cast<unsigned>(rng());
      std::thread setter([&] {
        std::minstd_rand local(s);
        jitter(local, 5'000);
        p.set_value(i);
      });
      jitter(rng, 5'000);
      REQUIRE(f.get() == i);
      setter.join();
    }
  }, race_limit());
}

TEST_CASE("no lost hand-off: jobs handed to workers that are timing out at that moment") {
  INFO("WEFT_TEST_SEED=" << seed());
  stretched_races stretched;
  // Each job is handed over about when the idle worker's timeout expires.
  constexpr auto timeout = std::chrono::microseconds(50);
  const auto before = weft::testing::set_worker_idle_timeout(timeout);
  std::minstd_rand rng(seed() + 7);
  int runs = 0;
  run_real([&] {
    for (int i = 0; i < iterations(); ++i) {
      runs += weft::run_in_thread([] { return 1; });
      // Its worker goes idle (and may end soon after).
      wait_until([] { return weft::testing::idle_worker_threads() == weft::testing::worker_threads(); },
                 "the worker to go idle");
      // The kernel's timer slack (50 us) delays the worker's wake-up.
      const auto at = std::chrono::steady_clock::now() + timeout + std::chrono::nanoseconds(rng() % 120'000);
      while (std::chrono::steady_clock::now() < at) {
      }
    }
  }, race_limit());
  weft::testing::set_worker_idle_timeout(before);
  CHECK(runs == iterations());
}

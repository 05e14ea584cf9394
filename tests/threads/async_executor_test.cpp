// weft::async_executor: jobs on an asio::thread_pool, what a waiting task
// sees, how jobs are cancelled before they start, map's results, shutdown
// and open_async_executor.
#include "threads/threads_support.hpp"

#include <weft/lowlevel/park.hpp>
#include <weft/testing/threads.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>
#include <weft/threads/async_executor.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <latch>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;
using namespace weft_threads_test;

namespace {

using pool_executor = boost::asio::thread_pool::executor_type;
using executor = weft::async_executor<pool_executor>;

static_assert(std::ranges::input_range<weft::async_executor_results<int>>);
static_assert(!std::copy_constructible<weft::async_executor_results<int>>);

// Checks, when it goes (declare it first, so it goes last), that every
// future state created meanwhile is gone.
class no_leaked_futures {
 public:
  no_leaked_futures() : before_(weft::testing::live_future_states()) {}
  ~no_leaked_futures() { CHECK(weft::testing::live_future_states() == before_); }
  no_leaked_futures(const no_leaked_futures&) = delete;
  no_leaked_futures& operator=(const no_leaked_futures&) = delete;

 private:
  std::size_t before_;
};

// Occupies the only thread of a thread_pool(1) until release(): jobs
// posted meanwhile wait in its queue.
class pool_blocker {
 public:
  explicit pool_blocker(boost::asio::thread_pool& pool) {
    boost::asio::post(pool, [this] {
      started_.count_down();
      release_.wait();
    });
    started_.wait();
  }
  ~pool_blocker() { release(); }
  pool_blocker(const pool_blocker&) = delete;
  pool_blocker& operator=(const pool_blocker&) = delete;
  void release() {
    if (!released_) {
      released_ = true;
      release_.count_down();
    }
  }

 private:
  std::latch started_{1};
  std::latch release_{1};
  bool released_ = false;
};

}  // namespace

TEST_CASE("async_executor: run returns the value, passes arguments through, and rethrows the same exception") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(1);
  run([&] {
    executor ex(pool.get_executor());
    CHECK(ex.wrapped() == pool.get_executor());
    CHECK(ex.run([] { return 42; }) == 42);
    CHECK(ex.run([](const std::string& s, int n) { return s + std::to_string(n); }, std::string("n="), 7) == "n=7");
    CHECK(ex.run([](std::unique_ptr<int> p) { return *p; }, std::make_unique<int>(5)) == 5);
    int touched = 0;
    ex.run([](int& t) { t = 3; }, std::ref(touched));
    CHECK(touched == 3);

    const auto ep = std::make_exception_ptr(std::runtime_error("job failed"));
    try {
      ex.run([ep]() -> int { std::rethrow_exception(ep); });
      FAIL("run returned");
    } catch (const std::runtime_error&) {
      CHECK(std::current_exception() == ep);
    }
    // A weft::cancelled does not cross threads.
    CHECK_THROWS_AS(ex.run([] { throw weft::cancelled(); }), weft::future_cancelled_error);
    ex.shutdown();
    CHECK(ex.outstanding_jobs() == 0);
  });
}

TEST_CASE("async_executor: inside fn there is no weft runtime") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(1);
  run([&] {
    executor ex(pool.get_executor());
    bool in_task = true;
    bool backend_threw = false;
    ex.run([&] {
      in_task = weft::lowlevel::in_task();
      try {
        weft::current_backend();
      } catch (const std::logic_error&) {
        backend_threw = true;
      }
    });
    CHECK_FALSE(in_task);
    CHECK(backend_threw);
    CHECK(weft::lowlevel::in_task());
    ex.shutdown();
  });
}

TEST_CASE("async_executor: run outside a task is a logic_error, and submits nothing") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(1);
  executor ex(pool.get_executor());
  std::atomic<int> calls{0};
  try {
    ex.run([&] { ++calls; });
    FAIL("run returned");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()).find("weft::async_executor::run") != std::string::npos);
  }
  CHECK(ex.outstanding_jobs() == 0);
  pool.join();
  CHECK(calls == 0);
}

TEST_CASE("async_executor: a job cancelled before it starts never runs fn") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(1);
  std::atomic<int> calls{0};
  run([&] {
    executor ex(pool.get_executor());
    pool_blocker blocker(pool);
    // Cancelled while the job waits in the pool's queue.
    auto scope = weft::move_on_after(1s);
    bool returned = false;
    scope.run([&] {
      ex.run([&] { ++calls; });
      returned = true;
    });
    CHECK_FALSE(returned);
    CHECK(scope.cancelled_caught());
    CHECK(now_s() == 1);
    CHECK(ex.outstanding_jobs() == 1);  // its handler has not run yet
    // Cancelled before the call: nothing is submitted.
    auto cancelled = weft::open_cancel_scope();
    cancelled.cancel();
    cancelled.run([&] { ex.run([&] { ++calls; }); });
    CHECK(cancelled.cancelled_caught());
    CHECK(ex.outstanding_jobs() == 1);
    blocker.release();
    ex.shutdown();
    CHECK(ex.outstanding_jobs() == 0);
  });
  CHECK(calls == 0);
}

TEST_CASE("async_executor: once fn runs, its value wins; the cancellation comes at the next checkpoint") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(1);
  run([&] {
    executor ex(pool.get_executor());
    std::latch started(1);
    std::latch go(1);
    auto scope = weft::open_cancel_scope();
    int got = 0;
    bool reached_next_checkpoint = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          got = ex.run([&] {
            started.count_down();
            go.wait();
            return 42;
          });
          reached_next_checkpoint = true;
          weft::checkpoint();
          reached_next_checkpoint = false;
        });
      });
      weft::testing::wait_all_tasks_blocked();  // the task has submitted the job
      started.wait();
      scope.cancel();
      weft::testing::wait_all_tasks_blocked();
      CHECK(got == 0);  // still waiting for the running job
      go.count_down();
    });
    CHECK(got == 42);
    CHECK(reached_next_checkpoint);
    CHECK(scope.cancelled_caught());
    ex.shutdown();
  });
}

TEST_CASE("async_executor: map yields the results in input order, zipped up to the shortest range") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(3);
  run([&] {
    executor ex(pool.get_executor());
    // The first job finishes last: it waits for the third one.
    std::latch third_done(1);
    const std::vector<int> numbers{0, 1, 2, 3, 4};
    const std::list<std::string> names{"a", "b", "c"};
    auto results = ex.map(
        [&](int n, const std::string& s) {
          if (n == 0) third_done.wait();
          if (n == 2) third_done.count_down();
          return s + std::to_string(n);
        },
        numbers, names);
    CHECK(results.size() == 3);
    std::vector<std::string> got;
    for (std::string& r : results) got.push_back(r);
    CHECK(got == std::vector<std::string>{"a0", "b1", "c2"});
    CHECK(results.size() == 0);
    ex.shutdown();
  });
}

TEST_CASE("async_executor: map submits every job at once; collecting finished results is no checkpoint") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(2);
  std::atomic<int> calls{0};
  run([&] {
    executor ex(pool.get_executor());
    auto results = ex.map(
        [&](int n) {
          ++calls;
          return n * 10;
        },
        std::vector<int>{1, 2, 3, 4});
    // Had map submitted lazily, the rest would be refused now.
    ex.shutdown_nowait();
    CHECK_THROWS_AS(ex.map([](int n) { return n; }, std::vector<int>{1}), weft::runtime_closed_error);
    ex.shutdown();
    CHECK(calls == 4);
    // Like Python's map with a timeout of 0 once the jobs are done.
    std::vector<int> got;
    auto scope = weft::move_on_after(0s);
    scope.run([&] {
      for (int r : results) got.push_back(r);
    });
    CHECK_FALSE(scope.cancelled_caught());
    CHECK(got == std::vector<int>{10, 20, 30, 40});
  });
  CHECK(calls == 4);
}

TEST_CASE("async_executor: a job's exception comes out when its element is reached") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(2);
  run([&] {
    executor ex(pool.get_executor());
    auto results = ex.map(
        [](int n) {
          if (n == 2) throw std::runtime_error("two");
          return n;
        },
        std::vector<int>{1, 2, 3});
    auto it = results.begin();
    CHECK(*it == 1);
    ++it;
    CHECK_THROWS_WITH_AS(*it, "two", std::runtime_error);
    ++it;  // past the failed element, without waiting again
    REQUIRE(it != results.end());
    CHECK(*it == 3);
    ++it;
    CHECK(it == results.end());
    // Incrementing reaches an element too.
    auto more = ex.map(
        [](int n) {
          if (n == 1) throw std::runtime_error("one");
          return n;
        },
        std::vector<int>{1, 2});
    auto jt = more.begin();
    CHECK_THROWS_AS(++jt, std::runtime_error);
    ++jt;
    CHECK(*jt == 2);
    ex.shutdown();
  });
}

TEST_CASE("async_executor: abandoning map's results cancels the jobs not started") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(1);
  std::atomic<int> calls{0};
  run([&] {
    executor ex(pool.get_executor());
    SUBCASE("none reached: none runs") {
      pool_blocker blocker(pool);
      {
        auto results = ex.map([&](int n) { return calls += n; }, std::vector<int>{1, 2, 3, 4});
        CHECK(ex.outstanding_jobs() == 4);
      }
      blocker.release();
      ex.shutdown();
      CHECK(calls == 0);
    }
    SUBCASE("the running one finishes, the queued ones never run") {
      std::latch second_started(1);
      std::latch go(1);
      {
        auto results = ex.map(
            [&](int n) {
              ++calls;
              if (n == 2) {
                second_started.count_down();
                go.wait();
              }
              return n;
            },
            std::vector<int>{1, 2, 3, 4});
        auto it = results.begin();
        CHECK(*it == 1);
        second_started.wait();
      }
      go.count_down();
      ex.shutdown();
      CHECK(calls == 2);
    }
  });
}

TEST_CASE("async_executor: shutdown with cancel_futures: the running job finishes, the queued ones are cancelled") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(1);
  std::atomic<int> calls{0};
  std::atomic<bool> running_job_finished{false};
  run([&] {
    executor ex(pool.get_executor());
    std::latch started(1);
    std::latch go(1);
    int running_result = 0;
    int cancelled_waiters = 0;
    std::string reason;
    bool shutdown_returned = false;
    bool finished_before_shutdown_returned = false;
    int progress = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        running_result = ex.run([&] {
          started.count_down();
          go.wait();
          running_job_finished = true;
          return 1;
        });
      });
      weft::testing::wait_all_tasks_blocked();  // the task has submitted the job
      started.wait();
      for (int i = 0; i < 10; ++i)
        tg.start_soon([&] {
          reason = error_of<weft::future_cancelled_error>([&] { ex.run([&] { ++calls; }); });
          if (reason != "(no future_cancelled_error)") ++cancelled_waiters;
        });
      weft::testing::wait_all_tasks_blocked();
      CHECK(ex.outstanding_jobs() == 11);
      tg.start_soon([&] {
        ex.shutdown(true);
        finished_before_shutdown_returned = running_job_finished;
        shutdown_returned = true;
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK(cancelled_waiters == 10);
      CHECK_FALSE(shutdown_returned);
      CHECK(ex.is_shut_down());
      CHECK_THROWS_AS(ex.run([] {}), weft::runtime_closed_error);
      // The runtime goes on while shutdown waits.
      for (int i = 0; i < 3; ++i) {
        weft::sleep(1s);
        ++progress;
      }
      CHECK_FALSE(shutdown_returned);
      go.count_down();
    });
    CHECK(shutdown_returned);
    CHECK(finished_before_shutdown_returned);
    CHECK(running_result == 1);
    CHECK(progress == 3);
    CHECK(reason == "weft::async_executor::shutdown: the executor was shut down with cancel_futures");
    CHECK(ex.outstanding_jobs() == 0);
    try {
      ex.run([] {});
      FAIL("run returned");
    } catch (const weft::runtime_closed_error& e) {
      CHECK(std::string(e.what()) == "weft::async_executor::run: the executor is shut down");
    }
    ex.shutdown();  // idempotent: nothing outstanding, returns at once
    ex.shutdown_nowait(true);
  });
  CHECK(calls == 0);
}

TEST_CASE("async_executor: shutdown without cancel_futures runs the queued jobs; its wait can be cancelled") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(1);
  std::atomic<int> calls{0};
  run([&] {
    executor ex(pool.get_executor());
    pool_blocker blocker(pool);
    int sum = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 1; i <= 3; ++i)
        tg.start_soon([&, i] {
          sum += ex.run([&, i] {
            ++calls;
            return i;
          });
        });
      weft::testing::wait_all_tasks_blocked();
      // A cancelled wait: the executor stays shut down, the jobs stay queued.
      auto scope = weft::move_on_after(1s);
      scope.run([&] { ex.shutdown(); });
      CHECK(scope.cancelled_caught());
      CHECK(ex.is_shut_down());
      CHECK(ex.outstanding_jobs() == 3);
      tg.start_soon([&] { ex.shutdown(); });
      tg.start_soon([&] { ex.shutdown(); });
      weft::testing::wait_all_tasks_blocked();
      blocker.release();
    });
    CHECK(sum == 6);
    CHECK(calls == 3);
    CHECK(ex.outstanding_jobs() == 0);
  });
}

TEST_CASE("async_executor: destroyed with jobs outstanding, it does not wait, and nothing dangles") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(1);
  std::atomic<int> calls{0};
  {
    pool_blocker blocker(pool);
    run([&] {
      std::optional<weft::async_executor_results<int>> results;
      {
        executor ex(pool.get_executor());
        results.emplace(ex.map([&](int n) { return calls += n; }, std::vector<int>{1, 2}));
      }
      blocker.release();
      int sum = 0;
      for (int r : *results) sum = r;
      CHECK(sum == 3);
    });
  }
  pool.join();
  CHECK(calls == 3);
}

TEST_CASE("open_async_executor: shuts down at exit, waiting for the jobs, and returns body's value") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(2);
  std::atomic<int> calls{0};
  run([&] {
    std::optional<weft::async_executor_results<int>> results;
    const int value = weft::open_async_executor(pool.get_executor(), [&](executor& ex) {
      results.emplace(ex.map(
          [&](int n) {
            ++calls;
            return n;
          },
          std::vector<int>{1, 2, 3}));
      return 7;
    });
    CHECK(value == 7);
    CHECK(calls == 3);
    auto scope = weft::move_on_after(0s);
    int sum = 0;
    scope.run([&] {
      for (int r : *results) sum += r;
    });
    CHECK(sum == 6);
  });
}

TEST_CASE("open_async_executor: a body that throws cancels the queued jobs; the exception comes out after the running one") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(1);
  std::atomic<int> calls{0};
  std::atomic<bool> first_finished{false};
  run([&] {
    std::latch started(1);
    std::latch go(1);
    std::optional<weft::async_executor_results<int>> results;
    auto job = [&](int n) {
      ++calls;
      if (n == 1) {
        started.count_down();
        go.wait();
        first_finished = true;
      }
      return n;
    };
    const auto failure = std::make_exception_ptr(std::runtime_error("body failed"));
    bool came_out_after_the_running_job = false;
    SUBCASE("an exception") {
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          try {
            weft::open_async_executor(pool.get_executor(), [&](executor& ex) {
              results.emplace(ex.map(job, std::vector<int>{1, 2, 3}));
              started.wait();
              std::rethrow_exception(failure);
            });
          } catch (const std::runtime_error&) {
            CHECK(std::current_exception() == failure);
            came_out_after_the_running_job = first_finished;
          }
        });
        weft::testing::wait_all_tasks_blocked();
        CHECK_FALSE(first_finished);
        go.count_down();
      });
    }
    SUBCASE("a cancellation, which the wait at exit does not cut short") {
      auto scope = weft::open_cancel_scope();
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          scope.run([&] {
            weft::open_async_executor(pool.get_executor(), [&](executor& ex) {
              results.emplace(ex.map(job, std::vector<int>{1, 2, 3}));
              started.wait();
              weft::sleep_forever();
            });
          });
          came_out_after_the_running_job = first_finished;
        });
        weft::testing::wait_all_tasks_blocked();
        scope.cancel();
        weft::testing::wait_all_tasks_blocked();
        CHECK_FALSE(first_finished);
        go.count_down();
      });
      CHECK(scope.cancelled_caught());
    }
    CHECK(came_out_after_the_running_job);
    REQUIRE(results);
    auto it = results->begin();
    CHECK(*it == 1);
    ++it;
    CHECK_THROWS_AS(*it, weft::future_cancelled_error);
  });
  CHECK(calls == 1);
}

TEST_CASE("async_executor: runs racing shutdown with cancel_futures each run once or are cancelled, never lost") {
  no_leaked_futures leaks;
  boost::asio::thread_pool pool(3);
  std::atomic<int> calls{0};
  run([&] {
    for (int round = 0; round < 20; ++round) {
      executor ex(pool.get_executor());
      int values = 0;
      int cancelled = 0;
      int refused = 0;
      weft::open_task_group([&](weft::task_group& tg) {
        for (int i = 0; i < 30; ++i)
          tg.start_soon([&] {
            try {
              values += ex.run([&] {
                ++calls;
                return 1;
              });
            } catch (const weft::future_cancelled_error&) {
              ++cancelled;
            } catch (const weft::runtime_closed_error&) {
              ++refused;
            }
          });
        tg.start_soon([&] {
          weft::checkpoint();
          ex.shutdown(true);
        });
      });
      CHECK(values + cancelled + refused == 30);
      CHECK(calls.exchange(0) == values);  // a job that ran was not cancelled: its value arrived
      CHECK(ex.outstanding_jobs() == 0);
      CHECK(ex.is_shut_down());
    }
  });
}

TEST_CASE("open_async_executor outside a task is a logic_error") {
  boost::asio::thread_pool pool(1);
  CHECK_THROWS_AS(weft::open_async_executor(pool.get_executor(), [](executor&) {}), std::logic_error);
}

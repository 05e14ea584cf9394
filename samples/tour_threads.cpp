// A tour of weft's threads area: run_in_thread under capacity limiters,
// promises and futures for a job runner of your own, unwrap_future for
// other libraries' futures, async executors on an asio::thread_pool, a
// threads portal, and the weft::testing hooks of the thread layer.
#include <weft/weft.hpp>
#include <weft/testing/threads.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <functional>
#include <future>
#include <latch>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

// A job runner of your own: a plain thread works through a list of jobs,
// each of which reports through its promise.
struct job {
  weft::promise<int> promise;
  std::function<int()> fn;
};

void work_through(std::vector<job>& jobs) {
  for (job& j : jobs) {
    if (!j.promise.set_running()) continue;  // cancelled before it started: it must not run
    try {
      j.promise.set_value(j.fn());
    } catch (...) {  // crosses to the future as the same object
      j.promise.set_exception(std::current_exception());
    }
  }
}

// For a condition another thread makes true with no event to wait on (a
// worker thread ending): spins, for at most 5 s.
template <class P>
bool wait_until(P pred) {
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (!pred() && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  return pred();
}

// Stretches the race windows of weft's cross-thread code and counts them.
std::atomic<int> race_points{0};
void stretch(const char*) noexcept {
  ++race_points;
  std::this_thread::yield();
}

}  // namespace

int main() {
  weft::run([] {
    // 1. run_in_thread borrows a token of a capacity_limiter while its job
    //    runs: 40 per runtime by default, or a limiter of your own.
    check(weft::current_default_thread_limiter().total_tokens() == 40, "the default limiter has 40 tokens");
    weft::capacity_limiter legacy_db(2);  // the legacy client allows two connections
    weft::thread_options via_db;
    via_db.limiter = &legacy_db;
    std::latch gate(1);
    int rows = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 5; ++i)
        tg.start_soon([&] { rows += weft::run_in_thread(via_db, [&] { gate.wait(); return 10; }); });
      weft::testing::wait_all_tasks_blocked();  // a quiet moment to look at the limiter
      check(legacy_db.borrowed_tokens() == 2 && legacy_db.waiting() == 3 && legacy_db.available_tokens() == 0,
            "two jobs run, three tasks wait for a token");
      legacy_db.set_total_tokens(4);  // more tokens wake waiters at once
      weft::testing::wait_all_tasks_blocked();
      check(legacy_db.borrowed_tokens() == 4 && legacy_db.waiting() == 1, "raising the total lets two more in");
      gate.count_down();
    });
    check(rows == 50 && legacy_db.borrowed_tokens() == 0 && legacy_db.total_tokens() == 4, "every job ran");

    // With abandon_on_cancel a cancelled task leaves at once; the job ends
    // alone on its worker and keeps its token until then.
    weft::capacity_limiter single(1);
    weft::thread_options abandon;
    abandon.limiter = &single;
    abandon.abandon_on_cancel = true;
    std::latch unblock(1);
    auto deadline = weft::move_on_after(5ms);
    deadline.run([&] { weft::run_in_thread(abandon, [&] { unblock.wait(); }); });
    check(deadline.cancelled_caught(), "the task left its job at the deadline");
    check(single.borrowed_tokens() == 1 && !single.try_acquire(), "the abandoned job still holds the token");
    unblock.count_down();
    single.acquire();  // parks until a token is free: here, until the abandoned job has ended
    check(single.available_tokens() == 0, "the token is ours now");
    single.release();
    std::printf("1. run_in_thread: %d rows through a limiter of %zu\n", rows, legacy_db.total_tokens());

    // 2. Promises and futures: the job runner above, driven from a task.
    weft::future<int> empty;
    check(!empty.valid(), "a default-constructed future has no state");
    std::vector<job> jobs(3);
    std::latch release_first(1);
    weft::promise<void> first_started;
    jobs[0].fn = [&] {
      first_started.set_value();
      release_first.wait();
      return 1;
    };
    jobs[1].fn = []() -> int { throw std::runtime_error("disk full"); };
    jobs[2].fn = [] { return 3; };
    std::vector<weft::future<int>> results;
    for (job& j : jobs) results.push_back(j.promise.get_future());
    try {
      (void)results[0].result();  // asked for before it is done: a misuse
      check(false, "result() of a pending future throws");
    } catch (const weft::invalid_state_error&) {
    }
    std::thread runner([&] { work_through(jobs); });
    first_started.get_future().get();  // parks the task, not the thread
    check(results[0].running() && !results[0].done(), "the first job runs");
    check(!results[0].cancel(), "a running job without a cancel hook cannot be cancelled");
    check(results[2].cancel("not needed any more"), "a pending job is cancelled");
    release_first.count_down();
    check(weft::unwrap_future(results[0]) == 1, "unwrap_future(weft::future) waits like get()");
    try {
      results[1].get();
      check(false, "the job's exception comes out of get()");
    } catch (const std::runtime_error& e) {
      check(std::string(e.what()) == "disk full", "the job's own exception");
    }
    try {
      results[2].get();
      check(false, "a cancelled future's get() throws");
    } catch (const weft::future_cancelled_error& e) {
      check(std::string(e.what()) == "not needed any more", "what() holds the cancel reason");
    }
    weft::run_in_thread([&] { runner.join(); });

    // Done-callbacks run on the promise's home runtime, outside any task; a
    // listener that goes away removes its own.
    weft::promise<std::string> reply;
    weft::future<std::string> answer = reply.get_future();
    std::vector<std::string> heard;
    weft::event delivered;
    const weft::callback_id gone = answer.add_done_callback([&](weft::future<std::string>& f) {
      heard.push_back("gone listener: " + f.result());
    });
    answer.add_done_callback([&](weft::future<std::string>& f) {
      heard.push_back(f.result());
      delivered.set();
    });
    check(answer.remove_done_callback(gone) == 1, "a callback that has not run can be removed");
    std::thread replier([reply]() mutable { reply.set_value("pong"); });
    delivered.wait();
    weft::run_in_thread([&] { replier.join(); });
    check(heard == std::vector<std::string>{"pong"}, "only the remaining callback ran");
    std::printf("2. futures: job results 1, \"disk full\", cancelled; callback heard %s\n", heard[0].c_str());

    // 3. unwrap_future for other libraries' futures: they cannot wake a
    //    task, so the wait runs on a worker while the task parks.
    std::promise<std::string> std_promise;
    std::future<std::string> std_future = std_promise.get_future();
    std::thread producer([&std_promise] { std_promise.set_value("from a std::promise"); });
    const std::string got = weft::unwrap_future(std::move(std_future));
    weft::run_in_thread([&] { producer.join(); });
    check(got == "from a std::promise", "unwrap_future(std::future)");
    const std::shared_future<int> config = std::async(std::launch::async, [] { return 7; }).share();
    check(weft::unwrap_future(config) == 7 && config.valid(), "a shared_future stays valid");
    weft::wait_options briefly;
    briefly.timeout = 1s;
    weft::promise<int> ready;
    ready.set_value(5);
    check(weft::unwrap_future(ready.get_future(), briefly) == 5, "a done future: no wait at all");
    std::printf("3. unwrap_future: %s\n", got.c_str());

    // 4. async_executor: synchronous functions on a pool of your own.
    using pool_executor = boost::asio::thread_pool::executor_type;
    boost::asio::thread_pool pool(2);
    const std::size_t letters = weft::open_async_executor(
        pool.get_executor(), [&](weft::async_executor<pool_executor>& executor) {
          check(executor.wrapped() == pool.get_executor(), "wrapped() is the pool's executor");
          check(executor.run([](int a, int b) { return a * b; }, 6, 7) == 42, "run() parks for one job");
          const std::vector<std::string> words = {"alpha", "beta", "gamma"};
          weft::async_executor_results<std::size_t> lengths =
              executor.map([](const std::string& w) { return w.size(); }, words);  // all submitted at once
          std::size_t sum = 0;
          for (std::size_t n : lengths) sum += n;  // in input order
          return sum;
        });  // shuts down, waiting for every job
    check(letters == 14, "map's results");
    {
      // Shutting down a busy executor: queued jobs are dropped, running ones finish.
      weft::async_executor<pool_executor> busy(pool.get_executor());
      std::latch both_running(2);
      std::latch finish(1);
      auto slow = [&](int n) {
        both_running.count_down();
        finish.wait();
        return n;
      };
      weft::async_executor_results<int> out = busy.map(slow, std::vector<int>{1, 2, 3});
      check(busy.outstanding_jobs() == 3, "three jobs outstanding");
      weft::run_in_thread([&] { both_running.wait(); });  // the third job waits in the pool's queue
      busy.shutdown_nowait(true);                          // refuse new jobs, cancel the queued one
      check(busy.is_shut_down(), "shut down");
      try {
        busy.run([] { return 0; });
        check(false, "a shut-down executor refuses jobs");
      } catch (const weft::runtime_closed_error&) {
      }
      finish.count_down();
      std::vector<int> done;
      try {
        for (int n : out) done.push_back(n);
      } catch (const weft::future_cancelled_error&) {
        done.push_back(-1);
      }
      check(done == std::vector<int>{1, 2, -1}, "the running jobs finished, the queued one was cancelled");
      busy.shutdown();  // waits until the pool has dropped the cancelled job too
      check(busy.outstanding_jobs() == 0, "nothing outstanding after shutdown");
    }
    std::printf("4. async_executor: %zu letters; the busy executor dropped its queued job\n", letters);

    // 5. A threads portal: another thread calls into this runtime.
    weft::threads_portal portal = weft::threads_portal::create();
    check(!portal.is_open(), "a new portal is closed until open()");
    std::vector<std::string> clicks;  // touched on the runtime's thread only
    const int answered = portal.open([&](weft::threads_portal& same) {
      check(same.is_open(), "open while the body runs");
      int value = 0;
      std::thread gui([same, &clicks, &value] {  // a copy of the handle: thread-safe
        weft::future<void> click = same.run_sync_soon([&clicks] { clicks.push_back("ok"); });  // must not block
        weft::future<int> fetched = same.run_coroutine_soon([] {  // a task: it may block
          weft::sleep(1ms);
          return 42;
        });
        click.get();  // a plain thread blocks for the outcome
        value = fetched.get();
      });
      weft::run_in_thread([&] { gui.join(); });
      return value;
    });  // closed: later calls are refused
    check(answered == 42 && clicks.size() == 1 && !portal.is_open(), "the portal's calls ran");
    bool refused = false;
    std::thread late([&] {
      try {
        portal.run_sync([] {});
      } catch (const weft::runtime_closed_error&) {
        refused = true;
      }
    });
    weft::run_in_thread([&] { late.join(); });
    check(refused, "a closed portal refuses calls");
    std::printf("5. portal: %d from a coroutine call, %zu sync call\n", answered, clicks.size());
  });

  // 6. In your tests: weft::testing's hooks of the thread layer. Each test
  //    restores what it changed.
  const std::size_t futures_before = weft::testing::live_future_states();

  // A completion racing a timeout, with the race windows stretched: no
  // value is ever lost.
  const weft::testing::race_point_hook previous = weft::testing::set_race_point_hook(&stretch);
  int lost = 0;
  weft::run([&] {
    for (int i = 0; i < 20; ++i) {
      weft::promise<int> p;
      weft::future<int> f = p.get_future();
      bool set = false;
      std::thread setter([&] { set = p.set_value(i); });
      weft::wait_options quick;
      quick.timeout = 100us;
      bool got = false;
      try {
        got = f.get(quick) == i;
      } catch (const weft::timeout_error&) {  // gave up: the wait cancelled the future
      }
      weft::run_in_thread([&] { setter.join(); });
      // Either the wait returned the value, or it cancelled the future and set_value was refused.
      if (!(got ? set : !set && f.cancelled())) ++lost;
    }
  });
  weft::testing::set_race_point_hook(previous);
  check(lost == 0 && race_points > 0, "every value returned, or refused by a cancelled future");

  // A burst of short jobs runs on at most worker_concurrency() threads (no
  // job lives long enough to count as blocked here).
  const auto blocking_before = weft::testing::set_worker_blocking_after(30s);
  std::mutex m;
  std::set<std::thread::id> ran_on;
  weft::run([&] {
    weft::open_task_group([&](weft::task_group& tg) {
      for (int t = 0; t < 8; ++t)
        tg.start_soon([&] {
          for (int i = 0; i < 10; ++i)
            weft::run_in_thread([&] {
              std::lock_guard<std::mutex> lock(m);
              ran_on.insert(std::this_thread::get_id());
            });
        });
    });
  });
  weft::testing::set_worker_blocking_after(blocking_before);
  check(!ran_on.empty() && ran_on.size() <= weft::testing::worker_concurrency(), "no thread per job");

  // Idle workers end after their idle timeout: shortened, the cache drains.
  check(wait_until([] { return weft::testing::idle_worker_threads() == weft::testing::worker_threads(); }),
        "every worker goes idle");
  const auto idle_before = weft::testing::set_worker_idle_timeout(1ms);
  weft::run([] {
    // Every idle worker takes one more job, and goes idle again under the short timeout.
    const std::size_t idle = weft::testing::idle_worker_threads();
    std::latch all(static_cast<std::ptrdiff_t>(idle) + 1);
    weft::open_task_group([&](weft::task_group& tg) {
      for (std::size_t i = 0; i <= idle; ++i)
        tg.start_soon([&] { weft::run_in_thread([&] { all.arrive_and_wait(); }); });
    });
  });
  check(wait_until([] { return weft::testing::worker_threads() == 0; }), "idle workers end");
  weft::testing::set_worker_idle_timeout(idle_before);

  check(weft::testing::live_future_states() == futures_before, "no future state left behind");
  check(weft::testing::live_thread_jobs() == 0, "no run_in_thread job left behind");
  std::printf("6. tests: %d race points stretched, %zu worker thread(s) for the burst\n", race_points.load(),
              ran_on.size());

  if (failures != 0) return 1;
  std::printf("tour_threads: ok\n");
  return 0;
}

// The fiber-free parts of the cross-thread layer under ThreadSanitizer,
// driven by plain threads: the future's state machine (sets, cancels,
// futex waits, done-callbacks posted to a home loop through its inbox)
// and the thread cache (hand-offs, idle timeouts).
#include "core/inbox.hpp"
#include "threads/thread_cache.hpp"

#include <weft/detail/future_state.hpp>
#include <weft/report_error.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <latch>
#include <thread>
#include <vector>

// What the fiber runtime would define; no task ever runs in this program.
namespace weft::detail {
constinit thread_local runtime* t_runtime = nullptr;
constinit thread_local task_base* t_current_task = nullptr;
void throw_cancelled(task_base&) { throw cancelled(); }
std::string task_base::name() const { return {}; }
void future_state_base::wait_in_task(task_base&, const wait_options&) { std::abort(); }
}  // namespace weft::detail

namespace {

using weft::detail::future_state;

// A future state without a home, one reference for the test.
struct state_ref {
  future_state<int>* s = new future_state<int>(nullptr);
  state_ref() { s->add_promise(); }
  ~state_ref() {
    s->release_promise();
    s->release();
  }
  future_state<int>* operator->() const { return s; }
};

}  // namespace

TEST_CASE("futex waiters on several threads all see a value set by another thread") {
  for (int round = 0; round < 200; ++round) {
    state_ref st;
    std::atomic<int> sum{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 3; ++i)
      waiters.emplace_back([&] {
        st->wait({});
        sum += st->value("wait", false);
      });
    std::thread setter([&] { CHECK(st->set_value(round)); });
    setter.join();
    for (auto& t : waiters) t.join();
    CHECK(sum == 3 * round);
  }
}

TEST_CASE("cancel racing set_running and set_value: one winner, the job runs at most once") {
  for (int round = 0; round < 500; ++round) {
    state_ref st;
    std::atomic<int> ran{0};
    std::atomic<bool> cancelled{false};
    std::latch go(1);
    std::thread job([&] {
      go.wait();
      if (st->set_running(nullptr)) {
        ++ran;
        st->set_value(1);
      }
    });
    std::thread canceller([&] {
      go.wait();
      cancelled = st->cancel("third party");
    });
    go.count_down();
    job.join();
    canceller.join();
    CHECK(st->done());
    CHECK(ran <= 1);
    CHECK(cancelled == (ran == 0));
  }
}

TEST_CASE("done-callbacks reach the home loop's thread through its inbox, once each") {
  // A home loop: an io_context run on its own thread, with an inbox, as a runtime's.
  struct owner {
    weft::detail::inbox* in;
    ~owner() { in->release(); }
  };
  boost::asio::io_context io{1};
  owner held{new weft::detail::inbox(io)};
  auto work = boost::asio::make_work_guard(io);
  std::thread::id home;
  std::thread loop([&] {
    home = std::this_thread::get_id();
    io.run();
  });
  struct counting_callback : weft::detail::future_callback {
    std::atomic<int>* runs;
    std::thread::id* home;
    void invoke(weft::detail::future_state_base&) override {
      CHECK(std::this_thread::get_id() == *home);
      ++*runs;
    }
  };
  std::atomic<int> runs{0};
  constexpr int rounds = 200;
  for (int round = 0; round < rounds; ++round) {
    auto* s = new future_state<int>(held.in);
    auto* cb = new counting_callback;
    cb->runs = &runs;
    cb->home = &home;
    s->add_callback(cb);
    std::thread setter([s] { s->set_value(1); });
    setter.join();
    s->release();
  }
  // Let the loop drain, then close its inbox on its own thread and stop.
  boost::asio::post(io, [&] {
    held.in->close();
    work.reset();
  });
  loop.join();
  CHECK(runs == rounds);
}

TEST_CASE("the thread cache runs every job exactly once, with hand-offs racing idle timeouts") {
  auto& cache = weft::detail::thread_cache::instance();
  const auto before = cache.idle_timeout();
  cache.set_idle_timeout(std::chrono::microseconds(30));
  struct counted_job : weft::detail::thread_job {
    std::atomic<int> runs{0};
    std::atomic<int>* done = nullptr;
    counted_job() {
      run = [](weft::detail::thread_job* j) noexcept {
        auto* self = static_cast<counted_job*>(j);
        ++self->runs;
        self->done->fetch_add(1);  // the job's last touch of anything the test owns
      };
    }
  };
  constexpr int submitters = 3;
  constexpr int per_submitter = 300;
  std::vector<counted_job> jobs(submitters * per_submitter);
  std::atomic<int> done{0};
  for (auto& j : jobs) j.done = &done;
  std::vector<std::thread> threads;
  for (int t = 0; t < submitters; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_submitter; ++i) {
        cache.start(jobs[static_cast<std::size_t>(t * per_submitter + i)]);
        if (i % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(40));
      }
    });
  for (auto& t : threads) t.join();
  while (done.load() != submitters * per_submitter) std::this_thread::yield();
  for (auto& j : jobs) CHECK(j.runs == 1);
  cache.set_idle_timeout(before);
}

TEST_CASE("the thread cache's queue: jobs that all wait for one another each run once, given threads") {
  auto& cache = weft::detail::thread_cache::instance();
  const auto before = cache.blocking_after();
  cache.set_blocking_after(std::chrono::microseconds(100));
  constexpr int submitters = 3;
  constexpr int per_submitter = 12;
  constexpr int total = submitters * per_submitter;
  struct waiting_job : weft::detail::thread_job {
    std::atomic<int> runs{0};
    std::latch* all = nullptr;
    waiting_job() {
      run = [](weft::detail::thread_job* j) noexcept {
        auto* self = static_cast<waiting_job*>(j);
        ++self->runs;
        self->all->arrive_and_wait();  // ends only once every job has started
        self->finished->fetch_add(1);   // the job's last touch of anything the test owns
      };
    }
    std::atomic<int>* finished = nullptr;
  };
  std::vector<waiting_job> jobs(total);
  std::latch all(total);
  std::atomic<int> finished{0};
  for (auto& j : jobs) {
    j.all = &all;
    j.finished = &finished;
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < submitters; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_submitter; ++i) cache.start(jobs[static_cast<std::size_t>(t * per_submitter + i)]);
    });
  for (auto& t : threads) t.join();
  while (finished.load() != total) std::this_thread::yield();
  for (auto& j : jobs) CHECK(j.runs == 1);
  cache.set_blocking_after(before);
}

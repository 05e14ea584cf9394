// The runtime's inbox (lib/core/inbox.hpp) on its own, driven by plain
// threads and built with ThreadSanitizer (which does not understand
// Boost.Fiber's stack switches, so the fiber runtime is not in this
// binary): every call runs exactly once, in submission order per
// submitter, on the loop's thread while the inbox is open, and with
// open == false (never lost, never posted to a closed loop) once it is
// closed, also when submits race the close.
#include "core/inbox.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

namespace {

using weft::detail::inbox;
using weft::detail::remote_call;

struct call : remote_call {
  int producer = 0;
  int seq = 0;
  std::atomic<int> runs{0};
  std::atomic<int> open_runs{0};
  std::thread::id ran_on;
  static std::atomic<int>* last_seq;  // per producer, read on the loop thread
  static std::atomic<long>* finished;

  call() { fn = &run; }
  static void run(remote_call* c, bool open) noexcept {
    auto* self = static_cast<call*>(c);
    if (open) {
      // Submission order per producer (the loop thread is the only reader).
      const int last = last_seq[self->producer].exchange(self->seq, std::memory_order_relaxed);
      if (last >= self->seq) self->seq = -1;  // seen out of order: recorded for the test
      self->ran_on = std::this_thread::get_id();
      self->open_runs.fetch_add(1, std::memory_order_relaxed);
    }
    self->runs.fetch_add(1, std::memory_order_release);
    finished->fetch_add(1, std::memory_order_release);
  }
};
std::atomic<int>* call::last_seq = nullptr;
std::atomic<long>* call::finished = nullptr;

// The loop's thread: an io_context run until told to stop, like a runtime's.
struct loop {
  // As in the runtime: the reference to the inbox goes after the
  // io_context, whose queued drains give their memory back to the inbox.
  struct owner {
    inbox* in;
    ~owner() { in->release(); }
  } held{new inbox(io)};
  boost::asio::io_context io{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  inbox* in = held.in;
  std::thread::id id;
  std::thread thread{[this] {
    id = std::this_thread::get_id();
    io.run();
  }};
  ~loop() {
    if (thread.joinable()) stop();
  }
  // On the loop's thread: close the inbox, then let run() return.
  void close_and_stop() {
    boost::asio::post(io, [this] {
      in->close();
      work.reset();
    });
    thread.join();
  }
  void stop() {
    boost::asio::post(io, [this] { work.reset(); });
    thread.join();
  }
};

// `producers` x `per_producer` calls, numbered in submission order, and the
// counters their runs update.
struct batch {
  std::vector<std::atomic<int>> last;
  std::atomic<long> finished{0};
  std::vector<std::unique_ptr<call[]>> calls;
  batch(int producers, int per_producer) : last(static_cast<std::size_t>(producers)) {
    for (auto& l : last) l = -1;
    call::last_seq = last.data();
    call::finished = &finished;
    for (int p = 0; p < producers; ++p) {
      calls.emplace_back(new call[per_producer]);
      for (int i = 0; i < per_producer; ++i) {
        calls[p][i].producer = p;
        calls[p][i].seq = i;
      }
    }
  }
};

void wait_for(const std::atomic<long>& n, long want) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (n.load(std::memory_order_acquire) < want) {
    REQUIRE(std::chrono::steady_clock::now() < give_up);
    std::this_thread::yield();
  }
}

}  // namespace

TEST_CASE("inbox: calls from many threads run once each, in order per thread, on the loop's thread") {
  constexpr int producers = 4;
  constexpr int per_producer = 20000;
  batch b(producers, per_producer);
  auto& calls = b.calls;
  auto& finished = b.finished;
  loop l;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) l.in->submit(calls[p][i]);
    });
  for (auto& t : threads) t.join();
  wait_for(finished, static_cast<long>(producers) * per_producer);
  l.stop();
  for (int p = 0; p < producers; ++p)
    for (int i = 0; i < per_producer; ++i) {
      const call& c = calls[p][i];
      REQUIRE(c.runs.load() == 1);
      REQUIRE(c.open_runs.load() == 1);
      REQUIRE(c.seq == i);  // not out of order
      REQUIRE(c.ran_on == l.id);
    }
}

TEST_CASE("inbox: submits racing the close each run exactly once, open before the close, dropped after") {
  constexpr int producers = 3;
  constexpr int per_producer = 5000;
  for (int round = 0; round < 20; ++round) {
    batch b(producers, per_producer);
    auto& calls = b.calls;
    auto& finished = b.finished;
    auto l = std::make_unique<loop>();
    std::promise<void> go;
    std::shared_future<void> started = go.get_future().share();
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
      threads.emplace_back([&, p] {
        started.wait();
        for (int i = 0; i < per_producer; ++i) l->in->submit(calls[p][i]);
      });
    go.set_value();
    std::this_thread::yield();
    l->close_and_stop();  // somewhere in the middle of the submits
    for (auto& t : threads) t.join();
    wait_for(finished, static_cast<long>(producers) * per_producer);
    long open = 0;
    for (int p = 0; p < producers; ++p) {
      bool closed_seen = false;
      for (int i = 0; i < per_producer; ++i) {
        const call& c = calls[p][i];
        REQUIRE(c.runs.load() == 1);
        if (c.open_runs.load() == 1) {
          REQUIRE(!closed_seen);  // once dropped, a producer's later calls are dropped too
          REQUIRE(c.seq == i);
          REQUIRE(c.ran_on == l->id);
          ++open;
        } else {
          closed_seen = true;
        }
      }
    }
    CHECK(open <= static_cast<long>(producers) * per_producer);
    l.reset();
  }
}

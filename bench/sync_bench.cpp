// Synchronization benchmarks: weft's primitives against Boost.Fiber's,
// measured side by side in one run (medians of BENCH_REPS repetitions).
//
//   cv_notify_all  64 tasks wait on a condition variable; a notifier takes
//                  the lock, advances a generation, calls notify_all and
//                  releases; every waiter takes the lock once, sees the new
//                  generation and waits again; the last one tells the
//                  notifier (a second condition variable over the same
//                  lock). weft::condition_variable over a weft::lock vs
//                  boost::fibers::condition_variable_any over a
//                  boost::fibers::mutex; per waiter woken
//
// Usage: bench_sync [name...]   (default: all)
#include "bench_util.hpp"

#include <weft/testing/wait_all_tasks_blocked.hpp>
#include <weft/weft.hpp>

#include <boost/fiber/all.hpp>

#include <mutex>
#include <vector>

namespace {

// --- cv_notify_all ----------------------------------------------------------------

constexpr int cv_waiters = 64;
constexpr int cv_rounds = 5'000;

double weft_cv_notify_all_ns() {
  return bench::on_thread([] {
    return weft::run([] {
      weft::lock l;
      weft::condition_variable cv(l);
      weft::condition_variable done(l);
      long generation = 0;
      int arrived = 0;
      double start = 0;
      weft::open_task_group([&](weft::task_group& tg) {
        for (int i = 0; i < cv_waiters; ++i) {
          tg.start_soon([&] {
            long seen = 0;
            weft::lock_guard guard(l);
            for (int r = 0; r < cv_rounds; ++r) {
              cv.wait([&] { return generation != seen; });
              seen = generation;
              if (++arrived == cv_waiters) done.notify();
            }
          });
        }
        weft::testing::wait_all_tasks_blocked();  // every waiter is waiting
        weft::lock_guard guard(l);
        start = bench::now_seconds();
        for (int r = 0; r < cv_rounds; ++r) {
          arrived = 0;
          ++generation;
          cv.notify_all();
          done.wait([&] { return arrived == cv_waiters; });
        }
      });
      return (bench::now_seconds() - start) * 1e9 / (double(cv_rounds) * cv_waiters);
    });
  });
}

double fiber_cv_notify_all_ns() {
  return bench::on_thread([] {
    boost::fibers::mutex m;
    boost::fibers::condition_variable_any cv;
    boost::fibers::condition_variable_any done;
    long generation = 0;
    int arrived = 0;
    int started = 0;
    std::vector<boost::fibers::fiber> fibers;
    for (int i = 0; i < cv_waiters; ++i) {
      fibers.emplace_back([&] {
        long seen = 0;
        std::unique_lock<boost::fibers::mutex> lk(m);
        ++started;
        for (int r = 0; r < cv_rounds; ++r) {
          cv.wait(lk, [&] { return generation != seen; });
          seen = generation;
          if (++arrived == cv_waiters) done.notify_one();
        }
      });
    }
    // A fiber counts itself and goes on into its wait without yielding.
    while (started < cv_waiters) boost::this_fiber::yield();
    double start = 0;
    {
      std::unique_lock<boost::fibers::mutex> lk(m);
      start = bench::now_seconds();
      for (int r = 0; r < cv_rounds; ++r) {
        arrived = 0;
        ++generation;
        cv.notify_all();
        done.wait(lk, [&] { return arrived == cv_waiters; });
      }
    }
    const double end = bench::now_seconds();
    for (auto& f : fibers) f.join();
    return (end - start) * 1e9 / (double(cv_rounds) * cv_waiters);
  });
}

void bench_cv_notify_all() {
  std::vector<double> w, f;
  for (int r = 0; r < bench::reps(); ++r) {
    w.push_back(weft_cv_notify_all_ns());
    f.push_back(fiber_cv_notify_all_ns());
  }
  bench::report("cv_notify_all", bench::median(w), "boost_fiber", bench::median(f), "ns",
                "(per waiter woken, 64 waiters)");
}

constexpr bench::entry benches[] = {
    {"cv_notify_all", bench_cv_notify_all},
};

}  // namespace

int main(int argc, char** argv) { return bench::main_of("bench_sync", benches, argc, argv); }

// A tour of weft's synchronisation primitives: locks, a condition variable,
// events, semaphores, channels and single_flight. They belong to one
// runtime (they are not thread-safe), every wait is a checkpoint, and a
// cancelled waiter leaves the primitive as if it had never waited.
#include <weft/weft.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>

#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

bool failed = false;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    failed = true;
  }
}

void locks() {
  // weft::lock: the next owner is whoever asks next once it is free;
  // weft::fair_lock hands it over in arrival order. Both are basic_locks,
  // which are Lockable: std::scoped_lock and std::unique_lock work on a
  // basic_lock& (in weft::lock, the class's own name hides lock()).
  weft::fair_lock fair;
  std::vector<int> order;
  weft::open_task_group([&](weft::task_group& group) {
    fair.acquire();
    for (int i = 0; i < 3; ++i)
      group.start_soon([&, i] {
        weft::lock_guard hold(fair);                      // waits its turn
        order.push_back(i);
      });
    weft::testing::wait_all_tasks_blocked();              // all three now queue, in order
    fair.release();
  });
  check(order == std::vector<int>{0, 1, 2}, "a fair lock serves waiters in arrival order");

  weft::lock plain;
  weft::basic_lock& any = plain;
  check(any.try_acquire() && any.locked() && !plain.try_lock(), "try_acquire takes a free lock only");
  plain.unlock();
  {
    weft::basic_lock& other = fair;
    std::scoped_lock both(any, other);                    // takes both, in a deadlock-free order
    check(plain.locked() && fair.locked(), "scoped_lock holds both");
  }
  plain.acquire();
  plain.release();
  check(!plain.locked() && &plain.backend() == &weft::builtin_backend(), "released");
}

void condition_variables() {
  // A condition variable owns a lock (or shares one given to it); wait()
  // releases it while waiting and takes it back before returning.
  weft::condition_variable cv;
  std::deque<int> queue;
  int consumed = 0;
  weft::open_task_group([&](weft::task_group& group) {
    for (int c = 0; c < 2; ++c)
      group.start_soon([&] {
        cv.acquire();
        cv.wait([&] { return !queue.empty(); });
        consumed += queue.front();
        queue.pop_front();
        cv.release();
      });
    weft::testing::wait_all_tasks_blocked();
    {
      std::unique_lock hold(cv);                          // lock()/unlock() through std::unique_lock
      queue.push_back(1);
      cv.notify();                                        // one consumer
    }
    weft::testing::wait_all_tasks_blocked();
    if (cv.try_acquire()) {
      queue.push_back(2);
      cv.notify_all();                                    // every waiter re-checks its predicate
      cv.unlock();
    }
  });
  check(consumed == 3 && !cv.locked() && &cv.backend() == &weft::builtin_backend(), "both items consumed");

  // Sharing a lock that guards more than one condition.
  weft::lock shared;
  weft::condition_variable not_empty(shared), not_full(shared);
  check(!not_empty.locked() && not_full.try_lock() && not_empty.locked(), "two conditions, one lock");
  not_full.unlock();
}

void events_and_semaphores() {
  // An event is set once and wakes every waiter.
  weft::event ready;
  int woken = 0;
  weft::open_task_group([&](weft::task_group& group) {
    for (int i = 0; i < 3; ++i)
      group.start_soon([&] {
        ready.wait();
        ++woken;
      });
    weft::testing::wait_all_tasks_blocked();
    check(!ready.is_set(), "not yet set");
    ready.set();
  });
  check(ready.is_set() && woken == 3 && &ready.backend() == &weft::builtin_backend(), "an event wakes all");

  // A semaphore bounds how many run at once; max_value catches a release too many.
  weft::semaphore slots(2, /*max=*/2);
  weft::event work_done;  // holds the first two in their slots until the check below
  int running = 0, peak = 0;
  weft::open_task_group([&](weft::task_group& group) {
    for (int i = 0; i < 5; ++i)
      group.start_soon([&] {
        slots.acquire();
        peak = std::max(peak, ++running);
        work_done.wait();
        --running;
        slots.release();
      });
    weft::testing::wait_all_tasks_blocked();
    check(slots.waiting() == 3 && slots.value() == 0, "three wait for a slot");
    work_done.set();
  });
  check(peak == 2 && slots.value() == slots.max_value(), "never more than two at once");
  bool too_many = false;
  try {
    slots.release();
  } catch (const std::logic_error&) {
    too_many = true;
  }
  check(too_many && slots.try_acquire() && &slots.backend() == &weft::builtin_backend(), "a bounded semaphore");
  slots.release();
}

void channels() {
  // A bounded channel: send() waits while it is full, receive() while it is
  // empty; close() ends it, and receivers then drain what is left.
  weft::channel<std::string> words(2);
  std::vector<std::string> got;
  weft::open_task_group([&](weft::task_group& group) {
    group.start_soon([&] {
      for (const char* w : {"one", "two", "three"}) words.send(w);  // the third waits for room
      words.close();
    });
    weft::testing::wait_all_tasks_blocked();
    check(words.size() == words.capacity(), "the channel filled up to its capacity");
    try {
      for (;;) got.push_back(words.receive());
    } catch (const weft::channel_closed&) {                      // closed and drained
    }
  });
  check(got == std::vector<std::string>{"one", "two", "three"} && words.closed(), "every word in order");

  // The non-blocking forms; capacity 0 is a rendezvous (try_send needs a waiting receiver).
  weft::channel<int> rendezvous(0);
  int value = 7;
  check(!rendezvous.try_send(value) && !rendezvous.try_receive(), "nothing waits on either side");
  weft::open_task_group([&](weft::task_group& group) {
    group.start_soon([&] { check(rendezvous.receive() == 7, "handed over directly"); });
    weft::testing::wait_all_tasks_blocked();
    check(rendezvous.try_send(value), "a receiver was waiting");
  });
}

void single_flights() {
  // Concurrent calls with one key share one execution (a cache fill, a
  // token refresh): the first caller runs it, the others wait for its result.
  weft::single_flight<std::string, int> fills;
  weft::event loaded;  // holds the fill in flight until the check below
  int executions = 0;
  std::vector<int> results;
  weft::open_task_group([&](weft::task_group& group) {
    for (int i = 0; i < 4; ++i)
      group.start_soon([&] {
        results.push_back(fills.call("config", [&] {
          ++executions;
          loaded.wait();  // a slow load
          return 42;
        }));
      });
    weft::testing::wait_all_tasks_blocked();
    check(fills.flights() == 1 && fills.in_flight("config") && fills.waiting("config") == 3, "one flight, three waiting");
    loaded.set();
  });
  check(executions == 1 && results == std::vector<int>(4, 42), "four callers, one execution");
  check(fills.flights() == 0 && &fills.backend() == &weft::builtin_backend(), "the flight ended");
}

}  // namespace

int main() {
  weft::run([] {
    locks();
    condition_variables();
    events_and_semaphores();
    channels();
    single_flights();
  });
  if (failed) return 1;
  std::printf("tour_sync: ok\n");
}

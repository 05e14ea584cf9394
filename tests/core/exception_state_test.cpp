// Each task has its own C++ exception state: the exceptions being handled
// (std::current_exception, `throw;`) and std::uncaught_exceptions() are kept
// per task across parks, not shared by the tasks of a thread. So is errno.

#include "support/support.hpp"

#include <cerrno>
#include <exception>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

using namespace weft_test;

namespace {

// An exception that knows whether it is still alive, without reading its
// own (possibly freed) memory: ids live in a registry.
std::set<int>& live_ids() {
  static std::set<int> ids;
  return ids;
}

struct tracked_error : std::runtime_error {
  explicit tracked_error(int id) : std::runtime_error("tracked " + std::to_string(id)), id(id) {
    live_ids().insert(id);
  }
  tracked_error(const tracked_error& other) : std::runtime_error(other), id(other.id + 100000) {
    live_ids().insert(id);
  }
  ~tracked_error() override { live_ids().erase(id); }
  int id;
};

std::string what_of_current() {
  try {
    std::rethrow_exception(std::current_exception());
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "?";
  }
}

// Task i throws "task i", parks inside its handler (staggered so that the
// handlers interleave and end in the order they started, which a shared
// per-thread stack of caught exceptions gets wrong), then
// checks that the exception being handled is still its own and rethrows it.
void interleave_in_handlers(int tasks) {
  std::vector<std::string> rethrown(static_cast<std::size_t>(tasks));
  std::vector<std::string> seen_after_park(static_cast<std::size_t>(tasks));
  weft::open_task_group([&](weft::task_group& tg) {
    for (int i = 0; i < tasks; ++i) {
      tg.start_soon([&, i] {
        try {
          try {
            throw std::runtime_error("task " + std::to_string(i));
          } catch (...) {
            weft::sleep(weft::duration(i + 1));  // the first to start ends its handler first
            seen_after_park[static_cast<std::size_t>(i)] = what_of_current();
            throw;
          }
        } catch (const std::runtime_error& e) {
          rethrown[static_cast<std::size_t>(i)] = e.what();
        }
      });
    }
  });
  for (int i = 0; i < tasks; ++i) {
    const std::string mine = "task " + std::to_string(i);
    CHECK(seen_after_park[static_cast<std::size_t>(i)] == mine);
    CHECK(rethrown[static_cast<std::size_t>(i)] == mine);
  }
}

}  // namespace

TEST_CASE("two tasks parked in catch blocks each rethrow their own exception") {
  run([] { interleave_in_handlers(2); });
}

TEST_CASE("fifty tasks parked in catch blocks each rethrow their own exception") {
  run([] { interleave_in_handlers(50); });
}

TEST_CASE("a task's caught exception stays alive while its handler is parked and another handler ends") {
  live_ids().clear();
  run([] {
    bool second_alive_after_park = false;
    int second_id_in_handler = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        try {
          throw tracked_error(1);
        } catch (const tracked_error&) {
          weft::sleep(2s);  // ends its handler while the second task is inside its own
        }
      });
      tg.start_soon([&] {
        weft::sleep(1s);
        try {
          throw tracked_error(2);
        } catch (const tracked_error& e) {
          second_id_in_handler = e.id;
          weft::sleep(2s);
          second_alive_after_park = live_ids().count(second_id_in_handler) == 1;
        }
      });
    });
    CHECK(second_id_in_handler == 2);
    CHECK(second_alive_after_park);
  });
  CHECK(live_ids().empty());
}

TEST_CASE("std::current_exception in a task is not another task's exception, nor the loop's") {
  run([] {
    std::exception_ptr seen_by_other = std::make_exception_ptr(1);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([] {
        try {
          throw std::runtime_error("mine");
        } catch (...) {
          weft::sleep(2s);
          CHECK(what_of_current() == "mine");
        }
      });
      tg.start_soon([&] {
        weft::sleep(1s);
        seen_by_other = std::current_exception();
      });
    });
    CHECK(seen_by_other == nullptr);
    CHECK(std::current_exception() == nullptr);
  });
}

namespace {
// Parks in its destructor; records std::uncaught_exceptions() before and after.
struct parks_in_destructor {
  int* before;
  int* after;
  ~parks_in_destructor() {
    *before = std::uncaught_exceptions();
    weft::sleep(2s);
    *after = std::uncaught_exceptions();
  }
};
}  // namespace

TEST_CASE("std::uncaught_exceptions stays right in both tasks when one parks in a destructor during unwinding") {
  run([] {
    int before = -1, after = -1;
    std::vector<int> other_counts;
    bool caught = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        try {
          parks_in_destructor guard{&before, &after};
          throw std::runtime_error("unwinding");
        } catch (const std::runtime_error&) {
          caught = true;
        }
      });
      tg.start_soon([&] {
        for (int i = 0; i < 3; ++i) {
          other_counts.push_back(std::uncaught_exceptions());
          weft::sleep(1s);
        }
      });
    });
    CHECK(caught);
    CHECK(before == 1);
    CHECK(after == 1);
    CHECK(other_counts == std::vector<int>{0, 0, 0});
    CHECK(std::uncaught_exceptions() == 0);
  });
}

TEST_CASE("a task group exits while an exception is in flight from its body, and children handle their own") {
  run([] {
    std::string child_saw;
    std::string outcome;
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          try {
            throw std::runtime_error("child's");
          } catch (...) {
            // The group's exit waits for us inside its own catch block.
            weft::ignore_cancellation([] { weft::sleep(1s); });
            child_saw = what_of_current();
          }
        });
        weft::coro_yield();
        throw std::logic_error("body's");
      });
    } catch (const std::logic_error& e) {
      outcome = e.what();
      CHECK(what_of_current() == "body's");
    }
    CHECK(child_saw == "child's");
    CHECK(outcome == "body's");
  });
}

TEST_CASE("nested try/catch blocks with parks at every level keep each level's exception") {
  run([] {
    std::vector<std::string> seen[2];
    weft::open_task_group([&](weft::task_group& tg) {
      for (int k = 0; k < 2; ++k) {
        tg.start_soon([&, k] {
          const std::string p = "t" + std::to_string(k) + ".";
          try {
            throw std::runtime_error(p + "outer");
          } catch (...) {
            weft::sleep(1s);
            seen[k].push_back(what_of_current());
            try {
              throw std::runtime_error(p + "inner");
            } catch (...) {
              weft::sleep(1s);
              seen[k].push_back(what_of_current());
              try {
                throw;
              } catch (...) {
                weft::sleep(1s);
                seen[k].push_back(what_of_current());
              }
              weft::sleep(1s);
              seen[k].push_back(what_of_current());
            }
            weft::sleep(1s);
            seen[k].push_back(what_of_current());
          }
          seen[k].push_back(std::current_exception() ? "some" : "none");
        });
      }
    });
    for (int k = 0; k < 2; ++k) {
      const std::string p = "t" + std::to_string(k) + ".";
      CHECK(seen[k] == std::vector<std::string>{p + "outer", p + "inner", p + "inner", p + "inner", p + "outer", "none"});
    }
  });
}

TEST_CASE("a task started from inside a catch block starts with no exception being handled") {
  run([] {
    bool child_had_exception = true;
    int child_uncaught = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      try {
        throw std::runtime_error("parent's");
      } catch (...) {
        tg.start_soon([&] {
          child_had_exception = std::current_exception() != nullptr;
          child_uncaught = std::uncaught_exceptions();
        });
        weft::sleep(1s);
        CHECK(what_of_current() == "parent's");
      }
    });
    CHECK_FALSE(child_had_exception);
    CHECK(child_uncaught == 0);
  });
}

TEST_CASE("weft::run called inside a catch block leaves the caller's exception in place") {
  try {
    throw std::runtime_error("outside");
  } catch (...) {
    run([] {
      CHECK(std::current_exception() == nullptr);
      weft::sleep(1s);
    });
    CHECK(what_of_current() == "outside");
  }
}

TEST_CASE("errno is per task: three tasks each read their own errno after parking") {
  run([] {
    std::vector<int> seen(3, -1);
    std::vector<int> at_start(3, -1);
    errno = 77;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 3; ++i) {
        tg.start_soon([&, i] {
          at_start[static_cast<std::size_t>(i)] = errno;
          errno = 100 + i;
          weft::sleep(weft::duration(3 - i));  // they wake in the other order
          seen[static_cast<std::size_t>(i)] = errno;
        });
      }
    });
    CHECK(errno == 77);  // the body's own, across the group's wait
    CHECK(at_start == std::vector<int>{0, 0, 0});
    CHECK(seen == std::vector<int>{100, 101, 102});
  });
}

TEST_CASE("errno from a failed system call survives a park while another task's call fails differently") {
  run([] {
    int seen = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        char c = 0;
        if (::write(-1, &c, 1) < 0) {
          weft::sleep(2s);  // e.g. logging the failure through an async API
          seen = errno;
        }
      });
      tg.start_soon([&] {
        weft::sleep(1s);
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        ::close(fds[1]);
        ::close(fds[0]);
        char c = 0;
        CHECK(::read(fds[0], &c, 1) < 0);  // EBADF too: make it differ
        errno = EAGAIN;
        weft::sleep(2s);
        CHECK(errno == EAGAIN);
      });
    });
    CHECK(seen == EBADF);
  });
}

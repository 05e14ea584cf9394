// Completions from anywhere: every way a task waits for an operation
// (use_fiber, use_fiber[ec], await_ of a deferred operation, await_ of an
// asio::awaitable co_spawned on the place's executor, await_ of an
// asio::awaitable run by the runtime, await_ of a plain C++20 awaitable)
// x every place the operation completes (places.hpp) x (normal completion,
// cancellation while pending, completion racing the cancellation), with
// many tasks and iterations each. A hang aborts the test program with a
// message (hang_backstop) instead of waiting for the ctest timeout.
#include "completion/places.hpp"

#include <weft/greenback/greenback.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <string>

using namespace weft_test;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr int scale = 1;  // sanitizers make every switch and post slower
#else
constexpr int scale = 4;
#endif

enum class form { use_fiber, use_fiber_ec, await_deferred, await_co_spawn, await_awaitable, custom_awaitable };
constexpr form all_forms[] = {form::use_fiber,      form::use_fiber_ec,    form::await_deferred,
                              form::await_co_spawn, form::await_awaitable, form::custom_awaitable};

const char* name_of(form f) {
  switch (f) {
    case form::use_fiber: return "use_fiber";
    case form::use_fiber_ec: return "use_fiber[ec]";
    case form::await_deferred: return "await_(deferred operation)";
    case form::await_co_spawn: return "await_(co_spawn(place executor, awaitable, deferred))";
    case form::await_awaitable: return "await_(asio::awaitable)";
    case form::custom_awaitable: return "await_(C++20 awaitable)";
  }
  return "?";
}

asio::awaitable<int> doubled_at(places& p, place_kind k, int x) {
  co_return co_await async_double(p, k, x, asio::use_awaitable);
}

asio::awaitable<void> sleep_at(sleeper& s, std::chrono::microseconds d) {
  co_await s.async_wait(d, asio::use_awaitable);
}

/// 2 * x, computed at place k and waited for in form f.
int value_op(form f, places& p, place_kind k, int x) {
  switch (f) {
    case form::use_fiber: return async_double(p, k, x, weft::use_fiber);
    case form::use_fiber_ec: {
      error_code ec = asio::error::fault;
      const int v = async_double(p, k, x, weft::use_fiber[ec]);
      REQUIRE(!ec);
      return v;
    }
    case form::await_deferred: return greenback::await_(async_double(p, k, x, asio::deferred));
    case form::await_co_spawn: return greenback::await_(asio::co_spawn(p.executor(k), doubled_at(p, k, x), asio::deferred));
    case form::await_awaitable: return greenback::await_(doubled_at(p, k, x));
    case form::custom_awaitable: return greenback::await_(resume_there{p, k, x});
  }
  return -1;
}

/// Waits d of real time at place k in form f. Every form but the plain
/// C++20 awaitable is cancellable: a cancellation of the task aborts the
/// wait and throws weft::cancelled; the plain awaitable runs to its end.
void timed_op(form f, places& p, place_kind k, sleeper& s, std::chrono::microseconds d) {
  switch (f) {
    case form::use_fiber: s.async_wait(d, weft::use_fiber); return;
    case form::use_fiber_ec: {
      error_code ec = asio::error::fault;
      s.async_wait(d, weft::use_fiber[ec]);
      REQUIRE(!ec);
      return;
    }
    case form::await_deferred: greenback::await_(s.async_wait(d, asio::deferred)); return;
    case form::await_co_spawn: greenback::await_(asio::co_spawn(p.executor(k), sleep_at(s, d), asio::deferred)); return;
    case form::await_awaitable: greenback::await_(sleep_at(s, d)); return;
    case form::custom_awaitable: {
      const int v = greenback::await_(resume_there{p, k, 21, d});
      REQUIRE(v == 42);
      return;
    }
  }
}

/// Cancelling a coroutine co_spawned on a multi-threaded executor without a
/// strand races the coroutine itself (its first step may run on one pool
/// thread while the cancellation runs on another): Asio requires a strand
/// there, so the cancellation rows leave out that one cell (the strand
/// place is the supported form of it).
bool cancellation_supported(form f, place_kind k) {
  return !(f == form::await_co_spawn && k == place_kind::thread_pool);
}

/// A C++20 awaitable resumed at place k when opened.
struct gated {
  places& p;
  place_kind k;
  std::coroutine_handle<> waiter;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { waiter = h; }
  int await_resume() const noexcept { return 42; }
  void open() {
    p.run(k, [h = waiter] { h.resume(); });
  }
};

/// Runs body(task, iteration) in `tasks` tasks, `iterations` times each.
template <class Body>
void in_many_tasks(int tasks, int iterations, Body body) {
  weft::open_task_group([&](weft::task_group& tg) {
    for (int t = 0; t < tasks; ++t)
      tg.start_soon([&body, t, iterations] {
        for (int i = 0; i < iterations; ++i) body(t, i);
      });
  });
}

/// Runs cell(place, form) for every cell of the matrix (the cancellation
/// rows without the unsupported cell), naming the cell in failures.
template <class Cell>
void for_each_cell(bool cancellation, Cell cell) {
  for (place_kind k : all_places) {
    for (form f : all_forms) {
      if (cancellation && !cancellation_supported(f, k)) continue;
      const std::string where = name_of(k), how = name_of(f);
      CAPTURE(where);
      CAPTURE(how);
      cell(k, f);
    }
  }
}

}  // namespace

TEST_CASE("completions from anywhere: the value arrives, the right task wakes, exactly once") {
  hang_backstop backstop(240s, "the normal-completion matrix");
  places p;
  for_each_cell(false, [&](place_kind k, form f) {
    int wrong = 0;
    long completed = 0;
    weft_test::run([&] {
      in_many_tasks(16, 25 * scale, [&](int t, int i) {
        const int x = t * 100000 + i;
        if (value_op(f, p, k, x) != 2 * x) ++wrong;
        ++completed;
      });
    });
    CHECK(wrong == 0);
    CHECK(completed == 16L * 25 * scale);
  });
}

TEST_CASE("completions from anywhere: a cancellation while the operation is pending") {
  hang_backstop backstop(240s, "the cancel-while-pending matrix");
  places p;
  for_each_cell(true, [&](place_kind k, form f) {
    int not_caught = 0;
    int returned_anyway = 0;
    int wrong_value = 0;
    weft_test::run([&] {
      in_many_tasks(8, 5 * scale, [&](int, int) {
        if (f == form::custom_awaitable) {
          // Not cancellable: it runs to its end, which comes (from the
          // place) only after the cancellation; the cancellation is then
          // delivered at the next checkpoint.
          gated g{p, k, {}};
          weft::cancel_scope scope;
          weft::open_task_group([&](weft::task_group& tg) {
            tg.start_soon([&] {  // runs once the waiter has parked
              scope.cancel();
              g.open();
            });
            scope.run([&] {
              if (greenback::await_(g) != 42) ++wrong_value;
              weft::checkpoint();
            });
          });
          if (!scope.cancelled_caught()) ++not_caught;
          return;
        }
        // The manual clock jumps to the scope's deadline once every task
        // waits: the operations (an hour of real time) are still pending.
        sleeper s(p, k);
        auto scope = weft::move_on_after(1s);
        scope.run([&] {
          timed_op(f, p, k, s, 1h);
          ++returned_anyway;
        });
        if (!scope.cancelled_caught()) ++not_caught;
      });
    });
    CHECK(not_caught == 0);
    CHECK(returned_anyway == 0);
    CHECK(wrong_value == 0);
  });
}

TEST_CASE("completions from anywhere: a completion racing the cancellation") {
  hang_backstop backstop(240s, "the completion-racing-cancellation matrix");
  places p;
  for_each_cell(true, [&](place_kind k, form f) {
    int not_caught = 0;
    long completed = 0;
    long cancelled = 0;
    weft_test::run([&] {
      in_many_tasks(8, 12 * scale, [&](int t, int i) {
        sleeper s(p, k);
        weft::cancel_scope scope;
        weft::open_task_group([&](weft::task_group& g) {
          // Runs as soon as the waiter parks: the cancellation is
          // forwarded while the wait (0 to 40 us) may be completing.
          g.start_soon([&] { scope.cancel(); });
          scope.run([&] {
            try {
              timed_op(f, p, k, s, std::chrono::microseconds((t * 7 + i * 13) % 41));
            } catch (const weft::cancelled&) {
              ++cancelled;
              throw;
            }
            ++completed;
            weft::checkpoint();  // then the cancellation comes here
          });
        });
        if (!scope.cancelled_caught()) ++not_caught;
      });
    });
    CHECK(not_caught == 0);
    CHECK(completed + cancelled == 8L * 12 * scale);
  });
}

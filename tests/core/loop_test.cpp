// The loop as tasks see it: Asio handlers that become ready while a task
// parks run outside any task and with the loop's own per-thread state,
// whichever context runs them (the dispatcher, or the parking task itself
// when no other task is ready); a task whose waits always complete at once
// neither starves other tasks nor keeps deadlines from firing; handler
// memory is reused by the loop from one handler to the next.
#include "support/support.hpp"

#include <weft/lowlevel/completion.hpp>
#include <weft/lowlevel/park.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cerrno>
#include <exception>
#include <stdexcept>
#include <vector>

using namespace weft_test;
namespace ll = weft::lowlevel;

namespace {

bool in_some_task() {
  try {
    (void)ll::current_task();
    return true;
  } catch (const std::logic_error&) {
    return false;
  }
}

// Waits for a handler posted to the runtime's io_context, which completes
// the wait after running `body` there.
template <class F>
void wait_for_handler(F body) {
  ll::completion done;
  boost::asio::post(ll::io_context(), [&] {
    body();
    done.complete();
  });
  done.wait([]() noexcept { return ll::abort_result::failed; }, "a posted handler");
}

}  // namespace

TEST_CASE("handlers run while a task parks see no task, no exception in flight, and leave the task's errno alone") {
  run([] {
    bool saw_task = true;
    bool saw_exception = true;
    int saw_uncaught = -1;
    try {
      throw std::runtime_error("being handled by the task");
    } catch (const std::runtime_error&) {
      errno = 42;
      wait_for_handler([&] {
        saw_task = in_some_task();
        saw_exception = std::current_exception() != nullptr;
        saw_uncaught = std::uncaught_exceptions();
        errno = 7;
        // A handler that handles an exception of its own leaves the task's alone.
        try {
          throw std::logic_error("the handler's");
        } catch (const std::logic_error&) {
        }
      });
      CHECK(errno == 42);
      std::exception_ptr mine = std::current_exception();
      REQUIRE(mine != nullptr);
      CHECK_THROWS_WITH_AS(std::rethrow_exception(mine), "being handled by the task", std::runtime_error);
    }
    CHECK_FALSE(saw_task);
    CHECK_FALSE(saw_exception);
    CHECK(saw_uncaught == 0);
    CHECK(std::current_exception() == nullptr);
  });
}

TEST_CASE("a task whose waits complete at once still lets real-clock deadlines fire") {
  // Each of the task's waits is complete when it parks (its handler is
  // ready), so the loop could go on running it without ever looking at the
  // clock; the deadline, which only a full pass of the loop fires, must
  // still end the scope. (Real clock: a manual clock's jump fires deadlines
  // by itself, without a pass.)
  run_real([] {
    long waits = 0;
    weft::move_on_after(10ms).run([&] {
      for (;;) {
        wait_for_handler([] {});
        ++waits;
        weft::lowlevel::raise_if_cancelled();
      }
    });
    CHECK(waits > 0);
  });
}

TEST_CASE("handlers posted from handlers, from tasks and from other threads all run, in order per source") {
  run([] {
    std::vector<int> order;
    ll::completion done;
    auto& io = ll::io_context();
    boost::asio::post(io, [&] {
      order.push_back(1);
      boost::asio::post(io, [&] {
        order.push_back(3);
        done.complete();
      });
    });
    boost::asio::post(io, [&] { order.push_back(2); });
    done.wait([]() noexcept { return ll::abort_result::failed; }, "handlers");
    CHECK(order == std::vector<int>{1, 2, 3});
  });
}

// A tour of weft's coroutines and of greenback, the portals through which
// plain synchronous task code waits for them: weft::coro and
// weft::async_generator, the awaitable traits, where portals are and are
// not, with_portal_run(_sync) for coroutines that have none, and the helpers
// built on await_ (autoawait, async_context, async_iter). Time comes from a
// manual clock, so every sleep is instant and exact. Every result is checked.
#include <weft/greenback/greenback.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/testing/manual_clock.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>
#include <weft/weft.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <coroutine>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
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

double now_s() { return weft::current_time().time_since_epoch().count(); }

// --- an asynchronous API: weft coroutines ------------------------------------------------

// A coroutine runs on the fiber of the task that awaits it, so its body may
// call weft's blocking functions: here a one-second "round trip".
weft::coro<int> fetch_price(std::string item) {
  weft::sleep(1s);
  co_return static_cast<int>(item.size()) * 10;
}

weft::coro<int> total_price(std::vector<std::string> items) {
  int total = 0;
  for (std::string& item : items) total += co_await fetch_price(item);  // symmetric transfer, no new task
  co_return total;
}

weft::coro<void> record(std::vector<std::string>& log, std::string entry) {
  weft::sleep(1s);
  log.push_back(std::move(entry));
  co_return;
}

// Any C++20 awaitable works too: a one-shot mailbox filled by another task.
template <class T>
class mailbox {
 public:
  struct awaiter {
    mailbox& box;
    bool await_ready() const noexcept { return box.value_.has_value(); }
    void await_suspend(std::coroutine_handle<> h) noexcept { box.waiter_ = h; }
    T await_resume() { return std::move(*box.value_); }
  };
  awaiter operator co_await() noexcept { return awaiter{*this}; }
  void put(T v) {
    value_.emplace(std::move(v));
    if (auto h = std::exchange(waiter_, {})) h.resume();  // the waiter continues on its own task's fiber
  }

 private:
  std::optional<T> value_;
  std::coroutine_handle<> waiter_;
};

// The awaitable traits, for generic code over awaitables.
static_assert(std::is_same_v<weft::awaiter_t<mailbox<int>&>, mailbox<int>::awaiter>);
static_assert(std::is_same_v<weft::await_result_t<mailbox<int>&>, int>);
static_assert(std::is_same_v<weft::await_result_t<weft::coro<std::string>>, std::string>);
static_assert(weft::is_coro_v<const weft::coro<int>&> && !weft::is_coro_v<mailbox<int>>);

// The value of an awaitable that is ready now, without suspending anything.
template <class A>
std::optional<weft::await_result_t<A&>> poll(A& awaitable) {
  auto&& w = weft::get_awaiter(awaitable);
  if (!w.await_ready()) return std::nullopt;
  return w.await_resume();
}

void coroutines() {
  // A coro is lazy: nothing runs until it is awaited, and it is awaited once.
  weft::coro<int> order = total_price({"tea", "coffee"});
  check(order.valid() && now_s() == 0, "a coro does nothing before it is awaited");
  check(greenback::await_(order) == 90 && now_s() == 2, "await_ runs the coro on this task");
  check(!order.valid(), "an awaited coro is empty");

  mailbox<int> box;
  check(!poll(box), "an empty mailbox is not ready");
  int got = 0;
  weft::open_task_group([&](weft::task_group& tg) {
    tg.start_soon([&] { got = greenback::await_(box); });  // parks its task until put()
    weft::testing::wait_all_tasks_blocked();
    box.put(42);
  });
  check(got == 42 && poll(box) == 42, "await_ of a foreign awaitable completed by another task");

  // The driver under await_, for writers of drivers: the coroutine runs on this
  // fiber to its end, and its value or exception stays in its promise.
  std::vector<std::string> log;
  weft::coro<void> job = record(log, "driven");
  weft::lowlevel::drive_coroutine(job.handle());
  check(job.done() && log == std::vector<std::string>{"driven"}, "drive_coroutine runs a coroutine to its end");
}

// --- portals -------------------------------------------------------------------------------

// Legacy synchronous code: it needs a portal to wait for the async API.
int quote(const std::string& item) { return greenback::await_(fetch_price(item)) + 1; }

void portals() {
  check(greenback::has_portal(), "task code has a portal");
  greenback::ensure_portal();  // greenback's guarantee; in weft a checkpoint, nothing more

  // An Asio handler on the runtime's io_context runs outside any task: no portal.
  bool handler_portal = true;
  std::string refused;
  weft::event handled;
  boost::asio::post(weft::lowlevel::io_context(), [&] {
    handler_portal = greenback::has_portal();
    try {
      quote("tea");
    } catch (const greenback::no_portal_error& e) {
      refused = e.what();
    }
    handled.set();
  });
  handled.wait();
  check(!handler_portal && refused.find("with_portal_run") != std::string::npos,
        "await_ in an Asio handler throws no_portal_error, which names the remedies");

  // Every task has a portal; the greenback calls that grant them are kept so that
  // greenback code ports unchanged.
  [[maybe_unused]] greenback::portals_for_children children_get_portals;
  weft::event go;
  weft::open_task_group([&](weft::task_group& tg) {
    weft::task<int> child = tg.start([&] {
      go.wait();
      return quote("milk");
    });
    greenback::bestow_portal(child);  // synchronous, never throws
    check(greenback::has_portal(child), "a running task has a portal");
    go.set();
    check(child.join() == 41, "the child's legacy code reached the async API");
    check(!greenback::has_portal(child), "a finished task has none");
  });
}

// --- with_portal_run: synchronous code from a coroutine that has no portal ------------------

// Starts a task per item: with_portal_run_tree's children have portals too.
weft::coro<int> quote_all(int items) {
  int sum = 0;
  weft::open_task_group([&](weft::task_group& tg) {
    for (int i = 1; i <= items; ++i) tg.start_soon([&sum, i] { sum += quote(std::string(i, 'x')); });
  });
  co_return sum;
}

// An asio::awaitable runs in Asio handler context, outside any fiber.
boost::asio::awaitable<std::vector<int>> asio_report() {
  std::vector<int> out{greenback::has_portal() ? 1 : 0};
  const std::string tea = "tea";
  out.push_back(co_await greenback::with_portal_run_sync(quote, tea));    // sync code on a portal worker
  out.push_back(co_await greenback::with_portal_run(fetch_price, tea));   // an async function, awaited there
  out.push_back(co_await greenback::with_portal_run_tree(quote_all, 3));  // and the tasks it starts
  co_return out;
}

void portal_runs() {
  const double start = now_s();
  const std::vector<int> report = greenback::await_(asio_report());  // co_spawned on the runtime's io_context
  check(report == std::vector<int>{0, 31, 30, 63}, "with_portal_run(_sync/_tree) from an asio::awaitable");
  check(now_s() - start == 3, "the three children of with_portal_run_tree ran concurrently");
  // With a portal present they call straight through.
  check(greenback::await_(greenback::with_portal_run_sync(quote, std::string("ox"))) == 21, "call through");
}

// --- autoawait: constructors and destructors that wait ------------------------------------

class session {
 public:
  explicit session(std::vector<std::string>& log)
      : log_(log), price_(greenback::autoawait(fetch_price)("opening")) {
    greenback::autoawait(record)(log_, "opened");
  }
  // Cleanup that parks runs shielded: a cancelled task must still close.
  ~session() {
    weft::shielded([this] { greenback::autoawait(record)(log_, "closed"); });
  }
  int price() const { return price_; }

 private:
  std::vector<std::string>& log_;
  int price_;
};

// --- async_context: `async with` from synchronous code ---------------------------------------

struct conflict_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An async context manager: aenter() gives the entered value, aexit(e) sees the
// exception in flight and returns true to suppress it.
class transaction {
 public:
  explicit transaction(std::vector<std::string>& log) : log_(log) {}
  weft::coro<int> aenter() {
    weft::sleep(1s);
    log_.push_back("begin");
    co_return ++id_;
  }
  weft::coro<bool> aexit(std::exception_ptr e) {
    weft::sleep(1s);
    log_.push_back(e ? "rollback" : "commit");
    co_return e && is_conflict(e);  // a conflict is retried later: suppress it
  }

 private:
  static bool is_conflict(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const conflict_error&) {
      return true;
    } catch (...) {
      return false;
    }
  }
  std::vector<std::string>& log_;
  int id_ = 0;
};

void context_managers() {
  std::vector<std::string> log;
  {
    session s(log);
    check(s.price() == 70 && log == std::vector<std::string>{"opened"}, "autoawait in a constructor");
  }
  check(log.back() == "closed", "autoawait in a destructor");

  log.clear();
  transaction tx(log);
  std::optional<int> done = greenback::async_context(tx, [&](int id) { return id * 100; });
  std::optional<int> dropped = greenback::async_context(tx, [](int) -> int { throw conflict_error("row busy"); });
  check(done == 100 && !dropped, "aexit's answer decides what the body's outcome becomes");
  check(log == std::vector<std::string>{"begin", "commit", "begin", "rollback"}, "entered and exited in order");

  // weft's own scopes as async context managers.
  weft::cancel_scope deadline = weft::move_on_after(5s);
  const double start = now_s();
  auto late = greenback::async_context(greenback::async_cm(deadline), [](weft::cancel_scope&) {
    weft::sleep(10s);
    return 1;
  });
  check(!late && deadline.cancelled_caught() && now_s() - start == 5, "async_cm(cancel_scope) catches its deadline");
  weft::task_group group;
  int sum = 0;
  greenback::async_context(greenback::async_cm(group), [&](weft::task_group& tg) {
    for (int i = 1; i <= 3; ++i) tg.start_soon([&sum, i] { sum += quote(std::string(i, 'y')); });
  });
  check(sum == 63, "async_cm(task_group) waits for the children");

  // portals_for_tree entered and left by hand: schedule points, not cancel points.
  greenback::portals_for_tree tree;
  greenback::await_(tree.aenter());
  const int tree_sum = greenback::await_(quote_all(2));
  check(!greenback::await_(tree.aexit(nullptr)) && tree_sum == 32, "portals_for_tree suppresses nothing");
}

// --- async generators ----------------------------------------------------------------------

struct skip_page {};  // thrown into the generator: go on with the next page

// A paged source: each page costs a round trip, then yields its lines.
weft::async_generator<std::string> lines(int pages, std::vector<std::string>& log) {
  try {
    for (int page = 1; page <= pages; ++page) {
      weft::sleep(1s);
      for (int line = 1; line <= 3; ++line) {
        try {
          co_yield std::to_string(page) + "." + std::to_string(line);
        } catch (const skip_page&) {
          break;
        }
      }
    }
  } catch (const weft::generator_exit&) {  // close(): clean up (it may block), do not yield again
    log.push_back("closed early");
    throw;
  }
}

// A coroutine consumer: next(), throw_() and close() are awaitable steps.
weft::coro<std::vector<std::string>> first_lines(weft::async_generator<std::string>& gen, std::size_t pages) {
  std::vector<std::string> got;
  std::optional<std::string> line = co_await gen.next();
  while (line) {
    got.push_back(*line);
    if (got.size() == pages) {
      co_await gen.close();  // enough: generator_exit is thrown at its co_yield
      break;
    }
    line = co_await gen.throw_(std::make_exception_ptr(skip_page{}));  // on to the next page
  }
  co_return got;
}

void generators() {
  std::vector<std::string> log;
  weft::async_generator<std::string> pages = lines(5, log);
  const std::vector<std::string> firsts = greenback::await_(first_lines(pages, 2));
  check(firsts == std::vector<std::string>{"1.1", "2.1"}, "throw_ skips the rest of a page");
  check(pages.done() && log == std::vector<std::string>{"closed early"}, "close() throws generator_exit into it");

  // The same generator type from synchronous code: async_iter.
  weft::async_generator<std::string> two_pages = lines(2, log);
  greenback::async_iter it(two_pages);
  std::vector<std::string> seen{*it.next()};
  seen.push_back(*it.throw_(std::make_exception_ptr(skip_page{})));
  for (const std::string& line : it) seen.push_back(line);  // the rest, to the end
  check(seen == std::vector<std::string>{"1.1", "2.1", "2.2", "2.3"}, "async_iter: next, throw_, range-for");
  check(!it.next() && two_pages.done(), "the end stays the end");
}

}  // namespace

int main() {
  weft::run_options options;
  options.clock = std::make_shared<weft::testing::manual_clock>(weft::time_point{}, true);  // autojump
  weft::run(options, [] {
    coroutines();
    portals();
    portal_runs();
    context_managers();
    generators();
  });
  check(!greenback::has_portal(), "no portal outside weft::run");
  if (failed) return 1;
  std::printf("tour_greenback: ok\n");
  return 0;
}

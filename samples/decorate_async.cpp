// Plain synchronous decorators applied to an async function with
// greenback::decorate_as_sync.
//
// retry() and memoize() below are ordinary synchronous higher-order
// functions: they call the function they wrap and look at its result or
// exception. Applied directly to an async function they would retry or cache
// the coroutine object, not its outcome. decorate_as_sync makes them work on
// the outcome: the async function is wrapped in a synchronous callable that
// await_s it (greenback::autoawait), the decorator wraps that, and the result
// is again an async function, awaitable from an asio::awaitable (which has no
// portal of its own) and from task code.
//
// A synchronous decorator that blocks can be entered again meanwhile: while
// memoize() waits for the service, other tasks call it, miss the cache and
// would each call the service too. memoize() therefore fills its cache inside
// a weft::single_flight call, so concurrent misses for one key make one call.
#include <weft/greenback/greenback.hpp>
#include <weft/weft.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// --- synchronous decorators: know nothing about coroutines --------------------------

// Retries fn up to `attempts` times while it throws std::runtime_error.
auto retry(int attempts, int& retries) {
  return [attempts, &retries](auto fn) {
    return [fn = std::move(fn), attempts, &retries](const std::string& key) mutable -> std::string {
      for (int attempt = 1;; ++attempt) {
        try {
          return fn(key);
        } catch (const std::runtime_error&) {
          if (attempt == attempts) throw;
          ++retries;
        }
      }
    };
  };
}

// Remembers fn's result for every key. The cache is filled inside the
// single_flight call, before the callers waiting for that call wake up.
auto memoize(int& hits, int& calls) {
  return [&hits, &calls](auto fn) {
    struct state {
      std::map<std::string, std::string> cache;
      weft::single_flight<std::string, std::string> in_flight;  // cannot move; the decorated function can
    };
    return [fn = std::move(fn), s = std::make_shared<state>(), &hits, &calls](const std::string& key) mutable {
      if (auto it = s->cache.find(key); it != s->cache.end()) {
        ++hits;
        return it->second;
      }
      return s->in_flight.call(key, [&] {
        ++calls;
        std::string value = fn(key);
        s->cache.emplace(key, value);
        return value;
      });
    };
  };
}

// --- the async function: a flaky remote quote service ---------------------------------

class quote_service {
 public:
  /// The quote for `symbol`, after some latency. The first two requests for
  /// every symbol fail with a std::runtime_error (a flaky network).
  boost::asio::awaitable<std::string> quote(std::string symbol) {
    boost::asio::steady_timer latency(co_await boost::asio::this_coro::executor, 1ms);
    co_await latency.async_wait(boost::asio::use_awaitable);
    ++calls_;
    if (++attempts_[symbol] <= 2) throw std::runtime_error("connection reset while fetching " + symbol);
    co_return symbol + "=" + std::to_string(100 + static_cast<int>(symbol.size()) * 7);
  }
  int calls() const { return calls_; }

 private:
  std::map<std::string, int> attempts_;
  int calls_ = 0;
};

// An asio::awaitable caller: no portal here, yet it uses the decorated function.
template <class Fetch>
boost::asio::awaitable<std::vector<std::string>> dashboard(Fetch& fetch, std::vector<std::string> symbols) {
  std::vector<std::string> out;
  for (const std::string& s : symbols) out.push_back(co_await fetch(s));
  co_return out;
}

}  // namespace

int main() {
  int retries = 0;
  int hits = 0;
  int memo_calls = 0;
  int service_calls = 0;
  int retries_before_concurrent = 0;
  std::vector<std::string> from_concurrent;
  int concurrent_calls = 0;
  int concurrent_service_calls = 0;
  std::vector<std::string> from_asio;
  std::string from_task;
  std::string asio_error;
  bool hopeless_failed = false;

  weft::run([&] {
    quote_service service;
    auto remote_quote = [&service](const std::string& symbol) { return service.quote(symbol); };
    // memoize(retry(3)(remote_quote)), as an async function.
    auto fetch = greenback::decorate_as_sync(
        [&](auto fn) { return memoize(hits, memo_calls)(retry(3, retries)(std::move(fn))); })(remote_quote);

    // From an asio::awaitable co_spawned on the runtime.
    weft::event done;
    boost::asio::co_spawn(weft::lowlevel::io_context(), dashboard(fetch, {"WEFT", "ASIO", "WEFT"}),
                          [&](std::exception_ptr e, std::vector<std::string> v) {
                            if (e) {
                              try {
                                std::rethrow_exception(e);
                              } catch (const std::exception& x) {
                                asio_error = x.what();
                              }
                            }
                            from_asio = std::move(v);
                            done.set();
                          });
    done.wait();

    // From task code: await_ the same decorated function (shared cache).
    from_task = greenback::await_(fetch("FIBER"));
    const std::string cached = greenback::await_(fetch("ASIO"));
    if (cached != "ASIO=128") from_task += " (bad cache: " + cached + ")";

    // With a single attempt allowed, the service's exception comes straight out.
    auto fragile = greenback::decorate_as_sync(retry(1, retries))(remote_quote);
    try {
      greenback::await_(fragile("BOOST"));
    } catch (const std::runtime_error&) {
      hopeless_failed = true;
    }
    service_calls = service.calls();
    retries_before_concurrent = retries;

    // Four tasks miss the cache for the same symbol at once: one call of the
    // memoized function (with its retries), whose value all four get.
    const int calls_before = memo_calls;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 4; ++i) tg.start_soon([&] { from_concurrent.push_back(greenback::await_(fetch("FLIGHT"))); });
    });
    concurrent_calls = memo_calls - calls_before;
    concurrent_service_calls = service.calls() - service_calls;
  });

  const std::vector<std::string> expected_asio = {"WEFT=128", "ASIO=128", "WEFT=128"};
  int failures = 0;
  auto report = [&](const char* what, bool ok, const std::string& detail) {
    failures += ok ? 0 : 1;
    std::printf("%-28s %-36s %s\n", what, detail.c_str(), ok ? "ok" : "MISMATCH");
  };
  std::string joined;
  for (const auto& q : from_asio) joined += (joined.empty() ? "" : " ") + q;
  report("from asio::awaitable:", asio_error.empty() && from_asio == expected_asio,
         asio_error.empty() ? joined : asio_error);
  report("from task code:", from_task == "FIBER=135", from_task);
  report("hopeless call fails:", hopeless_failed, hopeless_failed ? "runtime_error" : "no exception");
  // WEFT, ASIO, FIBER: 3 calls each (2 failures + success); BOOST: 1.
  report("service calls:", service_calls == 10, std::to_string(service_calls));
  report("retries:", retries_before_concurrent == 6, std::to_string(retries_before_concurrent));
  report("cache hits:", hits == 2, std::to_string(hits));
  // FLIGHT: one call of the memoized function, 3 service requests (2 failures + success).
  const bool shared = from_concurrent == std::vector<std::string>(4, "FLIGHT=142");
  report("concurrent misses:", shared && concurrent_calls == 1 && concurrent_service_calls == 3,
         std::to_string(from_concurrent.size()) + " callers, " + std::to_string(concurrent_calls) +
             (concurrent_calls == 1 ? " call, " : " calls, ") + std::to_string(concurrent_service_calls) +
             " requests" + (shared ? "" : " (wrong values)"));
  std::printf("%s\n", failures == 0 ? "decorators behaved" : "FAILED");
  return failures == 0 ? 0 : 1;
}

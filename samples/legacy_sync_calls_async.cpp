// Synchronous "legacy" code calling an asynchronous service through
// greenback::await_.
//
// render() is an old-style template expander: plain synchronous code that
// asks a std::function callback for the value of every ${name} placeholder.
// The values live in a service whose API is asio::awaitable coroutines. The
// callback bridges the two with greenback::await_: it blocks only the task
// that calls it (the fiber parks while the coroutine runs on the runtime's
// io_context), so several documents render concurrently, each in its own
// task, without threads and without rewriting render() as a coroutine.
#include <weft/greenback/greenback.hpp>
#include <weft/weft.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// --- legacy code: knows nothing about fibers or coroutines ---------------------------

using lookup_fn = std::function<std::string(const std::string&)>;

// Expands every ${name} in `text` with lookup(name).
std::string render(const std::string& text, const lookup_fn& lookup) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t open = text.find("${", pos);
    if (open == std::string::npos) {
      out.append(text, pos, std::string::npos);
      return out;
    }
    const std::size_t close = text.find('}', open);
    if (close == std::string::npos) throw std::invalid_argument("unterminated placeholder in: " + text);
    out.append(text, pos, open - pos);
    out += lookup(text.substr(open + 2, close - open - 2));
    pos = close + 1;
  }
}

// --- the asynchronous service: an asio::awaitable API -------------------------------

class directory_service {
 public:
  /// The value of `key`, after a little network-like latency.
  /// @throws std::out_of_range for an unknown key.
  boost::asio::awaitable<std::string> fetch(std::string key) {
    boost::asio::steady_timer latency(co_await boost::asio::this_coro::executor, 2ms);
    co_await latency.async_wait(boost::asio::use_awaitable);
    ++requests_;
    auto it = data_.find(key);
    if (it == data_.end()) throw std::out_of_range("no such key: " + key);
    co_return it->second;
  }
  int requests() const { return requests_; }

 private:
  std::map<std::string, std::string> data_{
      {"user", "ada"}, {"host", "weft.example"}, {"port", "8080"}, {"greeting", "hello"}, {"plan", "free"}};
  int requests_ = 0;
};

struct document {
  std::string text;
  std::string expected;
  std::string result;
};

}  // namespace

int main() {
  std::vector<document> documents = {
      {"${greeting}, ${user}!", "hello, ada!", ""},
      {"connect to ${host}:${port}", "connect to weft.example:8080", ""},
      {"${user} is on the ${plan} plan", "ada is on the free plan", ""},
      {"no placeholders here", "no placeholders here", ""},
  };
  std::string missing_error;
  int requests = 0;

  weft::run([&] {
    directory_service service;
    // The bridge: a synchronous callback that waits for a coroutine.
    const lookup_fn lookup = [&service](const std::string& key) { return greenback::await_(service.fetch(key)); };

    weft::open_task_group([&](weft::task_group& tg) {
      for (document& doc : documents) tg.start_soon([&doc, &lookup] { doc.result = render(doc.text, lookup); });
    });

    // The service's exceptions reach the legacy code's caller unchanged.
    try {
      render("${user} at ${nowhere}", lookup);
    } catch (const std::out_of_range& e) {
      missing_error = e.what();
    }
    requests = service.requests();
  });

  int failures = 0;
  for (const document& doc : documents) {
    const bool ok = doc.result == doc.expected;
    failures += ok ? 0 : 1;
    std::printf("%-36s -> %-32s %s\n", doc.text.c_str(), doc.result.c_str(), ok ? "ok" : "MISMATCH");
  }
  const bool error_ok = missing_error == "no such key: nowhere";
  failures += error_ok ? 0 : 1;
  std::printf("unknown key: %s (%s)\n", missing_error.c_str(), error_ok ? "ok" : "MISMATCH");
  const bool requests_ok = requests == 8;  // 6 lookups in the documents, 2 in the failing render
  failures += requests_ok ? 0 : 1;
  std::printf("service requests: %d (%s)\n", requests, requests_ok ? "ok" : "MISMATCH");
  std::printf("%s\n", failures == 0 ? "all documents rendered" : "FAILED");
  return failures == 0 ? 0 : 1;
}

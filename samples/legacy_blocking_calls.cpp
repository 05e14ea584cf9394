// A server whose handler calls a blocking legacy function, with a deadline.
//
//   legacy_blocking_calls [--port N]    serve until SIGINT/SIGTERM
//   legacy_blocking_calls --self-test   serve, run clients, stop with SIGTERM
//
// The protocol: one key per line; the answer is one line, the key's value
// or "error: ...". The values come from `legacy_lookup`, a synchronous
// function of an old library (think of a blocking database driver): it
// blocks its thread, and it cannot be interrupted. Calling it on the
// runtime's thread would stop every other connection, so each handler runs
// it through weft::run_in_thread, inside a deadline:
//  - the task parks, the runtime serves the other connections meanwhile;
//  - with abandon_on_cancel, a call that misses the deadline is left to
//    finish on its worker thread (its result is dropped) and the client
//    gets "error: timeout" at once;
//  - the capacity limiter bounds how many blocking calls run at once
//    (here 4; a client beyond that waits for a token, under the same
//    deadline).
#include <weft/net.hpp>
#include <weft/use_fiber.hpp>
#include <weft/weft.hpp>

#include <boost/asio/signal_set.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

using namespace std::chrono_literals;

namespace {

// --- the legacy library: synchronous, blocking, not ours to change ---------
// (Its state is never destroyed: a call that missed its deadline may still
// be running on a worker thread when the program exits.)
struct legacy_table {
  std::mutex mutex;
  std::map<std::string, std::string> rows = {{"alpha", "1"}, {"beta", "2"}, {"slow", "3"}};
};
legacy_table& table = *new legacy_table;

std::string legacy_lookup(const std::string& key) {
  std::this_thread::sleep_for(key == "slow" ? 2s : 5ms);  // a disk, a network, a lock held elsewhere
  std::lock_guard<std::mutex> lock(table.mutex);
  auto it = table.rows.find(key);
  if (it == table.rows.end()) throw std::out_of_range("no such key: " + key);
  return it->second;
}
// ---------------------------------------------------------------------------

constexpr auto deadline = 250ms;

// One answer, never longer than `deadline` to come.
std::string answer(const std::string& key, weft::capacity_limiter& limiter) {
  std::optional<std::string> value;
  try {
    auto scope = weft::move_on_after(deadline);
    scope.run([&] {
      value = weft::run_in_thread({.abandon_on_cancel = true, .limiter = &limiter}, legacy_lookup, key);
    });
  } catch (const std::out_of_range& e) {
    return std::string("error: ") + e.what();
  }
  return value ? *value : "error: timeout";
}

void serve_connection(weft::net::stream_transport& conn, weft::capacity_limiter& limiter) {
  try {
    std::string pending;
    char buffer[1024];
    for (;;) {
      const std::size_t n = conn.recv_into(std::span<char>(buffer));
      if (n == 0) return;
      pending.append(buffer, n);
      for (std::size_t eol; (eol = pending.find('\n')) != std::string::npos;) {
        const std::string key = pending.substr(0, eol);
        pending.erase(0, eol + 1);
        conn.send_all(answer(key, limiter) + "\n");
      }
      if (pending.size() > 4096) {
        conn.send_all("error: line too long\n");
        return;
      }
    }
  } catch (const std::system_error& e) {  // a client that resets ends its own connection only
    std::fprintf(stderr, "connection ended: %s\n", e.what());
  }
}

// A client: sends the keys, one line each, and returns the answers.
std::string ask(std::uint16_t port, const std::string& keys) {
  auto conn = weft::net::create_tcp_connection("127.0.0.1", port);
  conn.send_all(keys);
  conn.send_eof();
  std::string back;
  for (std::string chunk; !(chunk = conn.recv(4096)).empty();) back += chunk;
  return back;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  bool self_test = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--port") && i + 1 < argc) port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--self-test")) self_test = true;
    else {
      std::fprintf(stderr, "usage: %s [--port N] [--self-test]\n", argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  bool ok = true;
  weft::run([&] {
    weft::capacity_limiter limiter(4);
    auto listeners = weft::net::create_tcp_listeners("127.0.0.1", port);
    const std::uint16_t bound = listeners.front().local_address().port();
    std::printf("legacy lookup server: %s\n", listeners.front().local_address().to_string().c_str());

    weft::open_task_group([&](weft::task_group& server) {
      server.start_soon(weft::task_options{"listener"}, [&] {
        try {
          listeners.front().serve([&](weft::net::stream_transport& c) { serve_connection(c, limiter); }, server);
        } catch (const std::system_error&) {  // listener closed
        }
      });
      server.start_soon(weft::task_options{"shutdown on SIGINT/SIGTERM"}, [&] {
        boost::asio::signal_set signals(weft::lowlevel::io_context(), SIGINT, SIGTERM);
        signals.async_wait(weft::use_fiber);
        server.cancel();
      });
      if (self_test) {
        server.start_soon(weft::task_options{"self-test clients"}, [&] {
          const auto start = std::chrono::steady_clock::now();
          std::string fast, slow;
          weft::open_task_group([&](weft::task_group& clients) {
            clients.start_soon([&] { slow = ask(bound, "slow\nalpha\n"); });
            clients.start_soon([&] { fast = ask(bound, "alpha\nbeta\nmissing\n"); });
          });
          const auto took = std::chrono::steady_clock::now() - start;
          std::printf("fast client: %s", fast.c_str());
          std::printf("slow client: %s", slow.c_str());
          ok = fast == "1\n2\nerror: no such key: missing\n" && slow == "error: timeout\n1\n" && took < 1500ms;
          std::printf("answered in %lld ms while a call blocked for 2 s: %s\n",
                      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
                      ok ? "ok" : "WRONG");
          ::kill(::getpid(), SIGTERM);
          weft::sleep_forever();  // cancelled by the shutdown
        });
      }
    });
  });
  std::printf("stopped cleanly\n");
  return ok ? 0 : 1;
}

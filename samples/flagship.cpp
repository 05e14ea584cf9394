// weft's flagship sample: an echo server whose connection handler is plain
// synchronous "legacy" code, a few clients, and a summary.
//
// Each connection runs in its own task (a fiber), so the handler below is
// ordinary blocking code: a line reader and a loop. A per-connection idle
// timeout is a cancel scope; the clients run concurrently in a task group; at
// the end the server shuts down (its listener closes; connections still open
// get a grace, then are cancelled). Nothing here uses a callback.
//
//   flagship [--port N]   (default: a free port)
#include <weft/net.hpp>
#include <weft/weft.hpp>

#include <chrono>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// --- "legacy" synchronous code: knows nothing about fibers or coroutines ---

// Reads '\n'-terminated lines from a byte source.
class line_reader {
 public:
  explicit line_reader(weft::net::stream_transport& t, std::function<void()> on_data = {})
      : t_(t), on_data_(std::move(on_data)) {}
  // Returns false at end of stream.
  bool read_line(std::string& line) {
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return true;
      }
      std::string chunk = t_.recv(4096);  // blocks this task only
      if (chunk.empty()) return false;
      if (on_data_) on_data_();
      buffer_ += chunk;
    }
  }

 private:
  weft::net::stream_transport& t_;
  std::function<void()> on_data_;
  std::string buffer_;
};

// The protocol: echo each line back, upper-cased; "quit" ends the session.
int legacy_session(line_reader& in, weft::net::stream_transport& out) {
  int lines = 0;
  std::string line;
  while (in.read_line(line)) {
    if (line == "quit") break;
    for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out.send_all(line + "\n");
    ++lines;
  }
  return lines;
}

struct server_stats {
  int connections = 0;
  int lines = 0;
  int idle_timeouts = 0;
};

// One task per connection: the legacy session under an idle timeout, a
// cancel scope whose deadline moves forward whenever data arrives.
void handle_connection(weft::net::stream_transport& conn, server_stats& stats) {
  constexpr auto idle_limit = 100ms;
  ++stats.connections;
  auto idle = weft::move_on_after(idle_limit);
  line_reader in(conn, [&] { idle.reschedule(weft::current_time() + idle_limit); });
  idle.run([&] { stats.lines += legacy_session(in, conn); });
  if (idle.cancelled_caught()) {
    ++stats.idle_timeouts;
    conn.send_all("bye: idle\n");
  }
}

// A client: sends its lines, checks every echo.
int run_client(std::uint16_t port, const std::vector<std::string>& lines) {
  auto conn = weft::net::create_tcp_connection("localhost", port);
  line_reader in(conn);
  int ok = 0;
  for (const auto& l : lines) {
    conn.send_all(l + "\n");
    std::string echo;
    if (!in.read_line(echo)) throw std::runtime_error("server closed the connection early");
    std::string expected = l;
    for (char& c : expected) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (echo == expected) ++ok;
  }
  conn.send_all("quit\n");
  conn.aclose();
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int listen_port = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--port") && i + 1 < argc) {
      listen_port = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--port N]\n", argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  server_stats stats;
  int echoed = 0, expected = 0;
  std::string idle_goodbye;
  weft::run([&] {
    weft::net::stream_server server(weft::net::create_tcp_listeners("127.0.0.1", listen_port));
    const std::uint16_t port = server.local_addresses().front().port();
    std::printf("echo server on %s\n", server.local_addresses().front().to_string().c_str());

    weft::open_task_group([&](weft::task_group& tasks) {
      // One task per connection; a handler's error ends its connection only.
      tasks.start_soon([&] { server.serve([&](weft::net::stream_transport& c) { handle_connection(c, stats); }); });

      // Clients, concurrently: each gathers its own result.
      const std::vector<std::vector<std::string>> scripts = {
          {"hello", "fibers"}, {"structured", "concurrency", "on", "asio"}, {"no", "callbacks"}};
      for (const auto& s : scripts) expected += static_cast<int>(s.size());
      auto [a, b, c] = weft::gather([&] { return run_client(port, scripts[0]); },
                                    [&] { return run_client(port, scripts[1]); },
                                    [&] { return run_client(port, scripts[2]); });
      echoed = a + b + c;

      // A client that connects and then says nothing: the idle timeout ends it.
      auto silent = weft::net::create_tcp_connection("127.0.0.1", port);
      idle_goodbye = silent.recv(100);

      // Shut down: serve() returns once the connections have ended.
      server.shutdown(1s);
    });
  });
  std::printf("connections: %d, lines echoed: %d of %d, idle timeouts: %d (client got \"%s\")\n", stats.connections,
              echoed, expected, stats.idle_timeouts,
              idle_goodbye.substr(0, idle_goodbye.find('\n')).c_str());
  const bool ok = echoed == expected && stats.connections == 4 && stats.idle_timeouts == 1 &&
                  idle_goodbye == "bye: idle\n";
  std::printf("%s\n", ok ? "all as expected" : "UNEXPECTED");
  return ok ? 0 : 1;
}

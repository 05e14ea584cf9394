// A TCP and Unix-socket echo server on weft::net::stream_server, with a client.
//
//   echo_server [--port N] [--unix PATH] [--idle SECONDS] [--grace SECONDS]
//               [--max-connections N]
//       serves until SIGINT/SIGTERM, then drains: no new connection is
//       accepted, connections in the middle of a transfer get --grace
//       seconds (default 10) to finish, the rest are closed. SIGUSR1 prints
//       every task (stderr).
//   echo_server --self-test
//       serves, runs clients against both sockets, then stops with SIGTERM.
//
// One task per connection, written as straight-line code. What the server
// layer adds to it: a client that resets or leaves without reading its echo
// ends its own connection only; a connection that sends nothing for --idle
// seconds (default 2) while the server waits to read is closed (the clock
// starts when the handler reads, not at accept); TCP_NODELAY is on; the
// listen backlog is the system's maximum.
#include <weft/lowlevel/dump.hpp>
#include <weft/net.hpp>
#include <weft/use_fiber.hpp>
#include <weft/weft.hpp>

#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

void echo_connection(weft::net::stream_transport& conn) {
  char buffer[65536];
  for (;;) {
    const std::size_t n = conn.recv_into(std::span<char>(buffer));  // the idle timeout applies here
    if (n == 0) return;  // the client closed its side; the server closes ours
    conn.send_all(std::string_view(buffer, n));
  }
}

// Echoes `message` through a fresh connection; returns what came back.
std::string round_trip(weft::net::stream_transport conn, const std::string& message) {
  conn.send_all(message);
  conn.send_eof();
  std::string back;
  for (std::string chunk; !(chunk = conn.recv(4096)).empty();) back += chunk;
  conn.aclose();
  return back;
}

double seconds_arg(const char* s, const char* name) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(v > 0)) {
    std::fprintf(stderr, "%s wants a positive number of seconds, not '%s'\n", name, s);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string unix_path = "/tmp/weft-echo-" + std::to_string(::getpid()) + ".sock";
  bool self_test = false;
  weft::net::stream_server_options options;
  options.idle_timeout = 2s;
  options.shutdown_signals = {SIGINT, SIGTERM};
  for (int i = 1; i < argc; ++i) {
    const bool more = i + 1 < argc;
    if (!std::strcmp(argv[i], "--port") && more) port = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--unix") && more) unix_path = argv[++i];
    else if (!std::strcmp(argv[i], "--idle") && more) options.idle_timeout = weft::duration(seconds_arg(argv[++i], "--idle"));
    else if (!std::strcmp(argv[i], "--grace") && more) options.shutdown_grace = weft::duration(seconds_arg(argv[++i], "--grace"));
    else if (!std::strcmp(argv[i], "--max-connections") && more) options.max_connections = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--self-test")) self_test = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--port N] [--unix PATH] [--idle SECONDS] [--grace SECONDS] [--max-connections N] "
                   "[--self-test]\n",
                   argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line reaches a pipe at once
  ::unlink(unix_path.c_str());
  weft::net::server_stats stats;
  int dumps = 0;
  bool ok = true;
  bool idle_closed = false;
  try {
    weft::run([&] {
      // main's task appears in dumps as "main::{lambda()#1}".
      auto listeners = weft::net::create_tcp_listeners("127.0.0.1", port);
      listeners.push_back(weft::net::create_unix_stream_listener(unix_path, {}, 0600));
      const std::uint16_t tcp_port = listeners.front().local_address().port();
      weft::net::stream_server server(std::move(listeners), options);
      std::printf("echo server: tcp 127.0.0.1:%u, unix %s\n", unsigned{tcp_port}, unix_path.c_str());

      weft::event self_test_done;
      weft::open_task_group([&](weft::task_group& tasks) {
        // SIGUSR1: print every task and what it waits for (a stuck server
        // tells where it is stuck).
        tasks.start_soon(weft::task_options{"task dump on SIGUSR1"}, [&] {
          boost::asio::signal_set usr1(weft::lowlevel::io_context(), SIGUSR1);
          for (;;) {
            usr1.async_wait(weft::use_fiber);
            std::ostringstream dump;
            weft::lowlevel::dump_tasks(dump);
            std::cerr << dump.str() << std::flush;
            if (dump.str().find("parked") != std::string::npos) ++dumps;
          }
        });

        if (self_test) {
          tasks.start_soon(weft::task_options{"self-test clients"}, [&] {
            const std::string big(100000, 'x');
            const std::string a = round_trip(weft::net::create_tcp_connection("127.0.0.1", tcp_port), "hello over tcp");
            const std::string b = round_trip(weft::net::create_unix_stream_connection(unix_path), big);
            ok = a == "hello over tcp" && b == big;
            std::printf("tcp echo: %s, unix echo of %zu bytes: %s\n", a == "hello over tcp" ? "ok" : "WRONG",
                        big.size(), b == big ? "ok" : "WRONG");
            // A connection left open: shutdown waits for it only until its
            // idle timeout closes it.
            auto idle = weft::net::create_tcp_connection("127.0.0.1", tcp_port);
            weft::sleep(10ms);
            ::kill(::getpid(), SIGUSR1);  // a task dump while a connection waits
            weft::sleep(10ms);
            ::kill(::getpid(), SIGTERM);
            server.wait_shutdown();
            idle_closed = idle.recv(1).empty();  // closed by the server
            self_test_done.set();
          });
        }

        server.serve(echo_connection);  // returns once a signal's shutdown has drained
        stats = server.stats();
        if (self_test) self_test_done.wait();
        tasks.cancel();
      });
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo server failed: %s\n", e.what());
    ::unlink(unix_path.c_str());
    return 1;
  }
  ::unlink(unix_path.c_str());
  std::printf("served %llu connections (%llu ended by their client, %llu by errors, %llu cut at shutdown); "
              "stopped cleanly\n",
              static_cast<unsigned long long>(stats.accepted), static_cast<unsigned long long>(stats.peer_errors),
              static_cast<unsigned long long>(stats.handler_errors), static_cast<unsigned long long>(stats.cancelled));
  return ok && (!self_test || (stats.accepted == 3 && stats.peer_errors == 1 && idle_closed && dumps == 1)) ? 0 : 1;
}

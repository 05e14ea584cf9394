// A TCP and Unix-socket echo server, with a client.
//
//   echo_server [--port N] [--unix PATH]   serve until SIGINT/SIGTERM;
//                                           SIGUSR1 prints every task (stderr)
//   echo_server --self-test                 serve, run clients against both
//                                           sockets, then stop with SIGTERM
//
// One task per connection; a per-connection idle timeout (a cancel scope
// whose deadline moves on every read); graceful shutdown: the signal cancels
// the server's task group, which closes the listeners and drains the
// connections (each handler's cancel point throws, its transport closes).
#include <weft/lowlevel/dump.hpp>
#include <weft/net.hpp>
#include <weft/use_fiber.hpp>
#include <weft/weft.hpp>

#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <system_error>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

constexpr auto idle_limit = 2s;

void echo_connection(weft::net::stream_transport& conn, int& served) {
  ++served;
  auto idle = weft::move_on_after(idle_limit);
  try {
    idle.run([&] {
      char buffer[4096];
      for (;;) {
        const std::size_t n = conn.recv_into(std::span<char>(buffer));
        if (n == 0) return;  // the client closed its side
        idle.reschedule(weft::current_time() + idle_limit);
        conn.send_all(std::string_view(buffer, n));
      }
    });
  } catch (const std::system_error& e) {
    // A client that resets (or leaves without reading its echo) ends its own
    // connection, not the server: serve() runs handlers in the server's task
    // group, where an escaping error would cancel everything.
    std::fprintf(stderr, "connection ended: %s\n", e.what());
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

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  std::string unix_path = "/tmp/weft-echo-" + std::to_string(::getpid()) + ".sock";
  bool self_test = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--port") && i + 1 < argc) port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--unix") && i + 1 < argc) unix_path = argv[++i];
    else if (!std::strcmp(argv[i], "--self-test")) self_test = true;
    else {
      std::fprintf(stderr, "usage: %s [--port N] [--unix PATH] [--self-test]\n", argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // the port line reaches a pipe at once
  ::unlink(unix_path.c_str());
  int served = 0;
  int dumps = 0;
  bool ok = true;
  weft::run([&] {
    // main's task appears in dumps as "main::{lambda()#1}".
    auto tcp = weft::net::create_tcp_listeners("127.0.0.1", port);
    auto local = weft::net::create_unix_stream_listener(unix_path, 128, 0600);
    const std::uint16_t tcp_port = tcp.front().local_address().port();
    std::printf("echo server: tcp %s, unix %s\n", tcp.front().local_address().to_string().c_str(), unix_path.c_str());

    weft::open_task_group([&](weft::task_group& server) {
      auto serve = [&](weft::net::stream_listener& l, const char* name) {
        server.start_soon(weft::task_options{name}, [&] {
          try {
            l.serve([&](weft::net::stream_transport& c) { echo_connection(c, served); }, server);
          } catch (const std::system_error&) {  // listener closed
          }
        });
      };
      serve(tcp.front(), "tcp listener");
      serve(local, "unix listener");

      // Graceful shutdown on SIGINT/SIGTERM: cancel the whole server.
      server.start_soon(weft::task_options{"shutdown on SIGINT/SIGTERM"}, [&] {
        boost::asio::signal_set signals(weft::lowlevel::io_context(), SIGINT, SIGTERM);
        const int signo = signals.async_wait(weft::use_fiber);
        std::printf("signal %d: shutting down\n", signo);
        server.cancel();
      });

      // SIGUSR1: print every task and what it waits for (a stuck server
      // tells where it is stuck).
      server.start_soon(weft::task_options{"task dump on SIGUSR1"}, [&] {
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
        server.start_soon(weft::task_options{"self-test clients"}, [&] {
          const std::string big(100000, 'x');
          const std::string a = round_trip(weft::net::create_tcp_connection("127.0.0.1", tcp_port), "hello over tcp");
          const std::string b = round_trip(weft::net::create_unix_stream_connection(unix_path), big);
          ok = a == "hello over tcp" && b == big;
          std::printf("tcp echo: %s, unix echo of %zu bytes: %s\n", a == "hello over tcp" ? "ok" : "WRONG", big.size(),
                      b == big ? "ok" : "WRONG");
          // A connection left open: shutdown must not wait for it.
          auto idle = weft::net::create_tcp_connection("127.0.0.1", tcp_port);
          weft::sleep(10ms);
          ::kill(::getpid(), SIGUSR1);  // a task dump while a connection waits
          weft::sleep(10ms);
          ::kill(::getpid(), SIGTERM);
          weft::sleep_forever();  // cancelled by the shutdown
        });
      }
    });
  });
  ::unlink(unix_path.c_str());
  std::printf("served %d connections; stopped cleanly\n", served);
  return ok && (!self_test || (served == 3 && dumps == 1)) ? 0 : 1;
}

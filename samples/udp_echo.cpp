// A UDP echo server on weft::net::datagram_server: one task per datagram.
//
//   udp_echo [--port N] [--delay-ms N] [--max-in-flight N]
//       serves on 127.0.0.1 until SIGINT/SIGTERM, then lets the handlers
//       running finish (up to 10 s). --delay-ms makes every handler slow;
//       --max-in-flight bounds the handlers running at once (default 1024):
//       while that many run the server stops reading, so a flood fills the
//       socket buffer and the kernel drops the excess instead of the server
//       growing without bound. At exit it prints what it served and what
//       was dropped.
//   udp_echo --self-test
//       serves, sends 5 datagrams from a client and checks the echoes.
#include <weft/net.hpp>
#include <weft/weft.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  int port = 0;
  long delay_ms = 0;
  bool self_test = false;
  weft::net::datagram_server_options options;
  options.shutdown_signals = {SIGINT, SIGTERM};
  for (int i = 1; i < argc; ++i) {
    const bool more = i + 1 < argc;
    if (!std::strcmp(argv[i], "--port") && more) port = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--delay-ms") && more) delay_ms = std::atol(argv[++i]);
    else if (!std::strcmp(argv[i], "--max-in-flight") && more) options.max_in_flight = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--self-test")) self_test = true;
    else {
      std::fprintf(stderr, "usage: %s [--port N] [--delay-ms N] [--max-in-flight N] [--self-test]\n", argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line reaches a pipe at once
  int answered = 0;
  weft::net::server_stats stats;
  std::uint64_t dropped = 0;
  try {
    weft::run([&] {
      weft::net::datagram_server server(weft::net::create_udp_listeners("127.0.0.1", port), options);
      const auto address = server.local_addresses().front();
      std::printf("udp echo server on %s\n", address.to_string().c_str());
      weft::open_task_group([&](weft::task_group& tg) {
        if (self_test) {
          tg.start_soon([&] {
            auto client = weft::net::create_udp_endpoint(std::pair<std::string, std::uint16_t>{"127.0.0.1", address.port()});
            for (int i = 0; i < 5; ++i) {
              const std::string msg = "datagram " + std::to_string(i);
              client.send(msg);
              // UDP may drop: wait a little, and say so if nothing comes back.
              auto wait = weft::move_on_after(1s);
              wait.run([&] {
                if (client.recv() == "echo: " + msg) ++answered;
              });
            }
            server.shutdown(1s);
          });
        }
        server.serve([&](std::string datagram, const weft::net::endpoint& from, weft::net::datagram_listener& l) {
          if (delay_ms > 0) weft::sleep(std::chrono::milliseconds(delay_ms));
          l.send_to("echo: " + datagram, from);
        });
        stats = server.stats();
        dropped = server.dropped();
      });
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "udp echo server failed: %s\n", e.what());
    return 1;
  }
  std::printf("received %llu datagrams, answered %llu, dropped %llu by the kernel; stopped cleanly\n",
              static_cast<unsigned long long>(stats.accepted), static_cast<unsigned long long>(stats.completed),
              static_cast<unsigned long long>(dropped));
  if (self_test) std::printf("%d of 5 datagrams echoed\n", answered);
  return !self_test || answered == 5 ? 0 : 1;
}

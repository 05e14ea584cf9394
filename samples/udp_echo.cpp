// A UDP echo server and client on loopback: one task per datagram.
#include <weft/net.hpp>
#include <weft/weft.hpp>

#include <cstdio>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

int main() {
  int answered = 0;
  weft::run([&] {
    auto listeners = weft::net::create_udp_listeners("127.0.0.1", 0);
    auto& server = listeners.front();
    const std::uint16_t port = server.local_address().port();
    std::printf("udp echo server on %s\n", server.local_address().to_string().c_str());
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        try {
          server.serve(
              [](std::string datagram, const weft::net::endpoint& from, weft::net::datagram_listener& l) {
                l.send_to("echo: " + datagram, from);
              },
              tg);
        } catch (const std::system_error&) {  // closed
        }
      });
      auto client = weft::net::create_udp_endpoint(std::pair<std::string, std::uint16_t>{"127.0.0.1", port});
      for (int i = 0; i < 5; ++i) {
        const std::string msg = "datagram " + std::to_string(i);
        client.send(msg);
        // UDP may drop: wait a little, and say so if nothing comes back.
        auto wait = weft::move_on_after(1s);
        wait.run([&] {
          if (client.recv() == "echo: " + msg) ++answered;
        });
      }
      server.aclose();
    });
  });
  std::printf("%d of 5 datagrams echoed\n", answered);
  return answered == 5 ? 0 : 1;
}

// Thread-per-core echo server: one weft runtime per core, every one
// listening on the same port with SO_REUSEPORT; the kernel spreads the
// connections. Runtimes share nothing; a post to each io_context shuts its
// server down.
#include <weft/lowlevel/park.hpp>
#include <weft/net.hpp>
#include <weft/weft.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

int main() {
  const unsigned cores = std::max(2u, std::thread::hardware_concurrency());
  constexpr int clients = 200;
  std::atomic<int> echoed{0};
  std::vector<int> per_core(cores, 0);
  std::vector<boost::asio::io_context*> loops(cores, nullptr);
  std::vector<weft::net::stream_server*> servers(cores, nullptr);
  std::promise<std::uint16_t> port_promise;
  std::shared_future<std::uint16_t> port = port_promise.get_future().share();
  std::atomic<unsigned> ready{0};

  std::vector<std::thread> threads;
  for (unsigned core = 0; core < cores; ++core) {
    threads.emplace_back([&, core] {
      weft::run([&] {
        // Core 0 picks the port; the others bind the same one.
        const std::uint16_t p = core == 0 ? 0 : port.get();
        weft::net::stream_server server(weft::net::create_tcp_listeners("127.0.0.1", p, {}, /*reuse_port=*/true));
        if (core == 0) port_promise.set_value(server.local_addresses().front().port());
        loops[core] = &weft::lowlevel::io_context();
        servers[core] = &server;
        ++ready;
        server.serve([&](weft::net::stream_transport& c) {
          ++per_core[core];
          for (std::string d; !(d = c.recv(1024)).empty();) c.send_all(d);
        });
      });
    });
  }
  while (ready < cores) std::this_thread::yield();

  weft::run([&] {
    std::vector<std::function<void()>> jobs;
    for (int i = 0; i < clients; ++i)
      jobs.push_back([&, i] {
        auto c = weft::net::create_tcp_connection("127.0.0.1", port.get());
        const std::string msg = "client " + std::to_string(i);
        c.send_all(msg);
        c.send_eof();
        std::string back;
        for (std::string d; !(d = c.recv(1024)).empty();) back += d;
        c.aclose();
        if (back == msg) ++echoed;
      });
    weft::gather(jobs);
  });

  // Stop every runtime from its own thread: shut its server down there.
  for (unsigned core = 0; core < cores; ++core)
    boost::asio::post(*loops[core], [s = servers[core]] { s->shutdown(std::chrono::seconds(1)); });
  for (auto& t : threads) t.join();

  int total = 0;
  for (unsigned core = 0; core < cores; ++core) {
    std::printf("core %u served %d connections\n", core, per_core[core]);
    total += per_core[core];
  }
  std::printf("%d of %d echoed, %d connections served by %u runtimes\n", echoed.load(), clients, total, cores);
  return echoed == clients && total == clients ? 0 : 1;
}

#include "net/net_support.hpp"

#include <weft/lowlevel/dump.hpp>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace weft_net_test;
namespace ip = boost::asio::ip;

namespace {

std::vector<int> families_of(std::vector<net::stream_listener>& ls) {
  std::vector<int> out;
  for (auto& l : ls) out.push_back(l.local_address().family());
  std::sort(out.begin(), out.end());
  return out;
}

// Connects to host:port, sends msg, returns everything the server sends back.
std::string exchange(const std::string& host, std::uint16_t port, const std::string& msg) {
  auto c = net::create_tcp_connection(host, port);
  c.send_all(msg);
  c.send_eof();
  return recv_all(c);
}

// A handler that echoes until end of stream.
void echo(net::stream_transport& t) {
  for (;;) {
    std::string s = t.recv(4096);
    if (s.empty()) return;
    t.send_all(s);
  }
}

}  // namespace

// --- creating TCP listeners --------------------------------------------------------

TEST_CASE("a TCP listener on one address: port 0 picks a free port; SO_REUSEADDR on, SO_REUSEPORT off") {
  for (const std::string host : {"127.0.0.1", "::1"}) {
    CAPTURE(host);
    run_real([&] {
      auto ls = net::create_tcp_listeners(host, 0);
      REQUIRE(ls.size() == 1);
      const auto ep = ls[0].local_address();
      CHECK(ep.address() == ip::make_address(host));
      CHECK(ep.port() != 0);
      const int fd = ls[0].acceptor().native_handle();
      CHECK(sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1);
      CHECK(sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR) != 0);
      CHECK(sockopt_int(fd, SOL_SOCKET, SO_REUSEPORT) == 0);
      if (host == "::1") CHECK(sockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY) == 1);
      CHECK_FALSE(ls[0].is_closing());
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] { ls[0].serve(echo, tg); });
        CHECK(exchange(host, ep.port(), "hello") == "hello");
        tg.cancel();
      });
    });
  }
}

TEST_CASE("TCP listeners on all interfaces: an IPv6 (V6ONLY) and an IPv4 socket on one port") {
  run_real([] {
    for (int variant = 0; variant < 2; ++variant) {
      CAPTURE(variant);
      auto ls = variant == 0 ? net::create_tcp_listeners("", 0)
                             : net::create_tcp_listeners(std::vector<std::string>{}, 0);
      REQUIRE(ls.size() == 2);
      CHECK(families_of(ls) == std::vector<int>{AF_INET, AF_INET6});
      const std::uint16_t port = ls[0].local_address().port();
      CHECK(port != 0);
      CHECK(ls[1].local_address().port() == port);
      for (auto& l : ls) {
        CHECK(l.local_address().address().is_unspecified());
        if (l.local_address().family() == AF_INET6)
          CHECK(sockopt_int(l.acceptor().native_handle(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
      }
      // Each family reaches its own socket over loopback.
      weft::open_task_group([&](weft::task_group& tg) {
        for (auto& l : ls)
          tg.start_soon([&] {
            l.serve(
                [family = l.local_address().family()](net::stream_transport& t) {
                  t.send_all(family == AF_INET6 ? "six" : "four");
                },
                tg);
          });
        CHECK(exchange("127.0.0.1", port, "") == "four");
        CHECK(exchange("::1", port, "") == "six");
        tg.cancel();
      });
    }
  });
}

TEST_CASE("TCP listeners on several hosts share one free port") {
  run_real([] {
    auto ls = net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1", "::1"}, 0);
    REQUIRE(ls.size() == 2);
    CHECK(ls[0].local_address() == net::endpoint(ip::make_address("127.0.0.1"), ls[0].local_address().port()));
    CHECK(ls[1].local_address() == net::endpoint(ip::make_address("::1"), ls[0].local_address().port()));
    auto three = net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1", "127.0.0.2", "::1"}, 0);
    REQUIRE(three.size() == 3);
    CHECK(three[1].local_address().address() == ip::make_address("127.0.0.2"));
    CHECK(three[1].local_address().port() == three[0].local_address().port());
    CHECK(three[2].local_address().port() == three[0].local_address().port());
  });
}

TEST_CASE("TCP listeners on a host name: one socket per address of the name") {
  run_real([] {
    std::set<std::string> addresses;
    for (const auto& i : net::getaddrinfo("localhost", "0", AF_UNSPEC, SOCK_STREAM))
      addresses.insert(i.address.address().to_string());
    auto ls = net::create_tcp_listeners("localhost", 0);
    CHECK(ls.size() == addresses.size());
    for (auto& l : ls) {
      CHECK(l.local_address().address().is_loopback());
      CHECK(l.local_address().port() == ls[0].local_address().port());
    }
  });
}

TEST_CASE("reuse_port sets SO_REUSEPORT and lets two listeners share a port; without it the bind fails") {
  run_real([] {
    auto first = net::create_tcp_listeners("127.0.0.1", 0, 16, true);
    REQUIRE(first.size() == 1);
    CHECK(sockopt_int(first[0].acceptor().native_handle(), SOL_SOCKET, SO_REUSEPORT) == 1);
    const std::uint16_t port = first[0].local_address().port();
    auto second = net::create_tcp_listeners("127.0.0.1", port, 16, true);
    REQUIRE(second.size() == 1);
    CHECK(second[0].local_address() == first[0].local_address());
    CHECK(error_of([&] { (void)net::create_tcp_listeners("127.0.0.1", port); }) == EADDRINUSE);
  });
}

TEST_CASE("a bind error closes every socket bound so far and is thrown as a bind_error with that one attempt") {
  run_real([] {
    // ::1 at the port is taken; 127.0.0.1 at the port is free and binds first.
    auto taken = net::create_tcp_listeners("::1", 0);
    const std::uint16_t port = taken[0].local_address().port();
    const std::size_t fds = open_fd_count();
    int error = 0;
    try {
      (void)net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1", "::1"}, port);
    } catch (const net::bind_error& e) {
      error = e.code().value();
      REQUIRE(e.attempts().size() == 1);
      CHECK(e.attempts()[0].address == net::endpoint(ip::make_address("::1"), port));
      CHECK(error_of(e.attempts()[0].exception) == EADDRINUSE);
      CHECK(std::string(e.what()).find("weft::net::create_tcp_listeners") != std::string::npos);
    }
    CHECK(error == EADDRINUSE);
    CHECK(open_fd_count() == fds);  // the 127.0.0.1 socket was closed again
    // ... and its port is free: binding it now succeeds.
    auto again = net::create_tcp_listeners("127.0.0.1", port);
    CHECK(again.size() == 1);
  });
}

TEST_CASE("several bind errors come out together in one bind_error, a std::system_error, every socket closed") {
  run_real([] {
    auto taken = net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1", "::1"}, 0);
    const std::uint16_t port = taken[0].local_address().port();
    const std::size_t fds = open_fd_count();
    try {
      (void)net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1", "127.0.0.2", "::1"}, port);
      FAIL("binding ports in use succeeded");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::error_code(EADDRINUSE, std::system_category()));
      const auto* be = dynamic_cast<const net::bind_error*>(&e);
      REQUIRE(be != nullptr);
      REQUIRE(be->attempts().size() == 2);
      CHECK(be->attempts()[0].address == net::endpoint(ip::make_address("127.0.0.1"), port));
      CHECK(be->attempts()[1].address == net::endpoint(ip::make_address("::1"), port));
      for (const auto& a : be->attempts()) CHECK(error_of(a.exception) == EADDRINUSE);
      const std::string what = e.what();
      CHECK(what.find(be->attempts()[0].address.to_string()) != std::string::npos);
      CHECK(what.find(be->attempts()[1].address.to_string()) != std::string::npos);
    }
    CHECK(open_fd_count() == fds);  // 127.0.0.2 was bound, then closed
    auto again = net::create_tcp_listeners("127.0.0.2", port);
    CHECK(again.size() == 1);
  });
}

TEST_CASE("a backlog below 1 is rejected") {
  temp_dir dir;
  run_real([&] {
    CHECK_THROWS_AS((void)net::create_tcp_listeners("127.0.0.1", 0, 0), std::invalid_argument);
    CHECK_THROWS_AS((void)net::create_tcp_listeners("127.0.0.1", 0, -5), std::invalid_argument);
    CHECK_THROWS_AS((void)net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1"}, 0, 0),
                    std::invalid_argument);
    CHECK_THROWS_AS((void)net::create_unix_stream_listener(dir.file("s"), 0), std::invalid_argument);
    CHECK_FALSE(std::filesystem::exists(dir.file("s")));
    CHECK(net::create_tcp_listeners("127.0.0.1", 0, 1).size() == 1);
  });
}

TEST_CASE("TCP and UDP listeners reject a port out of range, naming it") {
  run([] {
    const std::size_t fds = open_fd_count();
    for (const int port : {65536, 70000, -1}) {
      CAPTURE(port);
      check_invalid_argument([&] { (void)net::create_tcp_listeners("127.0.0.1", port); },
                             {"weft::net::create_tcp_listeners", std::to_string(port)});
      check_invalid_argument(
          [&] {
            (void)net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1", "::1"}, port);
          },
          {"weft::net::create_tcp_listeners", std::to_string(port)});
      check_invalid_argument([&] { (void)net::create_tcp_listeners("", port); },
                             {"weft::net::create_tcp_listeners", std::to_string(port)});
      check_invalid_argument([&] { (void)net::create_udp_listeners("127.0.0.1", port); },
                             {"weft::net::create_udp_listeners", std::to_string(port)});
    }
    CHECK(open_fd_count() == fds);
  });
}

TEST_CASE("listener argument errors name the function and the bad value; nothing is left behind") {
  temp_dir dir;
  run([&] {
    const std::size_t fds = open_fd_count();
    check_invalid_argument([] { (void)net::create_tcp_listeners("127.0.0.1", 0, 0); },
                           {"weft::net::create_tcp_listeners", "backlog", "0"});
    check_invalid_argument([] { (void)net::create_tcp_listeners("127.0.0.1", 0, -5); },
                           {"weft::net::create_tcp_listeners", "backlog", "-5"});
    check_invalid_argument([&] { (void)net::create_unix_stream_listener(dir.file("s"), -1); },
                           {"weft::net::create_unix_stream_listener", "backlog", "-1"});
    check_invalid_argument([&] { (void)net::create_unix_stream_listener(dir.file("s"), 16, 010000u); },
                           {"weft::net::create_unix_stream_listener", "mode", "010000"});
    check_invalid_argument([&] { (void)net::create_unix_datagram_listener(dir.file("d"), 0777777u); },
                           {"weft::net::create_unix_datagram_listener", "mode", "0777777"});
    CHECK(open_fd_count() == fds);
    CHECK(std::filesystem::is_empty(dir.path()));
  });
}

TEST_CASE("serve with an empty handler is rejected before it accepts anything") {
  run([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    auto us = net::create_udp_listeners("127.0.0.1", 0);
    weft::open_task_group([&](weft::task_group& tg) {
      check_invalid_argument([&] { ls[0].serve(net::stream_listener::handler(), tg); },
                             {"weft::net::stream_listener::serve", "handler"});
      check_invalid_argument([&] { us[0].serve(net::datagram_listener::handler(), tg); },
                             {"weft::net::datagram_listener::serve", "handler"});
    });
    // The listener is still free to serve.
    auto c = net::create_tcp_connection("127.0.0.1", ls[0].local_address().port());
    auto s = ls[0].accept();
    c.send_all("ok");
    CHECK(s.recv(10) == "ok");
  });
}

// --- Unix stream listeners ---------------------------------------------------------

TEST_CASE("a Unix stream listener gets the file mode asked for") {
  temp_dir dir;
  run_real([&] {
    for (const unsigned mode : {0600u, 0660u, 0777u}) {
      CAPTURE(mode);
      const std::string path = dir.file("mode" + std::to_string(mode));
      auto l = net::create_unix_stream_listener(path, 16, mode);
      struct stat st {};
      REQUIRE(::stat(path.c_str(), &st) == 0);
      CHECK(S_ISSOCK(st.st_mode));
      CHECK((st.st_mode & 07777) == mode);
      CHECK(l.local_address().path() == path);
    }
    const std::string plain = dir.file("plain");
    auto l = net::create_unix_stream_listener(plain);
    struct stat st {};
    REQUIRE(::stat(plain.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
  });
}

TEST_CASE("a Unix stream listener on an existing socket file fails with EADDRINUSE") {
  temp_dir dir;
  run_real([&] {
    const std::string path = dir.file("taken");
    auto first = net::create_unix_stream_listener(path);
    const std::size_t fds = open_fd_count();
    CHECK(error_of([&] { (void)net::create_unix_stream_listener(path); }) == EADDRINUSE);
    CHECK(open_fd_count() == fds);
  });
}

TEST_CASE("a listener that cannot be bound throws a bind_error naming the function and the address") {
  temp_dir dir;
  run([&] {
    const std::string path = dir.file("taken");
    auto first = net::create_unix_stream_listener(path);
    auto check_one = [](auto&& make, const char* function, const net::endpoint& address, int error) {
      try {
        make();
        FAIL("bound an address that cannot be bound");
      } catch (const net::bind_error& e) {
        CHECK(e.code() == std::error_code(error, std::system_category()));
        REQUIRE(e.attempts().size() == 1);
        CHECK(e.attempts()[0].address == address);
        const std::string what = e.what();
        CAPTURE(what);
        CHECK(what.find(function) != std::string::npos);
        CHECK(what.find(address.to_string()) != std::string::npos);
      }
    };
    check_one([&] { (void)net::create_unix_stream_listener(path); }, "weft::net::create_unix_stream_listener",
              net::endpoint::unix_path(path), EADDRINUSE);
    check_one([&] { (void)net::create_unix_datagram_listener(path); }, "weft::net::create_unix_datagram_listener",
              net::endpoint::unix_path(path), EADDRINUSE);
    // 192.0.2.1 (TEST-NET-1) is not an address of this host.
    check_one([&] { (void)net::create_tcp_listeners("192.0.2.1", 0); }, "weft::net::create_tcp_listeners",
              net::endpoint(ip::make_address("192.0.2.1"), 0), EADDRNOTAVAIL);
    check_one([&] { (void)net::create_udp_listeners("192.0.2.1", 0); }, "weft::net::create_udp_listeners",
              net::endpoint(ip::make_address("192.0.2.1"), 0), EADDRNOTAVAIL);
  });
}

TEST_CASE("a Unix stream listener serves connections; peers see each other's paths") {
  temp_dir dir;
  run_real([&] {
    const std::string path = dir.file("server");
    auto l = net::create_unix_stream_listener(path);
    std::vector<std::string> peers;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        l.serve(
            [&](net::stream_transport& t) {
              CHECK(t.family() == AF_UNIX);
              peers.push_back(t.peer_address().path());
              echo(t);
            },
            tg);
      });
      auto anonymous = net::create_unix_stream_connection(path);
      CHECK(anonymous.peer_address().path() == path);
      CHECK(anonymous.local_address().path().empty());
      anonymous.send_all("a");
      CHECK(anonymous.recv(10) == "a");
      auto named = net::create_unix_stream_connection(path, dir.file("client"));
      CHECK(named.local_address().path() == dir.file("client"));
      named.send_all("b");
      CHECK(named.recv(10) == "b");
      tg.cancel();
    });
    REQUIRE(peers.size() == 2);
    CHECK(peers[0].empty());
    CHECK(peers[1] == dir.file("client"));
  });
}

// --- serving -----------------------------------------------------------------------

TEST_CASE("serve runs each connection in its own task and closes it when the handler returns") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    const std::uint16_t port = ls[0].local_address().port();
    int concurrent = 0, max_concurrent = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        ls[0].serve(
            [&](net::stream_transport& t) {
              max_concurrent = std::max(max_concurrent, ++concurrent);
              const std::string name = t.recv(100);
              weft::sleep(10ms);  // the handlers overlap
              t.send_all("hello " + name);
              --concurrent;
              // returns without closing: serve closes the transport
            },
            tg);
      });
      weft::open_task_group([&](weft::task_group& clients) {
        for (int i = 0; i < 10; ++i)
          clients.start_soon([&, i] {
            auto c = net::create_tcp_connection("127.0.0.1", port);
            c.send_all("c" + std::to_string(i));
            CHECK(recv_all(c) == "hello c" + std::to_string(i));  // then end of stream
          });
      });
      tg.cancel();
    });
    CHECK(max_concurrent > 1);
  });
}

TEST_CASE("serving twice at once: the second serve and accept get busy_resource_error") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    auto& l = ls[0];
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { l.serve(echo, tg); });
      weft::testing::wait_all_tasks_blocked();
      CHECK_THROWS_AS(l.serve(echo, tg), weft::busy_resource_error);
      CHECK_THROWS_AS((void)l.accept(), weft::busy_resource_error);
      // The first serve was not disturbed.
      CHECK(exchange("127.0.0.1", l.local_address().port(), "still") == "still");
      tg.cancel();
    });
  });
}

TEST_CASE("two tasks accepting at once: the second gets busy_resource_error") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    auto& l = ls[0];
    std::optional<net::stream_transport> accepted, client;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { accepted.emplace(l.accept()); });
      weft::testing::wait_all_tasks_blocked();
      CHECK_THROWS_AS((void)l.accept(), weft::busy_resource_error);
      client.emplace(net::create_tcp_connection("127.0.0.1", l.local_address().port()));
      client->send_all("x");
    });
    REQUIRE(accepted.has_value());
    CHECK(accepted->recv(1) == "x");
  });
}

TEST_CASE("closing the listener ends serve with EBADF; connections already accepted keep working") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    auto& l = ls[0];
    const std::uint16_t port = l.local_address().port();
    int serve_error = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { serve_error = error_of([&] { l.serve(echo, tg); }); });
      auto c = net::create_tcp_connection("127.0.0.1", port);
      c.send_all("before");
      CHECK(c.recv(100) == "before");  // its handler is running

      l.aclose();
      CHECK(l.is_closing());
      weft::testing::wait_all_tasks_blocked();
      CHECK(serve_error == EBADF);

      c.send_all("after");
      CHECK(c.recv(100) == "after");  // the handler still serves it
      CHECK(error_of([&] { (void)net::create_tcp_connection("127.0.0.1", port); }) == ECONNREFUSED);
      c.send_eof();
      CHECK(c.recv(100).empty());  // handler done, connection closed
    });
    CHECK(serve_error == EBADF);
  });
}

TEST_CASE("a closed listener: serve, accept and local_address fail with EBADF; aclose is idempotent") {
  temp_dir dir;
  run_real([&] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    auto unix_l = net::create_unix_stream_listener(dir.file("u"));
    for (auto* l : {&ls[0], &unix_l}) {
      l->aclose();
      CHECK(l->is_closing());
      CHECK_NOTHROW(l->aclose());
      CHECK(error_of([&] { (void)l->accept(); }) == EBADF);
      CHECK(error_of([&] { (void)l->local_address(); }) == EBADF);
      weft::open_task_group([&](weft::task_group& tg) { CHECK(error_of([&] { l->serve(echo, tg); }) == EBADF); });
    }
    // A moved-from listener is closing.
    auto fresh = net::create_tcp_listeners("127.0.0.1", 0);
    net::stream_listener moved = std::move(fresh[0]);
    CHECK(fresh[0].is_closing());
    CHECK_FALSE(moved.is_closing());
    CHECK(error_of([&] { (void)fresh[0].accept(); }) == EBADF);
  });
}

TEST_CASE("aclose wakes a task parked in accept promptly with EBADF") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    int error = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { error = error_of([&] { (void)ls[0].accept(); }); });
      weft::testing::wait_all_tasks_blocked();
      ls[0].aclose();
    });
    CHECK(error == EBADF);
  });
}

TEST_CASE("a listener used from a task of another runtime throws logic_error and is left as it was") {
  run_real([&] {
    auto streams = net::create_tcp_listeners("127.0.0.1", 0);
    auto datagrams = net::create_udp_listeners("127.0.0.1", 0);
    auto& l = streams[0];
    auto& d = datagrams[0];
    std::string accept_error, recv_error, send_error;
    std::thread other([&] {
      weft::run([&] {
        try {
          (void)l.accept();
        } catch (const std::logic_error& e) {
          accept_error = e.what();
        }
        try {
          (void)d.recv_from();
        } catch (const std::logic_error& e) {
          recv_error = e.what();
        }
        try {
          d.send_to("x", d.local_address());
        } catch (const std::logic_error& e) {
          send_error = e.what();
        }
      });
    });
    other.join();
    CHECK(accept_error.find("runtime that opened it") != std::string::npos);
    CHECK(recv_error.find("runtime that opened it") != std::string::npos);
    CHECK(send_error.find("runtime that opened it") != std::string::npos);
    // Still usable where they belong.
    auto c = net::create_tcp_connection("127.0.0.1", l.local_address().port());
    auto s = l.accept();
    c.send_all("ok");
    CHECK(s.recv(10) == "ok");
    d.send_to("self", d.local_address());
    CHECK(d.recv_from().first == "self");
  });
}

TEST_CASE("cancelling the serving group closes open connections abortively") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    std::optional<net::stream_transport> client;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { ls[0].serve([](net::stream_transport& t) { (void)t.recv(10); }, tg); });
      client.emplace(net::create_tcp_connection("127.0.0.1", ls[0].local_address().port()));
      weft::testing::wait_all_tasks_blocked();  // the handler waits in recv
      tg.cancel();
    });
    CHECK(error_of([&] { (void)client->recv(10); }) == ECONNRESET);
  });
}

TEST_CASE("a handler that throws fails the serving group; the exception comes out") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    try {
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          ls[0].serve([](net::stream_transport&) { throw std::runtime_error("handler failed"); }, tg);
        });
        auto c = net::create_tcp_connection("127.0.0.1", ls[0].local_address().port());
        weft::sleep_forever();
      });
      FAIL("the group ended normally");
    } catch (const weft::exception_group& g) {
      REQUIRE(g.contains<std::runtime_error>());
      CHECK(std::string(g.find<std::runtime_error>()->what()) == "handler failed");
    }
  });
}

TEST_CASE("a task dump shows a task blocked in accept with the listener's descriptor") {
  run_real([] {
    auto listeners = net::create_tcp_listeners("127.0.0.1", 0);
    const int fd = listeners.front().acceptor().native_handle();
    std::ostringstream dump;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon(weft::task_options{"acceptor"}, [&] { listeners.front().accept(); });
      weft::testing::wait_all_tasks_blocked();
      weft::lowlevel::dump_tasks(dump);
      tg.cancel();
    });
    CHECK(dump.str().find("task 2 \"acceptor\" parked: accept on fd " + std::to_string(fd) + "\n") != std::string::npos);
  });
}

#include "net/net_support.hpp"

#include <boost/asio/ip/address.hpp>

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <array>
#include <span>
#include <string_view>
#include <string>
#include <vector>

using namespace weft_net_test;
namespace ip = boost::asio::ip;

namespace {

// A UDP listener on 127.0.0.1 and an endpoint connected to it.
struct udp_setup {
  net::datagram_listener server;
  net::datagram_transport client;
};

udp_setup udp_pair(const std::string& host = "127.0.0.1") {
  auto listeners = net::create_udp_listeners(host, 0);
  REQUIRE(listeners.size() == 1);
  const std::uint16_t port = listeners[0].local_address().port();
  auto client = net::create_udp_endpoint(std::make_pair(host, port));
  return {std::move(listeners[0]), std::move(client)};
}

}  // namespace

TEST_CASE("a UDP endpoint sends datagrams to its peer and receives the replies") {
  for (const std::string host : {"127.0.0.1", "::1"}) {
    CAPTURE(host);
    run_real([&] {
      auto s = udp_pair(host);
      s.client.send("ping");
      auto [data, from] = s.server.recv_from();
      CHECK(data == "ping");
      CHECK(from == s.client.local_address());
      s.server.send_to("pong", from);
      CHECK(s.client.recv() == "pong");
      CHECK(s.client.peer_address() == s.server.local_address());
      CHECK(s.client.family() == (host == "::1" ? AF_INET6 : AF_INET));
      CHECK(sockopt_int(s.client.socket().native_handle(), SOL_SOCKET, SO_TYPE) == SOCK_DGRAM);
    });
  }
}

TEST_CASE("recv returns one datagram at a time, boundaries kept, empty datagrams included") {
  run_real([] {
    auto [a, b] = unix_datagram_pair();
    a.send("one");
    a.send("");
    a.send("three!");
    CHECK(b.recv() == "one");
    CHECK(b.recv().empty());  // an empty datagram, not an end of stream
    CHECK(b.recv() == "three!");
    CHECK_FALSE(b.is_closing());
  });
}

TEST_CASE("a UDP datagram of the largest IPv4 payload arrives whole") {
  run_real([] {
    auto s = udp_pair();
    const std::string big(65507, 'u');
    s.client.send(big);
    CHECK(s.server.recv_from().first == big);
  });
}

TEST_CASE("recv returns at most max_datagram_size bytes; the rest of a longer datagram is cut off") {
  run_real([] {
    auto [a, b] = unix_datagram_pair();
    const int fd = a.socket().native_handle();
    int size = 1 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    std::string big(net::max_datagram_size + 1000, 'x');
    big[net::max_datagram_size - 1] = 'L';
    a.send(big);
    const std::string got = b.recv();
    CHECK(got.size() == net::max_datagram_size);
    CHECK(got.back() == 'L');
    a.send("next");
    CHECK(b.recv() == "next");
  });
}

TEST_CASE("recv_into and recv_from_into fill the caller's buffer, truncating a longer datagram") {
  run_real([] {
    auto s = udp_pair();
    std::array<char, 8> small{};
    s.client.send("hello");
    auto [n, from] = s.server.recv_from_into(std::span<char>(small));
    CHECK(n == 5);
    CHECK(std::string_view(small.data(), n) == "hello");
    CHECK(from == s.client.local_address());
    s.client.send("a longer datagram");
    auto [m, from2] = s.server.recv_from_into(std::span<char>(small));
    CHECK(m == small.size());  // cut to the buffer; the rest is gone
    CHECK(std::string_view(small.data(), m) == "a longer");
    CHECK(from2 == from);

    s.server.send_to("reply", from);
    s.server.send_to("second reply", from);
    s.server.send_to("third", from);
    std::array<std::byte, 64> buf{};
    const std::size_t r = s.client.recv_into(std::span<std::byte>(buf));
    CHECK(std::string_view(reinterpret_cast<const char*>(buf.data()), r) == "reply");
    // An empty buffer takes one datagram and keeps nothing of it.
    CHECK(s.client.recv_into(std::span<char>()) == 0);
    CHECK(s.client.recv() == "third");
  });
}

TEST_CASE("recv_into on a closed datagram transport fails with EBADF; a second receiver is busy") {
  run_real([] {
    auto [a, b] = unix_datagram_pair();
    std::array<char, 16> buf{};
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { CHECK(b.recv_into(std::span<char>(buf)) == 3); });
      weft::testing::wait_all_tasks_blocked();
      CHECK_THROWS_AS((void)b.recv_into(std::span<char>(buf)), weft::busy_resource_error);
      a.send("abc");
    });
    b.aclose();
    CHECK(error_of([&] { (void)b.recv_into(std::span<char>(buf)); }) == EBADF);
  });
}

TEST_CASE("sending a datagram that is too big fails with EMSGSIZE") {
  run_real([] {
    auto s = udp_pair();
    CHECK(error_of([&] { s.client.send(std::string(70000, 'x')); }) == EMSGSIZE);
    CHECK(error_of([&] { s.server.send_to(std::string(70000, 'x'), s.client.local_address()); }) == EMSGSIZE);
    // The endpoint still works.
    s.client.send("small");
    CHECK(s.server.recv_from().first == "small");

    auto [a, b] = unix_datagram_pair();
    CHECK(error_of([&] { a.send(std::string(8 * 1024 * 1024, 'x')); }) == EMSGSIZE);
    a.send("fine");
    CHECK(b.recv() == "fine");
  });
}

TEST_CASE("a datagram too big to send is an EMSGSIZE error naming the function and the size") {
  run([] {
    auto s = udp_pair();
    auto check_too_big = [](auto&& send, const char* function) {
      try {
        send();
        FAIL("a 70000-byte UDP datagram was sent");
      } catch (const std::system_error& e) {
        CHECK(e.code() == std::error_code(EMSGSIZE, std::system_category()));
        const std::string what = e.what();
        CAPTURE(what);
        CHECK(what.find(function) != std::string::npos);
        CHECK(what.find("70000") != std::string::npos);
      }
    };
    check_too_big([&] { s.client.send(std::string(70000, 'x')); }, "weft::net::datagram_transport::send");
    check_too_big([&] { s.server.send_to(std::string(70000, 'x'), s.client.local_address()); },
                  "weft::net::datagram_listener::send_to");
    check_invalid_argument([&] { s.server.send_to("x", net::endpoint()); },
                           {"weft::net::datagram_listener::send_to", "<unspecified>"});
    s.client.send("still fine");
    CHECK(s.server.recv_from().first == "still fine");
  });
}

TEST_CASE("a connected UDP endpoint reports ECONNREFUSED when nobody listens at the peer") {
  run_real([] {
    std::uint16_t closed_port = 0;
    {
      auto probe = net::create_udp_listeners("127.0.0.1", 0);
      closed_port = probe[0].local_address().port();
    }
    auto client = net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), closed_port));
    client.send("anyone?");
    CHECK(error_of([&] { (void)client.recv(); }) == ECONNREFUSED);
    CHECK_FALSE(client.is_closing());
  });
}

// --- reading ahead ------------------------------------------------------------------

namespace {
// The size of the next datagram waiting in the kernel for fd (0: none).
int kernel_queued(int fd) {
  int n = -1;
  REQUIRE(::ioctl(fd, SIOCINQ, &n) == 0);
  return n;
}
}  // namespace

TEST_CASE("a UDP receive takes a second waiting datagram ahead; the next receive returns it, sender included") {
  for (const std::string host : {"127.0.0.1", "::1"}) {
    CAPTURE(host);
    run_real([&] {
      auto s = udp_pair(host);
      auto other = net::create_udp_endpoint(std::make_pair(host, s.server.local_address().port()));
      s.client.send("first");
      other.send("second, longer than the buffer");
      s.client.send("third");
      auto [data, from] = s.server.recv_from();
      CHECK(data == "first");
      CHECK(from == s.client.local_address());
      // "second" was read with "first": the kernel holds only "third".
      CHECK(kernel_queued(s.server.socket().native_handle()) == 5);
      std::array<char, 6> small{};
      auto [n, from2] = s.server.recv_from_into(std::span<char>(small));
      CHECK(std::string_view(small.data(), n) == "second");  // cut to the buffer, as recv(2) cuts
      CHECK(from2 == other.local_address());
      auto [third, from3] = s.server.recv_from();
      CHECK(third == "third");
      CHECK(from3 == s.client.local_address());
    });
  }
}

TEST_CASE("a datagram read ahead survives a move and a cancelled receive, and goes with a close") {
  run_real([] {
    auto s = udp_pair();
    for (const char* d : {"a", "b", "c", "d"}) s.server.send_to(d, s.client.local_address());
    CHECK(s.client.recv() == "a");  // "b" is kept
    net::datagram_transport moved = std::move(s.client);
    CHECK(moved.recv() == "b");
    CHECK(moved.recv() == "c");  // "d" is kept
    auto scope = weft::open_cancel_scope();
    scope.run([&](weft::cancel_scope& self) {
      self.cancel();
      (void)moved.recv();  // the checkpoint at entry: nothing taken
    });
    CHECK(scope.cancelled_caught());
    CHECK(moved.recv() == "d");

    s.server.send_to("e", moved.local_address());
    s.server.send_to("f", moved.local_address());
    CHECK(moved.recv() == "e");  // "f" is kept
    moved.aclose();
    CHECK(error_of([&] { (void)moved.recv(); }) == EBADF);
  });
}

TEST_CASE("a receive that found no second datagram waits for the next one, which arrives later") {
  run_real([] {
    auto s = udp_pair();
    std::string got;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        for (int i = 0; i < 3; ++i) got += s.server.recv_from().first;
      });
      for (const char* d : {"x", "y", "z"}) {
        weft::testing::wait_all_tasks_blocked();  // the receiver is parked, the socket empty
        CHECK(kernel_queued(s.server.socket().native_handle()) == 0);
        s.client.send(d);
      }
    });
    CHECK(got == "xyz");
  });
}

TEST_CASE("a connected UDP endpoint reports ECONNREFUSED that comes after a datagram it has read") {
  run_real([] {
    auto listeners = net::create_udp_listeners("127.0.0.1", 0);
    net::datagram_listener peer = std::move(listeners[0]);
    auto client = net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), peer.local_address().port()));
    peer.send_to("hello", client.local_address());
    peer.send_to("again", client.local_address());
    CHECK(client.recv() == "hello");  // "again" is kept
    peer.aclose();
    client.send("anyone?");  // ICMP port unreachable
    CHECK(client.recv() == "again");  // taken before the error came: returned before it
    // The read ahead found nothing before the error arrived; the error's own
    // readiness report wakes this receive.
    CHECK(error_of([&] { (void)client.recv(); }) == ECONNREFUSED);
    client.send("still nobody?");
    CHECK(error_of([&] { (void)client.recv(); }) == ECONNREFUSED);
    CHECK_FALSE(client.is_closing());
  });
}

TEST_CASE("Unix datagrams larger than max_datagram_size arrive whole in a large enough buffer, two queued") {
  run_real([] {
    auto [a, b] = unix_datagram_pair();
    int size = 1 << 20;
    ::setsockopt(a.socket().native_handle(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(b.socket().native_handle(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    const std::string one(net::max_datagram_size + 5000, '1'), two(net::max_datagram_size + 7000, '2');
    a.send(one);
    a.send(two);
    std::vector<char> buf(2 * net::max_datagram_size);
    CHECK(std::string_view(buf.data(), b.recv_into(std::span<char>(buf))) == one);
    CHECK(std::string_view(buf.data(), b.recv_into(std::span<char>(buf))) == two);
  });
}

TEST_CASE("two tasks receiving on one datagram transport: the second gets busy_resource_error") {
  run_real([] {
    auto [a, b] = unix_datagram_pair();
    std::string first;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { first = b.recv(); });
      weft::testing::wait_all_tasks_blocked();
      CHECK_THROWS_AS((void)b.recv(), weft::busy_resource_error);
      a.send("for the first");
    });
    CHECK(first == "for the first");
    a.send("later");
    CHECK(b.recv() == "later");
  });
}

TEST_CASE("aclose wakes a task parked in a datagram recv promptly with EBADF") {
  run_real([] {
    auto s = udp_pair();
    int error = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { error = error_of([&] { (void)s.client.recv(); }); });
      weft::testing::wait_all_tasks_blocked();
      s.client.aclose();
    });
    CHECK(error == EBADF);
  });
}

TEST_CASE("every call on a closed datagram transport fails with EBADF; aclose is idempotent") {
  run_real([] {
    auto [a, b] = unix_datagram_pair();
    CHECK_FALSE(a.is_closing());
    a.aclose();
    CHECK(a.is_closing());
    CHECK_NOTHROW(a.aclose());
    CHECK(error_of([&] { (void)a.recv(); }) == EBADF);
    CHECK(error_of([&] { a.send("x"); }) == EBADF);
    CHECK(error_of([&] { (void)a.local_address(); }) == EBADF);
    CHECK(error_of([&] { (void)a.peer_address(); }) == EBADF);
    CHECK(error_of([&] { (void)a.family(); }) == EBADF);
    // A moved-from transport counts as closed.
    net::datagram_transport moved = std::move(b);
    CHECK(b.is_closing());
    CHECK(error_of([&] { b.send("x"); }) == EBADF);
  });
}

TEST_CASE("a Unix datagram endpoint talks to a bound peer by path") {
  temp_dir dir;
  run_real([&] {
    auto server = net::create_unix_datagram_endpoint(std::nullopt, dir.file("server"));
    auto client = net::create_unix_datagram_endpoint(dir.file("server"), dir.file("client"));
    CHECK(client.family() == AF_UNIX);
    CHECK(client.local_address().path() == dir.file("client"));
    CHECK(client.peer_address().path() == dir.file("server"));
    client.send("hi");
    CHECK(server.recv() == "hi");
    // The server is not connected: it cannot send without an address.
    CHECK(error_of([&] { server.send("x"); }) > 0);
  });
}

TEST_CASE("a UDP endpoint with only a local address receives from anyone") {
  run_real([] {
    auto bound = net::create_udp_endpoint(std::nullopt, std::make_pair(std::string("127.0.0.1"), std::uint16_t{0}));
    const auto local = bound.local_address();
    CHECK(local.address() == ip::make_address("127.0.0.1"));
    CHECK(local.port() != 0);
    auto sender = net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), local.port()),
                                           std::make_pair(std::string("127.0.0.2"), std::uint16_t{0}));
    CHECK(sender.local_address().address() == ip::make_address("127.0.0.2"));
    sender.send("from 127.0.0.2");
    CHECK(bound.recv() == "from 127.0.0.2");
  });
}

TEST_CASE("create_udp_endpoint and create_unix_datagram_endpoint need an address") {
  run_real([] {
    CHECK_THROWS_AS((void)net::create_udp_endpoint(), std::invalid_argument);
    CHECK_THROWS_AS((void)net::create_unix_datagram_endpoint(std::nullopt), std::invalid_argument);
    // A family that the address does not have finds nothing: an error.
    CHECK(error_of([] {
            (void)net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), std::uint16_t{9}), std::nullopt,
                                           AF_INET6);
          }) > 0);
  });
}

TEST_CASE("create_udp_endpoint rejects a port out of range, for the remote and the local address") {
  run([] {
    const std::size_t fds = open_fd_count();
    for (const int port : {65536, 70000, -1}) {
      CAPTURE(port);
      const auto address = std::make_pair(std::string("127.0.0.1"), port);
      check_invalid_argument([&] { (void)net::create_udp_endpoint(address); },
                             {"weft::net::create_udp_endpoint", std::to_string(port)});
      check_invalid_argument([&] { (void)net::create_udp_endpoint(std::nullopt, address); },
                             {"weft::net::create_udp_endpoint", std::to_string(port)});
    }
    CHECK(open_fd_count() == fds);
  });
}

TEST_CASE("a datagram endpoint that cannot be made throws a connect_error with the address it tried") {
  temp_dir dir;
  run([&] {
    const std::size_t fds = open_fd_count();
    // 192.0.2.1 (TEST-NET-1) is not an address of this host.
    try {
      (void)net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), 9),
                                     std::make_pair(std::string("192.0.2.1"), 0));
      FAIL("bound an address this host does not have");
    } catch (const net::connect_error& e) {
      CHECK(e.code() == std::error_code(EADDRNOTAVAIL, std::system_category()));
      REQUIRE(e.attempts().size() == 1);
      CHECK(e.attempts()[0].address == net::endpoint(ip::make_address("127.0.0.1"), 9));
      CHECK(std::string(e.what()).find("weft::net::create_udp_endpoint") != std::string::npos);
    }
    const std::string missing = dir.file("missing");
    try {
      (void)net::create_unix_datagram_endpoint(missing);
      FAIL("connected to a path where nothing is bound");
    } catch (const net::connect_error& e) {
      CHECK(e.code() == std::error_code(ENOENT, std::system_category()));
      REQUIRE(e.attempts().size() == 1);
      CHECK(e.attempts()[0].address.path() == missing);
      const std::string what = e.what();
      CHECK(what.find("weft::net::create_unix_datagram_endpoint") != std::string::npos);
      CHECK(what.find(missing) != std::string::npos);
    }
    CHECK(open_fd_count() == fds);
  });
}

TEST_CASE("wrap_connected_datagram_socket takes a datagram socket and rejects a stream socket") {
  run_real([] {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    CHECK_THROWS_AS((void)net::wrap_connected_datagram_socket(fds[0]), std::invalid_argument);
    CHECK(fd_is_open(fds[0]));  // left open
    ::close(fds[0]);
    ::close(fds[1]);

    REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) == 0);
    auto a = net::wrap_connected_datagram_socket(fds[0]);
    auto b = net::wrap_connected_datagram_socket(fds[1]);
    a.send("wrapped");
    CHECK(b.recv() == "wrapped");
    a.aclose();
    CHECK_FALSE(fd_is_open(fds[0]));  // the transport owned it
  });
}

// --- datagram listeners ------------------------------------------------------------

TEST_CASE("a datagram listener runs one task per datagram, started in arrival order") {
  run_real([] {
    auto s = udp_pair();
    std::vector<std::string> started;
    int running = 0, max_running = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        s.server.serve(
            [&](std::string datagram, const net::endpoint& from, net::datagram_listener& listener) {
              started.push_back(datagram);
              max_running = std::max(max_running, ++running);
              weft::sleep(5ms);  // the handlers overlap
              listener.send_to("re:" + datagram, from);
              --running;
            },
            tg);
      });
      for (int i = 0; i < 20; ++i) s.client.send("d" + std::to_string(i));
      std::vector<std::string> replies;
      for (int i = 0; i < 20; ++i) replies.push_back(s.client.recv());
      std::sort(replies.begin(), replies.end());
      std::vector<std::string> expected;
      for (int i = 0; i < 20; ++i) expected.push_back("re:d" + std::to_string(i));
      std::sort(expected.begin(), expected.end());
      CHECK(replies == expected);
      tg.cancel();
    });
    REQUIRE(started.size() == 20);
    for (int i = 0; i < 20; ++i) CHECK(started[static_cast<std::size_t>(i)] == "d" + std::to_string(i));
    CHECK(max_running > 1);
  });
}

TEST_CASE("send_to is safe from many tasks at once") {
  run_real([] {
    auto s = udp_pair();
    // A small send buffer: some send_to calls may find it full and wait.
    int size = 4096;
    ::setsockopt(s.server.socket().native_handle(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    int rcv = 1 << 20;
    ::setsockopt(s.client.socket().native_handle(), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    const net::endpoint to = s.client.local_address();
    std::vector<std::string> got;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        while (got.size() < 100) got.push_back(s.client.recv());
      });
      for (int t = 0; t < 10; ++t)
        tg.start_soon([&, t] {
          for (int i = 0; i < 10; ++i) {
            s.server.send_to("t" + std::to_string(t) + "-" + std::to_string(i) + std::string(100, '.'), to);
            weft::checkpoint();
          }
        });
    });
    REQUIRE(got.size() == 100);
    // Every datagram arrived whole; each task's datagrams in its own order.
    std::vector<int> next(10, 0);
    for (const auto& d : got) {
      REQUIRE(d.size() > 100);
      const auto dash = d.find('-');
      const int t = std::stoi(d.substr(1, dash - 1));
      const int i = std::stoi(d.substr(dash + 1));
      CHECK(i == next[static_cast<std::size_t>(t)]);
      next[static_cast<std::size_t>(t)] = i + 1;
    }
  });
}

TEST_CASE("serving a datagram listener twice at once: the second gets busy_resource_error") {
  run_real([] {
    auto s = udp_pair();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { s.server.serve([](std::string, const net::endpoint&, net::datagram_listener&) {}, tg); });
      weft::testing::wait_all_tasks_blocked();
      CHECK_THROWS_AS(s.server.serve([](std::string, const net::endpoint&, net::datagram_listener&) {}, tg),
                      weft::busy_resource_error);
      CHECK_THROWS_AS((void)s.server.recv_from(), weft::busy_resource_error);
      tg.cancel();
    });
  });
}

TEST_CASE("closing a datagram listener ends serve with EBADF") {
  run_real([] {
    auto s = udp_pair();
    int error = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        error = error_of(
            [&] { s.server.serve([](std::string, const net::endpoint&, net::datagram_listener&) {}, tg); });
      });
      weft::testing::wait_all_tasks_blocked();
      s.server.aclose();
    });
    CHECK(error == EBADF);
    CHECK(s.server.is_closing());
    CHECK(error_of([&] { (void)s.server.recv_from(); }) == EBADF);
    CHECK(error_of([&] { s.server.send_to("x", s.client.local_address()); }) == EBADF);
    weft::open_task_group([&](weft::task_group& tg) {
      CHECK(error_of([&] { s.server.serve([](std::string, const net::endpoint&, net::datagram_listener&) {}, tg); }) ==
            EBADF);
    });
  });
}

TEST_CASE("UDP listeners: one host, several addresses, all interfaces, port 0 and SO_REUSEPORT") {
  run_real([] {
    {
      auto v4 = net::create_udp_listeners("127.0.0.1", 0);
      REQUIRE(v4.size() == 1);
      CHECK(v4[0].local_address().family() == AF_INET);
      CHECK(v4[0].local_address().port() != 0);
      CHECK(sockopt_int(v4[0].socket().native_handle(), SOL_SOCKET, SO_REUSEADDR) != 0);
      CHECK(sockopt_int(v4[0].socket().native_handle(), SOL_SOCKET, SO_REUSEPORT) == 0);
    }
    {
      auto v6 = net::create_udp_listeners("::1", 0);
      REQUIRE(v6.size() == 1);
      CHECK(v6[0].local_address().family() == AF_INET6);
      CHECK(sockopt_int(v6[0].socket().native_handle(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
    }
    {
      // All interfaces: an IPv6 and an IPv4 socket on the same port.
      auto all = net::create_udp_listeners("", 0);
      REQUIRE(all.size() == 2);
      CHECK(all[0].local_address().port() == all[1].local_address().port());
      std::vector<int> families{all[0].local_address().family(), all[1].local_address().family()};
      std::sort(families.begin(), families.end());
      CHECK(families == std::vector<int>{AF_INET, AF_INET6});
      for (auto& l : all)
        if (l.local_address().family() == AF_INET6)
          CHECK(sockopt_int(l.socket().native_handle(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
      // Reachable over loopback.
      auto client = net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), all[0].local_address().port()));
      client.send("any");
      auto& v4 = all[0].local_address().family() == AF_INET ? all[0] : all[1];
      CHECK(v4.recv_from().first == "any");
    }
    {
      auto first = net::create_udp_listeners("127.0.0.1", 0, true);
      REQUIRE(first.size() == 1);
      CHECK(sockopt_int(first[0].socket().native_handle(), SOL_SOCKET, SO_REUSEPORT) == 1);
      auto second = net::create_udp_listeners("127.0.0.1", first[0].local_address().port(), true);
      REQUIRE(second.size() == 1);
      CHECK(second[0].local_address() == first[0].local_address());
    }
  });
}

TEST_CASE("a Unix datagram listener gets the file mode asked for and replies by path") {
  temp_dir dir;
  run_real([&] {
    const std::string path = dir.file("dgram.sock");
    auto listener = net::create_unix_datagram_listener(path, 0600);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(listener.local_address().path() == path);

    auto client = net::create_unix_datagram_endpoint(path, dir.file("client.sock"));
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        listener.serve(
            [](std::string d, const net::endpoint& from, net::datagram_listener& l) { l.send_to("echo:" + d, from); },
            tg);
      });
      client.send("x");
      CHECK(client.recv() == "echo:x");
      tg.cancel();
    });

    const std::string other = dir.file("other.sock");
    auto open_mode = net::create_unix_datagram_listener(other, 0666);
    REQUIRE(::stat(other.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0666);
  });
}

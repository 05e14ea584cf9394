// Every blocking networking call is a checkpoint, also when it could
// complete at once: inside a cancelled scope it throws weft::cancelled
// before doing anything, so nothing is received, sent, accepted or opened.
// aclose is the exception that proves the rule: it still closes, then throws.

#include "net/net_support.hpp"

#include <boost/asio/ip/address.hpp>

#include <netdb.h>

#include <array>
#include <span>
#include <string>
#include <string_view>

using namespace weft_net_test;
namespace ip = boost::asio::ip;

namespace {

// Runs op() in a scope that is already cancelled, once by cancel() and once
// by a deadline that has passed (move_on_after(0)); checks each time that
// op threw weft::cancelled at once (the scope caught it, op did not return,
// the clock did not move).
template <class F>
void check_cancelled_at_entry(F&& op) {
  const double start = now_s();
  {
    bool returned = false;
    auto scope = weft::open_cancel_scope();
    scope.run([&](weft::cancel_scope& s) {
      s.cancel();
      op();
      returned = true;
    });
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(returned);
  }
  {
    bool returned = false;
    auto scope = weft::move_on_after(0s);
    scope.run([&] {
      op();
      returned = true;
    });
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(returned);
  }
  CHECK(now_s() == start);
}

// True if nothing is waiting to be accepted on l: an accept does not
// complete before a deadline on the (autojumping) manual clock.
bool nothing_pending(net::stream_listener& l) {
  auto scope = weft::move_on_after(1s);
  scope.run([&] { (void)l.accept(); });
  return scope.cancelled_caught();
}

}  // namespace

// --- stream transports ---------------------------------------------------------------

TEST_CASE("stream recv, recv(0) and recv_into raise cancelled in a cancelled scope although data is waiting") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run([&] {
      auto p = make_stream_pair(kind);
      p.client.send_all("waiting");
      weft::sleep(10ms);  // the data is there before the calls below
      std::array<std::byte, 16> buf{};
      check_cancelled_at_entry([&] { (void)p.server.recv(100); });
      check_cancelled_at_entry([&] { (void)p.server.recv(0); });
      check_cancelled_at_entry([&] { (void)p.server.recv_into(std::span<std::byte>(buf)); });
      check_cancelled_at_entry([&] { (void)p.server.recv_into(std::span<std::byte>()); });
      // Nothing was consumed.
      p.client.send_eof();
      CHECK(recv_all(p.server) == "waiting");
    });
  }
}

TEST_CASE("send_all and send_all_from_iterable raise cancelled in a cancelled scope although the socket has room; "
          "nothing is sent") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run([&] {
      auto p = make_stream_pair(kind);
      const std::array<std::string_view, 2> two{"never", "sent"};
      const std::string x = "x";
      const std::array<std::span<const std::byte>, 1> spans{std::as_bytes(std::span<const char>(x))};
      check_cancelled_at_entry([&] { p.client.send_all("never sent"); });
      check_cancelled_at_entry([&] { p.client.send_all(std::string_view()); });
      check_cancelled_at_entry([&] { p.client.send_all_from_iterable(std::span<const std::string_view>(two)); });
      check_cancelled_at_entry(
          [&] { p.client.send_all_from_iterable(std::span<const std::span<const std::byte>>(spans)); });
      p.client.send_all("after");
      p.client.send_eof();
      CHECK(recv_all(p.server) == "after");  // and nothing before it
    });
  }
}

TEST_CASE("send_eof is not a checkpoint: it half-closes in a cancelled scope too") {
  run([] {
    auto p = unix_stream_pair();
    p.client.send_all("data");
    weft::open_cancel_scope().run([&](weft::cancel_scope& s) {
      s.cancel();
      p.client.send_eof();
    });
    CHECK(recv_all(p.server) == "data");
  });
}

TEST_CASE("aclose in a cancelled scope still closes the transport, abortively, then raises cancelled") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run([&] {
      auto p = make_stream_pair(kind);
      bool returned = false;
      auto scope = weft::open_cancel_scope();
      scope.run([&](weft::cancel_scope& s) {
        s.cancel();
        p.server.aclose();
        returned = true;
      });
      CHECK(scope.cancelled_caught());
      CHECK_FALSE(returned);
      CHECK(p.server.is_closing());
      CHECK_FALSE(p.server.socket().is_open());
      if (kind == stream_kind::unix_socket)
        CHECK(p.client.recv(10).empty());  // Unix sockets have no reset
      else
        CHECK(error_of([&] { (void)p.client.recv(10); }) == ECONNRESET);
      // Closing again is a checkpoint too, and otherwise does nothing.
      check_cancelled_at_entry([&] { p.server.aclose(); });
      CHECK_NOTHROW(p.server.aclose());
    });
  }
}

// --- datagram transports -------------------------------------------------------------

TEST_CASE("datagram recv, recv_into and send raise cancelled in a cancelled scope although they could complete") {
  run([] {
    auto [a, b] = unix_datagram_pair();
    a.send("waiting");
    std::array<char, 16> buf{};
    check_cancelled_at_entry([&] { (void)b.recv(); });
    check_cancelled_at_entry([&] { (void)b.recv_into(std::span<char>(buf)); });
    check_cancelled_at_entry([&] { a.send("never sent"); });
    CHECK(b.recv() == "waiting");
    a.send("after");
    CHECK(b.recv() == "after");  // nothing was sent in between
    // aclose closes, then raises.
    check_cancelled_at_entry([&] { a.aclose(); });
    CHECK(a.is_closing());
    CHECK_FALSE(a.socket().is_open());
  });
}

// --- datagram listeners --------------------------------------------------------------

TEST_CASE("datagram listener recv_from, recv_from_into, send_to and serve raise cancelled with a datagram waiting") {
  run([] {
    auto ls = net::create_udp_listeners("127.0.0.1", 0);
    auto& server = ls[0];
    auto client = net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), server.local_address().port()));
    client.send("waiting");
    weft::sleep(10ms);
    std::array<char, 16> buf{};
    check_cancelled_at_entry([&] { (void)server.recv_from(); });
    check_cancelled_at_entry([&] { (void)server.recv_from_into(std::span<char>(buf)); });
    check_cancelled_at_entry([&] { server.send_to("never sent", client.local_address()); });
    int handled = 0;
    check_cancelled_at_entry([&] {
      weft::open_task_group([&](weft::task_group& tg) {
        server.serve([&](std::string, const net::endpoint&, net::datagram_listener&) { ++handled; }, tg);
      });
    });
    CHECK(handled == 0);
    auto [data, from] = server.recv_from();
    CHECK(data == "waiting");
    server.send_to("after", from);
    CHECK(client.recv() == "after");  // nothing was sent before it
    check_cancelled_at_entry([&] { server.aclose(); });
    CHECK(server.is_closing());
    CHECK_FALSE(server.socket().is_open());
  });
}

// --- stream listeners ----------------------------------------------------------------

TEST_CASE("accept raises cancelled in a cancelled scope with a connection pending; the next accept gets it") {
  temp_dir dir;
  run([&] {
    auto tcp = net::create_tcp_listeners("127.0.0.1", 0);
    auto unix_l = net::create_unix_stream_listener(dir.file("l"));
    auto c1 = net::create_tcp_connection("127.0.0.1", tcp[0].local_address().port());
    auto c2 = net::create_unix_stream_connection(dir.file("l"));
    for (auto [l, c] : {std::pair{&tcp[0], &c1}, std::pair{&unix_l, &c2}}) {
      const std::size_t fds = open_fd_count();
      check_cancelled_at_entry([&] { (void)l->accept(); });
      CHECK(open_fd_count() == fds);  // nothing was accepted
      auto s = l->accept();
      CHECK(s.peer_address() == c->local_address());
      c->send_all("first");
      CHECK(s.recv(10) == "first");
      CHECK(nothing_pending(*l));
    }
  });
}

TEST_CASE("serve raises cancelled in a cancelled scope with a connection pending; no handler runs, nothing is lost") {
  run([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    auto& l = ls[0];
    auto c = net::create_tcp_connection("127.0.0.1", l.local_address().port());
    int handled = 0;
    check_cancelled_at_entry([&] {
      weft::open_task_group([&](weft::task_group& tg) { l.serve([&](net::stream_transport&) { ++handled; }, tg); });
    });
    CHECK(handled == 0);
    auto s = l.accept();
    CHECK(s.peer_address() == c.local_address());
    check_cancelled_at_entry([&] { l.aclose(); });
    CHECK(l.is_closing());
    CHECK_FALSE(l.acceptor().is_open());
  });
}

TEST_CASE("serve checks for cancellation before every accept: cancelled with connections waiting, it accepts none") {
  run([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    auto& l = ls[0];
    std::vector<net::stream_transport> clients;
    const std::uint16_t port = l.local_address().port();
    for (int i = 0; i < 3; ++i) clients.push_back(net::create_tcp_connection("127.0.0.1", port));
    int handled = 0;
    auto scope = weft::open_cancel_scope();
    scope.run([&](weft::cancel_scope& s) {
      // Accepts complete at once while connections wait (serve accepts a
      // burst in one pass): only the check before each accept stops it.
      s.cancel();
      weft::open_task_group([&](weft::task_group& tg) { l.serve([&](net::stream_transport&) { ++handled; }, tg); });
    });
    CHECK(scope.cancelled_caught());
    CHECK(handled == 0);
    int pending = 0;
    while (!nothing_pending(l)) ++pending;
    CHECK(pending == 3);  // every connection is still in the backlog
  });
}

// --- factories -----------------------------------------------------------------------

TEST_CASE("connection factories raise cancelled at entry and connect nothing") {
  temp_dir dir;
  run([&] {
    auto tcp = net::create_tcp_listeners("127.0.0.1", 0);
    const std::uint16_t port = tcp[0].local_address().port();
    auto unix_l = net::create_unix_stream_listener(dir.file("s"));
    auto dgram_l = net::create_unix_datagram_listener(dir.file("d"));
    const std::size_t fds = open_fd_count();
    check_cancelled_at_entry([&] { (void)net::create_tcp_connection("127.0.0.1", port); });
    check_cancelled_at_entry([&] { (void)net::create_unix_stream_connection(dir.file("s")); });
    check_cancelled_at_entry([&] { (void)net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), port)); });
    check_cancelled_at_entry([&] { (void)net::create_unix_datagram_endpoint(dir.file("d")); });
    CHECK(open_fd_count() == fds);
    CHECK(nothing_pending(tcp[0]));
    CHECK(nothing_pending(unix_l));
  });
}

TEST_CASE("TCP and UDP listener factories, which resolve names, raise cancelled at entry and bind nothing") {
  run([] {
    const std::size_t fds = open_fd_count();
    check_cancelled_at_entry([] { (void)net::create_tcp_listeners("127.0.0.1", 0); });
    check_cancelled_at_entry([] { (void)net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1"}, 0); });
    check_cancelled_at_entry([] { (void)net::create_udp_listeners("127.0.0.1", 0); });
    CHECK(open_fd_count() == fds);
  });
}

TEST_CASE("getaddrinfo and getnameinfo raise cancelled at entry, on the numeric fast path too") {
  run([] {
    const net::endpoint ep(ip::make_address("127.0.0.1"), 80);
    check_cancelled_at_entry([] { (void)net::getaddrinfo("127.0.0.1", "80"); });
    check_cancelled_at_entry([] { (void)net::getaddrinfo("localhost", "80"); });
    check_cancelled_at_entry([&] { (void)net::getnameinfo(ep, NI_NUMERICHOST | NI_NUMERICSERV); });
    check_cancelled_at_entry([&] { (void)net::getnameinfo(ep); });
  });
}

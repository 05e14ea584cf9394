#include "net/net_support.hpp"

#include <weft/lowlevel/park.hpp>

#include <boost/asio/io_context.hpp>

#include <thread>

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

using namespace weft_net_test;

namespace {

// A recognisable byte pattern of length n starting at offset.
std::string pattern(std::size_t n, std::size_t offset = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (offset + i) % 23);
  return s;
}

}  // namespace

// --- receiving ---------------------------------------------------------------------

TEST_CASE("recv returns what the peer sent, at most n bytes at a time") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      p.client.send_all("hello world");
      std::string got = p.server.recv(5);
      CHECK(got.size() <= 5);
      CHECK_FALSE(got.empty());
      while (got.size() < 11) got += p.server.recv(100);
      CHECK(got == "hello world");
      p.server.send_all("back");
      CHECK(p.client.recv(100) == "back");
    });
  }
}

TEST_CASE("recv(0) returns an empty string at once, without waiting for data") {
  run_real([] {
    auto p = tcp_pair();
    bool other_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      CHECK(p.server.recv(0).empty());  // no data is there: it must not wait
      CHECK_FALSE(other_ran);
    });
    // Pending data is left alone.
    p.client.send_all("x");
    CHECK(p.server.recv(0).empty());
    CHECK(p.server.recv(1) == "x");
  });
}

TEST_CASE("recv with a huge n returns what has arrived, at most max_recv_size bytes, and allocates no more") {
  static_assert(net::max_recv_size == 65536);
  run([] {
    auto p = unix_stream_pair();
    p.client.send_all("small");
    CHECK(p.server.recv(SIZE_MAX) == "small");
    const std::string big = pattern(300000);
    std::string got;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        p.client.send_all(big);
        p.client.send_eof();
      });
      for (std::size_t n : {SIZE_MAX, SIZE_MAX / 2, std::size_t{1} << 40, net::max_recv_size + 1}) {
        const std::string part = p.server.recv(n);
        CHECK_FALSE(part.empty());
        CHECK(part.size() <= 65536);
        CHECK(part.capacity() < 2 * 65536);
        got += part;
      }
      got += recv_all(p.server);
    });
    CHECK(got == big);
  });
}

TEST_CASE("recv returns an empty string at end of stream, every time it is called") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      p.client.send_all("last words");
      p.client.aclose();
      CHECK(recv_all(p.server) == "last words");
      // Every later call returns at once too (the guard only turns a hang
      // into a failure).
      for (int i = 0; i < 3; ++i) {
        CAPTURE(i);
        const std::optional<std::string> got = weft::move_on_after(2s).run([&] { return p.server.recv(10); });
        REQUIRE_MESSAGE(got.has_value(), "recv after end of stream blocked");
        CHECK(got->empty());
      }
      CHECK_FALSE(p.server.is_closing());
    });
  }
}

TEST_CASE("data and end of stream that arrived while nobody was reading are both delivered") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      p.client.send_all("abc");
      p.client.aclose();
      weft::sleep(20ms);  // the runtime polls its reactor meanwhile; nobody reads
      CHECK(p.server.recv(100) == "abc");
      const std::optional<std::string> eof = weft::move_on_after(2s).run([&] { return p.server.recv(100); });
      REQUIRE_MESSAGE(eof.has_value(), "recv blocked at an end of stream that had already arrived");
      CHECK(eof->empty());
    });
  }
}

TEST_CASE("data that arrived while nobody was reading is delivered across several recv calls") {
  run_real([] {
    auto p = tcp_pair();
    p.client.send_all("0123456789");
    weft::sleep(20ms);  // the runtime polls its reactor meanwhile; nobody reads
    std::string got;
    while (got.size() < 10) {
      const std::optional<std::string> part = weft::move_on_after(2s).run([&] { return p.server.recv(4); });
      REQUIRE_MESSAGE(part.has_value(), "recv blocked although data was waiting");
      CHECK(part->size() <= 4);
      got += *part;
    }
    CHECK(got == "0123456789");
    // After a short read (the last one), new data still wakes the reader.
    p.client.send_all("later");
    CHECK(p.server.recv(100) == "later");
  });
}

TEST_CASE("recv_into fills the buffer and returns the count; 0 means end of stream") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      p.client.send_all("abcdef");
      std::array<char, 4> small{};
      std::size_t n = p.server.recv_into(std::span<char>(small));
      REQUIRE(n >= 1);
      REQUIRE(n <= 4);
      std::string got(small.data(), n);
      std::array<std::byte, 64> big{};
      while (got.size() < 6) {
        n = p.server.recv_into(std::span<std::byte>(big));
        REQUIRE(n > 0);
        got.append(reinterpret_cast<const char*>(big.data()), n);
      }
      CHECK(got == "abcdef");
      p.client.send_eof();
      CHECK(p.server.recv_into(std::span<std::byte>(big)) == 0);
      CHECK(p.server.recv_into(std::span<char>(small)) == 0);
    });
  }
}

TEST_CASE("recv_into an empty buffer returns 0 at once") {
  run_real([] {
    auto p = tcp_pair();
    bool other_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      CHECK(p.server.recv_into(std::span<std::byte>()) == 0);
      CHECK_FALSE(other_ran);
    });
  });
}

// --- sending -----------------------------------------------------------------------

TEST_CASE("send_all sends every byte of a buffer much larger than the socket buffers") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      const std::string data = pattern(8 * 1024 * 1024);
      std::string received;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          weft::sleep(10ms);  // let the sender fill the buffers and park
          received = recv_all(p.server);
        });
        p.client.send_all(data);
        p.client.send_eof();
      });
      CHECK(received.size() == data.size());
      CHECK(received == data);
    });
  }
}

TEST_CASE("send_all of nothing returns at once") {
  run_real([] {
    auto p = tcp_pair();
    p.client.send_all(std::string_view());
    p.client.send_all(std::span<const std::byte>());
    p.client.send_all("z");
    CHECK(p.server.recv(10) == "z");
  });
}

TEST_CASE("send_all_from_iterable sends many small buffers in order") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      // 5000 buffers of 0..1022 bytes (some empty), ~2.5 MB in all: more
      // than the socket buffers take at once, and far more than the 64
      // buffers one sendmsg takes.
      std::vector<std::string> pieces;
      std::string expected;
      for (std::size_t i = 0; i < 5000; ++i) {
        pieces.push_back(pattern((i * 37) % 1023, i));
        expected += pieces.back();
      }
      std::vector<std::string_view> views(pieces.begin(), pieces.end());
      std::string received;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          weft::sleep(10ms);
          received = recv_all(p.server);
        });
        p.client.send_all_from_iterable(std::span<const std::string_view>(views));
        p.client.send_eof();
      });
      CHECK(received.size() == expected.size());
      CHECK(received == expected);
    });
  }
}

TEST_CASE("send_all_from_iterable takes byte spans too, and sends nothing for no or empty buffers") {
  run_real([] {
    auto p = tcp_pair();
    p.client.send_all_from_iterable(std::span<const std::string_view>());
    const std::array<std::string_view, 3> empties{"", "", ""};
    p.client.send_all_from_iterable(std::span<const std::string_view>(empties));
    const std::string a = "one,", b = "two,", c = "three";
    const std::array<std::span<const std::byte>, 4> spans{
        std::as_bytes(std::span<const char>(a)), std::span<const std::byte>(),
        std::as_bytes(std::span<const char>(b)), std::as_bytes(std::span<const char>(c))};
    p.client.send_all_from_iterable(std::span<const std::span<const std::byte>>(spans));
    p.client.send_eof();
    CHECK(recv_all(p.server) == "one,two,three");
  });
}

// --- half-close and close ----------------------------------------------------------

TEST_CASE("send_eof half-closes one direction; the other still works, then closes the same way") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      p.client.send_all("request");
      p.client.send_eof();
      CHECK(recv_all(p.server) == "request");  // end of stream after the data
      // The server can still answer, and the client can still receive.
      p.server.send_all("response");
      p.server.send_eof();
      CHECK(recv_all(p.client) == "response");
      CHECK_FALSE(p.client.is_closing());
      CHECK_FALSE(p.server.is_closing());
      // Sending after send_eof fails (EPIPE), the transport stays open.
      CHECK(error_of([&] { p.client.send_all("more"); }) == EPIPE);
    });
  }
}

TEST_CASE("aclose closes gracefully: the peer reads the data sent before, then end of stream") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      p.client.send_all(pattern(100000));
      p.client.aclose();
      CHECK(p.client.is_closing());
      CHECK(recv_all(p.server) == pattern(100000));
    });
  }
}

TEST_CASE("aclose in a cancelled task closes abortively: the peer sees a reset") {
  for (const auto host : {"127.0.0.1", "::1"}) {
    CAPTURE(std::string(host));
    run_real([&] {
      {  // cancelled by cancel(), no checkpoint reached yet
        auto p = tcp_pair(host);
        auto scope = weft::open_cancel_scope();
        scope.run([&](weft::cancel_scope& s) {
          s.cancel();
          p.server.aclose();
        });
        CHECK(p.server.is_closing());
        CHECK(error_of([&] { (void)p.client.recv(10); }) == ECONNRESET);
      }
      {  // cleaning up after a deadline cancelled a recv
        auto p = tcp_pair(host);
        bool cleaned_up = false;
        weft::move_on_after(20ms).run([&] {
          try {
            (void)p.server.recv(10);
          } catch (const weft::cancelled&) {
            cleaned_up = true;
            p.server.aclose();  // closes, then throws cancelled again
          }
        });
        CHECK(cleaned_up);
        CHECK(p.server.is_closing());
        CHECK(error_of([&] { (void)p.client.recv(10); }) == ECONNRESET);
      }
    });
  }
}

TEST_CASE("aclose outside any cancellation, after a scope caught its own, is graceful") {
  run_real([] {
    auto p = tcp_pair();
    auto scope = weft::move_on_after(10ms);
    scope.run([&] { (void)p.server.recv(10); });
    CHECK(scope.cancelled_caught());
    p.server.aclose();  // the cancellation is over: no reset
    CHECK(p.client.recv(10).empty());
  });
}

TEST_CASE("destroying a transport that is still open closes it abortively") {
  run_real([] {
    auto p = tcp_pair();
    { net::stream_transport doomed = std::move(p.server); }
    CHECK(error_of([&] { (void)p.client.recv(10); }) == ECONNRESET);
  });
}

TEST_CASE("aclose is idempotent and is_closing reports it") {
  run_real([] {
    auto p = tcp_pair();
    CHECK_FALSE(p.client.is_closing());
    p.client.aclose();
    CHECK(p.client.is_closing());
    CHECK_NOTHROW(p.client.aclose());
    CHECK(p.client.is_closing());
    CHECK_FALSE(p.client.socket().is_open());
  });
}

TEST_CASE("a moved-from transport is closing; the new owner works") {
  run_real([] {
    auto p = tcp_pair();
    net::stream_transport moved = std::move(p.client);
    CHECK(p.client.is_closing());
    CHECK_FALSE(moved.is_closing());
    CHECK(error_of([&] { p.client.send_all("x"); }) == EBADF);
    moved.send_all("via the new owner");
    CHECK(p.server.recv(100) == "via the new owner");

    // Move assignment closes what the target held.
    auto q = tcp_pair();
    q.server = std::move(moved);
    CHECK(q.client.recv(10).empty());  // q's old server end was closed
    q.server.send_all("!");
    CHECK(p.server.recv(10) == "!");
  });
}

TEST_CASE("every call on a closed transport fails with EBADF") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      p.client.aclose();
      auto& t = p.client;
      std::array<std::byte, 8> buf{};
      const std::array<std::string_view, 1> one{"x"};
      CHECK(error_of([&] { (void)t.recv(10); }) == EBADF);
      CHECK(error_of([&] { (void)t.recv(0); }) == EBADF);
      CHECK(error_of([&] { (void)t.recv_into(std::span<std::byte>(buf)); }) == EBADF);
      CHECK(error_of([&] { t.send_all("x"); }) == EBADF);
      CHECK(error_of([&] { t.send_all_from_iterable(std::span<const std::string_view>(one)); }) == EBADF);
      CHECK(error_of([&] { t.send_eof(); }) == EBADF);
      CHECK(error_of([&] { (void)t.local_address(); }) == EBADF);
      CHECK(error_of([&] { (void)t.peer_address(); }) == EBADF);
      CHECK(error_of([&] { (void)t.family(); }) == EBADF);
    });
  }
}

TEST_CASE("errors of a transport can be caught as std::system_error") {
  run_real([] {
    auto p = tcp_pair();
    p.client.aclose();
    try {
      (void)p.client.recv(10);
      FAIL("recv on a closed transport returned");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::error_code(EBADF, std::system_category()));
    } catch (const std::exception& e) {
      FAIL("not a std::system_error: " << std::string(e.what()));
    }
  });
}

TEST_CASE("aclose wakes a task parked in recv promptly with EBADF") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      int error = 0;
      bool woke = false;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          error = error_of([&] { (void)p.server.recv(10); });
          woke = true;
        });
        weft::testing::wait_all_tasks_blocked();
        CHECK_FALSE(woke);
        p.server.aclose();
      });
      CHECK(woke);
      CHECK(error == EBADF);
      // The peer sees the close.
      CHECK(p.client.recv(10).empty());
    });
  }
}

TEST_CASE("aclose wakes a task parked in send_all on a full socket buffer with EBADF") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      auto p = make_stream_pair(kind);
      fill_send_buffer(p.client);
      int error = 0;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] { error = error_of([&] { p.client.send_all(pattern(1 << 20)); }); });
        weft::testing::wait_all_tasks_blocked();
        p.client.aclose();
      });
      CHECK(error == EBADF);
    });
  }
}

TEST_CASE("two tasks receiving on one transport at once: the second gets busy_resource_error") {
  run_real([] {
    auto p = tcp_pair();
    std::string first;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { first = p.server.recv(10); });
      weft::testing::wait_all_tasks_blocked();
      std::array<std::byte, 4> buf{};
      CHECK_THROWS_AS((void)p.server.recv(10), weft::busy_resource_error);
      CHECK_THROWS_AS((void)p.server.recv_into(std::span<std::byte>(buf)), weft::busy_resource_error);
      p.client.send_all("data");
    });
    CHECK(first == "data");  // the first receiver was not disturbed
    p.client.send_all("again");
    CHECK(p.server.recv(10) == "again");  // free once the first is done
  });
}

TEST_CASE("two tasks sending on one transport at once: the second gets busy_resource_error") {
  run_real([] {
    auto p = tcp_pair();
    const std::size_t buffered = fill_send_buffer(p.client);
    const std::string big = pattern(1 << 20);
    std::string received;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        p.client.send_all(big);
        p.client.send_eof();
      });
      weft::testing::wait_all_tasks_blocked();
      const std::array<std::string_view, 2> two{"a", "b"};
      CHECK_THROWS_AS(p.client.send_all("x"), weft::busy_resource_error);
      CHECK_THROWS_AS(p.client.send_all_from_iterable(std::span<const std::string_view>(two)),
                      weft::busy_resource_error);
      tg.start_soon([&] { received = recv_all(p.server); });
    });
    // Nothing from the refused calls got into the stream.
    CHECK(received.size() == buffered + big.size());
    CHECK(received.substr(buffered) == big);
  });
}

// --- attributes and options --------------------------------------------------------

TEST_CASE("a TCP transport reports its family, local and peer addresses") {
  for (const auto host : {"127.0.0.1", "::1"}) {
    CAPTURE(std::string(host));
    run_real([&] {
      auto listeners = net::create_tcp_listeners(host, 0);
      REQUIRE(listeners.size() == 1);
      const net::endpoint server_ep = listeners[0].local_address();
      auto client = net::create_tcp_connection(host, server_ep.port());
      auto server = listeners[0].accept();
      const int family = std::string(host) == "::1" ? AF_INET6 : AF_INET;
      CHECK(client.family() == family);
      CHECK(server.family() == family);
      CHECK(client.peer_address() == server_ep);
      CHECK(server.local_address() == server_ep);
      CHECK(server.peer_address() == client.local_address());
      CHECK(client.local_address().address().is_loopback());
      CHECK(client.local_address().port() != 0);
      CHECK(client.socket().is_open());
      CHECK(sockopt_int(client.socket().native_handle(), SOL_SOCKET, SO_TYPE) == SOCK_STREAM);
    });
  }
}

TEST_CASE("a Unix stream transport reports family AF_UNIX and its addresses") {
  run_real([] {
    auto p = unix_stream_pair();
    CHECK(p.client.family() == AF_UNIX);
    CHECK(p.client.local_address().is_unix());
    CHECK(p.client.local_address().path().empty());  // socketpair ends are unnamed
    CHECK(p.server.peer_address().is_unix());
  });
}

TEST_CASE("TCP_NODELAY and keepalive can be set and read back") {
  run_real([] {
    auto p = tcp_pair();
    const int fd = p.client.socket().native_handle();
    CHECK_FALSE(p.client.keepalive());
    p.client.set_nodelay(true);
    CHECK(p.client.nodelay());
    CHECK(sockopt_int(fd, IPPROTO_TCP, TCP_NODELAY) != 0);
    p.client.set_nodelay(false);
    CHECK_FALSE(p.client.nodelay());
    CHECK(sockopt_int(fd, IPPROTO_TCP, TCP_NODELAY) == 0);
    p.client.set_keepalive(true);
    CHECK(p.client.keepalive());
    CHECK(sockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE) != 0);
    p.client.set_keepalive(false);
    CHECK_FALSE(p.client.keepalive());
    // The transport still works with the options changed.
    p.client.set_nodelay(true);
    p.client.send_all("ok");
    CHECK(p.server.recv(10) == "ok");
  });
}

TEST_CASE("recv and send_all are cancel points even when they would not block") {
  run_real([] {
    auto p = tcp_pair();
    p.client.send_all("ready");
    bool received = false, sent = false;
    weft::open_cancel_scope().run([&](weft::cancel_scope& s) {
      s.cancel();
      try {
        (void)p.server.recv(10);
        received = true;
      } catch (const weft::cancelled&) {
      }
      p.server.send_all("x");
      sent = true;
    });
    CHECK_FALSE(received);
    CHECK_FALSE(sent);
    CHECK(p.server.recv(10) == "ready");  // the data is still there
  });
}

TEST_CASE("a transport used from a task of another runtime throws logic_error and is left as it was") {
  run_real([&] {
    auto pair = tcp_pair();
    auto datagrams = unix_datagram_pair();
    std::string recv_error, send_error, datagram_error;
    std::thread other([&] {
      weft::run([&] {
        try {
          pair.server.recv(10);
        } catch (const std::logic_error& e) {
          recv_error = e.what();
        }
        CHECK_THROWS_AS(pair.client.send_all("x"), std::logic_error);
        try {
          datagrams.first.send("x");
        } catch (const std::logic_error& e) {
          datagram_error = e.what();
        }
      });
    });
    other.join();
    CHECK(recv_error.find("runtime that opened it") != std::string::npos);
    CHECK(datagram_error.find("runtime that opened it") != std::string::npos);
    // Still usable where it belongs.
    pair.client.send_all("ok");
    CHECK(pair.server.recv(10) == "ok");
  });
}

TEST_CASE("transports and listeners take only sockets of the running runtime's io_context") {
  run_real([] {
    boost::asio::io_context other;
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    const auto unix_stream = boost::asio::generic::stream_protocol(AF_UNIX, 0);
    const auto unix_datagram = boost::asio::generic::datagram_protocol(AF_UNIX, 0);
    auto rejects = [](auto make) {
      try {
        make();
        FAIL("accepted");
      } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("another io_context") != std::string::npos);
      }
    };
    rejects([&] { net::stream_transport(net::stream_transport::socket_type(other, unix_stream, fds[0])); });
    rejects([&] {
      net::datagram_transport(net::datagram_transport::socket_type(other, unix_datagram, ::socket(AF_UNIX, SOCK_DGRAM, 0)));
    });
    rejects([&] {
      net::datagram_listener(net::datagram_listener::socket_type(other, unix_datagram, ::socket(AF_UNIX, SOCK_DGRAM, 0)));
    });
    rejects([&] {
      net::stream_listener(net::stream_listener::acceptor_type(other, unix_stream, ::socket(AF_UNIX, SOCK_STREAM, 0)));
    });
    // The same socket on the runtime's own io_context is taken.
    net::stream_transport t(net::stream_transport::socket_type(weft::lowlevel::io_context(), unix_stream, fds[1]));
    CHECK_FALSE(t.is_closing());
  });
}

TEST_CASE("a transport used outside any runtime throws logic_error") {
  run_real([&] {
    auto pair = tcp_pair();
    std::string error;
    std::thread plain([&] {
      try {
        pair.server.recv(10);
      } catch (const std::logic_error& e) {
        error = e.what();
      }
    });
    plain.join();
    CHECK(error.find("runtime that opened it") != std::string::npos);
  });
}

// The first transport that outlives its runtime creates the process's
// io_context for such transports, never destroyed on purpose: its epoll,
// eventfd and timerfd descriptors stay open.
TEST_CASE("transports and listeners that outlive their runtime are closed at its end, refuse use, and are destroyed safely" *
          weft_test::no_descriptor_check{"the process-wide io_context of orphaned transports opens descriptors"}) {
  std::optional<stream_pair> kept;
  std::optional<std::pair<net::datagram_transport, net::datagram_transport>> datagrams;
  std::optional<net::stream_listener> listener;
  run_real([&] {
    kept.emplace(tcp_pair());
    datagrams.emplace(unix_datagram_pair());
    listener.emplace(std::move(net::create_tcp_listeners("127.0.0.1", 0).at(0)));
  });
  CHECK_FALSE(kept->server.socket().is_open());  // closed when the runtime ended
  CHECK_THROWS_WITH_AS(kept->server.recv(10), doctest::Contains("runtime that opened it"), std::logic_error);
  // In a later runtime on the same thread: its reactor is not the socket's.
  run_real([&] {
    CHECK_THROWS_WITH_AS(kept->server.recv(10), doctest::Contains("runtime that opened it"), std::logic_error);
    CHECK_THROWS_AS(kept->client.send_all("x"), std::logic_error);
    CHECK_THROWS_AS(datagrams->first.recv(), std::logic_error);
    CHECK_THROWS_AS(datagrams->second.send("x"), std::logic_error);
    CHECK(error_of([&] { (void)listener->accept(); }) == EBADF);
  });
  kept.reset();
  datagrams.reset();
  listener.reset();
}

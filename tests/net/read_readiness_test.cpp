// The lowlevel read readiness contract (lowlevel/read_readiness.hpp), on
// the sockets of real transports, and what stream transports build on it:
// a short read spares the next read its EAGAIN, without ever leaving an end
// of stream or a reset behind.
#include "net/net_support.hpp"

#include <weft/lowlevel/park.hpp>
#include <weft/lowlevel/read_readiness.hpp>

#include <boost/asio/error.hpp>

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <optional>
#include <string>

using namespace weft_net_test;
namespace lowlevel = weft::lowlevel;

namespace {

/// One recv(2) that does not wait: the byte count, 0 at end of stream,
/// -errno on failure.
long read_now(net::stream_transport& t, std::size_t n = 4096) {
  std::string buf(n, '\0');
  const ssize_t r = ::recv(t.socket().native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
  return r >= 0 ? static_cast<long>(r) : -errno;
}

/// A read_wait and what it reported; finish() parks the task until it has.
struct waiter {
  lowlevel::read_wait wait;
  bool done = false;
  boost::system::error_code ec;
  bool abandoned = false;
  int completions = 0;
  lowlevel::task_ref parked;

  void start(net::stream_transport& t) { wait.start(t.socket(), &on_done, this); }
  static void on_done(void* context, const boost::system::error_code& ec, bool abandoned) noexcept {
    auto& w = *static_cast<waiter*>(context);
    w.ec = ec;
    w.abandoned = abandoned;
    w.done = true;
    ++w.completions;
    if (w.parked) lowlevel::reschedule(std::exchange(w.parked, lowlevel::task_ref()));
  }
  /// Parks until the callback has run; a cancellation of the task cancels
  /// the wait (and still waits for its callback).
  void finish() {
    auto abort = [&]() noexcept {
      wait.cancel();
      return lowlevel::abort_result::failed;
    };
    while (!done) {
      parked = lowlevel::current_task();
      lowlevel::park(abort);
    }
  }
};

/// A first short read on p.server, noted: from then on the reactor
/// reports the peer's end of stream for the socket.
void first_short_read(stream_pair& p) {
  p.client.send_all("a");
  weft::sleep(20ms);
  CHECK(read_now(p.server) == 1);
  lowlevel::note_short_read(p.server.socket());
}

/// One recv on `t`, given 2 s: what it returned, "reset" if it failed with
/// ECONNRESET, nothing if it was still waiting then.
std::optional<std::string> recv_or_reset(net::stream_transport& t) {
  return weft::move_on_after(2s).run([&]() -> std::string {
    try {
      return t.recv(100);
    } catch (const std::system_error& e) {
      if (e.code().value() == ECONNRESET) return "reset";
      throw;
    }
  });
}

}  // namespace

TEST_CASE("read readiness: an EAGAIN noted clears it, and a read_wait then completes at the next data") {
  run_real([] {
    auto p = tcp_pair();
    auto& s = p.server.socket();
    CHECK(lowlevel::read_may_find_data(s));  // a new socket: try first
    CHECK(read_now(p.server) == -EAGAIN);
    lowlevel::note_read_drained(s);
    CHECK_FALSE(lowlevel::read_may_find_data(s));

    waiter w;
    w.start(p.server);
    weft::sleep(20ms);  // the loop polls its reactor meanwhile: nothing to report
    CHECK_FALSE(w.done);
    p.client.send_all("ping");
    w.finish();
    CHECK_FALSE(w.ec);
    CHECK_FALSE(w.abandoned);
    CHECK(w.completions == 1);
    CHECK(lowlevel::read_may_find_data(s));  // the reactor reported it readable
    CHECK(read_now(p.server) == 4);
  });
}

TEST_CASE("read readiness: a read_wait started while data may be there completes at once") {
  run_real([] {
    auto p = tcp_pair();
    p.client.send_all("x");
    weft::sleep(20ms);
    REQUIRE(lowlevel::read_may_find_data(p.server.socket()));
    waiter w;
    w.start(p.server);
    CHECK_FALSE(w.done);  // never from inside start()
    w.finish();
    CHECK_FALSE(w.ec);
    CHECK(read_now(p.server) == 1);
  });
}

TEST_CASE("read readiness: a read_wait is cancelled by cancel(), by closing the socket, and reports a closed socket") {
  run_real([] {
    SUBCASE("cancel") {
      auto p = tcp_pair();
      waiter w;
      CHECK(read_now(p.server) == -EAGAIN);
      lowlevel::note_read_drained(p.server.socket());
      w.start(p.server);
      weft::sleep(10ms);
      REQUIRE_FALSE(w.done);
      w.wait.cancel();
      w.finish();
      CHECK(w.ec == boost::asio::error::operation_aborted);
      w.wait.cancel();  // completed: nothing happens
      CHECK(w.completions == 1);
      // The socket still works afterwards.
      p.client.send_all("after");
      CHECK(p.server.recv(100) == "after");
    }
    SUBCASE("a cancelled task cancels its wait through its abort") {
      auto p = tcp_pair();
      waiter w;
      CHECK(read_now(p.server) == -EAGAIN);
      lowlevel::note_read_drained(p.server.socket());
      w.start(p.server);
      weft::move_on_after(10ms).run([&] { w.finish(); });
      CHECK(w.done);
      CHECK(w.ec == boost::asio::error::operation_aborted);
    }
    SUBCASE("closing the socket") {
      auto p = tcp_pair();
      waiter w;
      CHECK(read_now(p.server) == -EAGAIN);
      lowlevel::note_read_drained(p.server.socket());
      w.start(p.server);
      weft::sleep(10ms);
      p.server.socket().close();
      w.finish();
      CHECK(w.ec == boost::asio::error::operation_aborted);
    }
    SUBCASE("a closed socket") {
      auto p = tcp_pair();
      p.server.socket().close();
      CHECK(lowlevel::read_may_find_data(p.server.socket()));  // closed: let the read report it
      lowlevel::note_read_drained(p.server.socket());          // nothing to clear
      lowlevel::note_short_read(p.server.socket());
      waiter w;
      w.start(p.server);
      w.finish();
      CHECK(w.ec == boost::asio::error::bad_descriptor);
    }
  });
}

TEST_CASE("read readiness: a short read of TCP clears it; of a Unix socket it does not") {
  run_real([] {
    SUBCASE("tcp") {
      auto p = tcp_pair();
      p.client.send_all("abc");
      weft::sleep(20ms);  // reported readable
      REQUIRE(lowlevel::read_may_find_data(p.server.socket()));
      CHECK(read_now(p.server) == 3);
      lowlevel::note_short_read(p.server.socket());
      CHECK_FALSE(lowlevel::read_may_find_data(p.server.socket()));
      // Data arriving later is a new edge: a read_wait completes.
      waiter w;
      w.start(p.server);
      p.client.send_all("de");
      w.finish();
      CHECK_FALSE(w.ec);
      CHECK(read_now(p.server) == 2);
    }
    SUBCASE("unix") {
      auto p = unix_stream_pair();
      p.client.send_all("abc");
      weft::sleep(20ms);
      CHECK(read_now(p.server) == 3);
      lowlevel::note_short_read(p.server.socket());
      CHECK(lowlevel::read_may_find_data(p.server.socket()));
    }
  });
}

TEST_CASE("read readiness: a UDP receive that found no second datagram clears it; one that took a second does not") {
  run_real([] {
    auto listeners = weft::net::create_udp_listeners("127.0.0.1", 0);
    weft::net::datagram_listener& server = listeners[0];
    auto client = weft::net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), server.local_address().port()));
    client.send("one");
    CHECK(server.recv_from().first == "one");
    CHECK_FALSE(lowlevel::read_may_find_data(server.socket()));  // the next receive waits first
    client.send("two");
    client.send("three");
    CHECK(server.recv_from().first == "two");  // "three" read with it
    CHECK(lowlevel::read_may_find_data(server.socket()));
    CHECK(server.recv_from().first == "three");
    CHECK(lowlevel::read_may_find_data(server.socket()));  // nothing read: the next receive tries first
  });
}

TEST_CASE("read readiness: a short read does not clear it once the peer's end of stream or a reset was reported") {
  run_real([] {
    SUBCASE("end of stream") {
      auto p = tcp_pair();
      first_short_read(p);
      p.client.send_all("abc");
      p.client.aclose();
      weft::sleep(20ms);  // data and end of stream reported; nobody reads
      CHECK(read_now(p.server) == 3);
      lowlevel::note_short_read(p.server.socket());
      CHECK(lowlevel::read_may_find_data(p.server.socket()));
      CHECK(read_now(p.server) == 0);
    }
    SUBCASE("end of stream before the first short read") {
      auto p = tcp_pair();
      p.client.send_all("abc");
      p.client.aclose();
      weft::sleep(20ms);
      CHECK(read_now(p.server) == 3);
      lowlevel::note_short_read(p.server.socket());
      // The end of stream came before the reactor was asked to report it:
      // the flag may be cleared, but then a new edge reports it.
      if (!lowlevel::read_may_find_data(p.server.socket())) {
        waiter w;
        w.start(p.server);
        // After 2 s the scope cancels the wait: finish() returns either way.
        weft::move_on_after(2s).run([&] { w.finish(); });
        CHECK_MESSAGE(!w.ec, "the end of stream was not reported: a read would wait forever");
      }
      CHECK(read_now(p.server) == 0);
    }
    SUBCASE("reset") {
      auto p = tcp_pair();
      first_short_read(p);
      p.client.send_all("abc");
      set_linger_zero(p.client.socket().native_handle());
      p.client.socket().close();
      weft::sleep(20ms);
      const long first = read_now(p.server);
      CHECK((first == 3 || first == -ECONNRESET));
      lowlevel::note_short_read(p.server.socket());
      CHECK(lowlevel::read_may_find_data(p.server.socket()));
    }
  });
}

TEST_CASE("recv after a short read: data, end of stream and resets that arrive later all wake it") {
  for (const auto kind : all_stream_kinds) {
    CAPTURE(std::string(name_of(kind)));
    run_real([&] {
      SUBCASE("end of stream") {
        auto p = make_stream_pair(kind);
        p.client.send_all("abc");
        CHECK(p.server.recv(100) == "abc");  // short
        weft::open_task_group([&](weft::task_group& tg) {
          tg.start_soon([&] {
            weft::sleep(20ms);
            p.client.aclose();
          });
          const auto eof = weft::move_on_after(2s).run([&] { return p.server.recv(100); });
          REQUIRE_MESSAGE(eof.has_value(), "recv missed an end of stream");
          CHECK(eof->empty());
        });
      }
      SUBCASE("reset") {
        auto p = make_stream_pair(kind);
        p.client.send_all("abc");
        CHECK(p.server.recv(100) == "abc");
        weft::open_task_group([&](weft::task_group& tg) {
          tg.start_soon([&] {
            weft::sleep(20ms);
            set_linger_zero(p.client.socket().native_handle());
            p.client.socket().close();
          });
          const std::optional<std::string> got = recv_or_reset(p.server);
          REQUIRE_MESSAGE(got.has_value(), "recv missed a reset");
          CHECK((*got == "reset" || got->empty()));  // a Unix socket reports end of stream
        });
      }
    });
  }
}

TEST_CASE("data, then a reset, that arrived while nobody was reading: recv never blocks on them") {
  run_real([] {
    auto p = tcp_pair();
    p.client.send_all("a");
    CHECK(p.server.recv(100) == "a");  // short: the next read waits for an edge
    p.client.send_all("abc");
    set_linger_zero(p.client.socket().native_handle());
    p.client.socket().close();
    weft::sleep(20ms);  // data and reset reported; nobody reads
    for (int i = 0; i < 3; ++i) {
      const std::optional<std::string> got = recv_or_reset(p.server);
      REQUIRE_MESSAGE(got.has_value(), "recv blocked on a reset that had arrived");
      CHECK((*got == "abc" || *got == "reset" || got->empty()));
    }
  });
}

TEST_CASE("a task whose socket always has data lets other tasks run at every recv") {
  run_real([] {
    auto p = tcp_pair();
    const std::string chunk(64 * 1024, 'x');
    p.client.send_all(chunk);  // fits the socket buffers
    weft::sleep(20ms);
    int others = 0;
    bool reading = true;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        while (reading) {
          ++others;
          weft::coro_yield();
        }
      });
      weft::coro_yield();  // the other task is running
      std::array<char, 1024> buf;
      for (int i = 0; i < 32; ++i) {
        const int before = others;
        REQUIRE(p.server.recv_into(std::span<char>(buf)) == buf.size());  // full reads: data was there
        CHECK(others > before);
      }
      reading = false;
    });
  });
}

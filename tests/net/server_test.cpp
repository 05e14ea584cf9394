// weft::net::stream_server and datagram_server: handler errors isolated and
// reported once, graceful shutdown and its grace, limits, the idle timeout,
// signals; and the defaults every listener now has (backlog, TCP_NODELAY).
#include "net/net_support.hpp"

#include <weft/net/server.hpp>
#include <weft/sync/event.hpp>

#include <sys/ioctl.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

using namespace weft_net_test;
using weft_test::reports;

namespace {

/// Waits until cond holds: first for everything else to block (no time
/// passes), then in steps of 1 ms of the runtime's clock (instant under
/// autojump). Fails the test after `limit` seconds.
template <class F>
void wait_for(F&& cond, const char* what, double limit = 60) {
  const double until = now_s() + limit;
  while (!cond()) {
    weft::testing::wait_all_tasks_blocked();
    if (cond()) return;
    if (now_s() > until) FAIL("never happened: " << what);
    weft::sleep(1ms);
  }
}

/// Where a server of one kind listens, and how clients reach it.
struct site {
  stream_kind kind;
  temp_dir dir;
  std::uint16_t port = 0;

  std::vector<net::stream_listener> listen() {
    if (kind == stream_kind::unix_socket) {
      std::vector<net::stream_listener> ls;
      ls.push_back(net::create_unix_stream_listener(dir.file("s")));
      return ls;
    }
    auto ls = net::create_tcp_listeners(kind == stream_kind::tcp4 ? "127.0.0.1" : "::1", 0);
    port = ls.front().local_address().port();
    return ls;
  }
  net::stream_transport connect() const {
    if (kind == stream_kind::unix_socket) return net::create_unix_stream_connection(dir.file("s"));
    return net::create_tcp_connection(kind == stream_kind::tcp4 ? "127.0.0.1" : "::1", port);
  }
};

/// Options with one field set (designated initializers would trip
/// -Wmissing-field-initializers).
template <class Options, class F>
Options with(F&& set) {
  Options o;
  set(o);
  return o;
}

/// Bytes waiting to be read on a raw socket.
int pending_bytes(net::stream_transport& t) {
  int n = 0;
  ::ioctl(t.socket().native_handle(), FIONREAD, &n);
  return n;
}

/// Echoes until end of stream; "fail" makes it throw, "flood" makes it send
/// far more than any socket buffer holds.
void echo_or_fail(net::stream_transport& t) {
  char buf[4096];
  for (;;) {
    const std::size_t n = t.recv_into(std::span<char>(buf));
    if (n == 0) return;
    const std::string_view got(buf, n);
    if (got == "fail") throw std::runtime_error("the handler's own bug");
    if (got == "flood") {
      const std::string big(1 << 20, 'f');
      for (;;) t.send_all(big);
    }
    t.send_all(got);
  }
}

}  // namespace

// --- errors --------------------------------------------------------------------------

TEST_CASE("stream_server: a reset, a client gone without its data and a failing handler end only their connection") {
  for (const stream_kind kind : all_stream_kinds) {
    CAPTURE(name_of(kind));
    reports seen;
    site where{kind, {}};
    std::string failing_client;
    run([&] {
      net::stream_server server(where.listen());
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] { server.serve(echo_or_fail); });

        {  // Reset while its handler waits to read.
          auto c = where.connect();
          c.send_all("one");
          CHECK(c.recv(16) == "one");
        }  // destroyed without aclose(): closed abortively
        {  // Leaves without reading what the handler sends it: the handler's send fails.
          auto c = where.connect();
          c.send_all("flood");
          wait_for([&] { return pending_bytes(c) > 0; }, "the flood arrives");
          c.aclose();  // unread data: the kernel resets the connection
        }
        {  // The handler fails.
          auto c = where.connect();
          if (kind != stream_kind::unix_socket) failing_client = c.local_address().to_string();
          c.send_all("fail");
          CHECK(c.recv(16).empty());  // its transport closed gracefully all the same
          c.aclose();
        }
        wait_for([&] { return server.stats().active == 0; }, "the three handlers end");
        {  // The server still serves.
          auto c = where.connect();
          const std::string message(300000, 'm');
          weft::open_task_group([&](weft::task_group& io) {
            io.start_soon([&] {
              c.send_all(message);
              c.send_eof();
            });
            CHECK(recv_all(c) == message);
          });
          c.aclose();
        }
        wait_for([&] { return server.stats().active == 0; }, "the last handler ends");
        server.shutdown(1s);
      });
      // A Unix stream socket has no reset: the first handler reads end of stream.
      const bool unix_socket = kind == stream_kind::unix_socket;
      const net::server_stats s = server.stats();
      CHECK(s.accepted == 4);
      CHECK(s.completed == (unix_socket ? 2 : 1));
      CHECK(s.peer_errors == (unix_socket ? 1 : 2));
      CHECK(s.handler_errors == 1);
      CHECK(s.cancelled == 0);
      CHECK(s.active == 0);
    });
    REQUIRE(seen.count() == 1);
    const std::string context = seen.contexts().front();
    CAPTURE(context);
    CHECK(context.find("weft::net::stream_server") != std::string::npos);
    if (kind == stream_kind::unix_socket)
      CHECK(context.find("an unnamed peer") != std::string::npos);
    else
      CHECK(context.find(failing_client) != std::string::npos);
    CHECK(weft_test::message_of(seen.errors().front()) == "the handler's own bug");
  }
}

TEST_CASE("stream_server: weft::cancelled from a handler is not swallowed; cancelling serve() cancels every handler") {
  run([&] {
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
    const auto port = server.local_addresses().front().port();
    bool handler_cancelled = false;
    auto scope = weft::open_cancel_scope();
    bool serve_cancelled = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          try {
            server.serve([&](net::stream_transport&) {
              try {
                weft::sleep_forever();
              } catch (const weft::cancelled&) {
                handler_cancelled = true;
                throw;
              }
            });
          } catch (const weft::cancelled&) {
            serve_cancelled = true;
            throw;
          }
        });
      });
      auto c = net::create_tcp_connection("127.0.0.1", port);
      wait_for([&] { return server.stats().active == 1; }, "the handler starts");
      scope.cancel();
      // Cancelled, its transport closes abortively: the client sees a reset.
      CHECK(error_of([&] { (void)c.recv(1); }) == ECONNRESET);
    });
    CHECK(scope.cancelled_caught());
    CHECK(serve_cancelled);
    CHECK(handler_cancelled);
    CHECK(server.stats().cancelled == 1);
    CHECK(server.stats().active == 0);
  });
}

// --- shutdown ------------------------------------------------------------------------

TEST_CASE("stream_server::shutdown: listeners close at once, running handlers get their grace, the rest are cancelled") {
  run([&] {
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
    const auto port = server.local_addresses().front().port();
    bool slow_saw_shutdown = false;
    double served_until = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        server.serve([&](net::stream_transport& t) {
          const std::string what = t.recv(16);
          if (what == "slow") {
            weft::sleep(2s);
            slow_saw_shutdown = server.shutting_down();
            t.send_all("done");
          } else {
            weft::sleep_forever();
          }
        });
        served_until = now_s();
      });
      auto slow = net::create_tcp_connection("127.0.0.1", port);
      auto stuck = net::create_tcp_connection("127.0.0.1", port);
      slow.send_all("slow");
      stuck.send_all("stuck");
      wait_for([&] { return server.stats().active == 2; }, "both handlers start");
      weft::sleep_until(weft_test::at(0.5));
      CHECK_FALSE(server.shutting_down());
      server.shutdown(5s);
      CHECK(server.shutting_down());
      wait_for([&] { return server.local_addresses().empty(); }, "the listener closes");
      CHECK(now_s() == doctest::Approx(0.5).epsilon(0.01));
      CHECK_THROWS_AS(net::create_tcp_connection("127.0.0.1", port), net::connect_error);

      CHECK(slow.recv(16) == "done");  // within the grace
      CHECK(now_s() == doctest::Approx(2.0));
      CHECK(slow.recv(16).empty());
      CHECK(error_of([&] { (void)stuck.recv(16); }) == ECONNRESET);  // cancelled when the grace ran out
      CHECK(now_s() == doctest::Approx(5.5));
    });
    CHECK(slow_saw_shutdown);
    CHECK(served_until == doctest::Approx(5.5));
    CHECK(server.stats().completed == 1);
    CHECK(server.stats().cancelled == 1);
  });
}

TEST_CASE("stream_server::shutdown: no grace is waited out once every handler ended; a second call only shortens it") {
  run([&] {
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
    const auto port = server.local_addresses().front().port();
    double served_until = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        server.serve([&](net::stream_transport& t) {
          server.wait_shutdown();  // a handler that ends early when shutdown starts
          t.send_all("bye");
        });
        served_until = now_s();
      });
      auto c = net::create_tcp_connection("127.0.0.1", port);
      wait_for([&] { return server.stats().active == 1; }, "the handler starts");
      weft::sleep_until(weft_test::at(1));
      server.shutdown(100s);
      CHECK(c.recv(16) == "bye");
    });
    CHECK(served_until == doctest::Approx(1.0));
    CHECK(server.stats().completed == 1);
  });
  run([&] {
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
    const auto port = server.local_addresses().front().port();
    double served_until = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        server.serve([&](net::stream_transport&) { weft::sleep_forever(); });
        served_until = now_s();
      });
      auto c = net::create_tcp_connection("127.0.0.1", port);
      wait_for([&] { return server.stats().active == 1; }, "the handler starts");
      server.shutdown(100s);
      weft::sleep_until(weft_test::at(1));
      server.shutdown(2s);   // ends at t = 3, not 100
      server.shutdown(50s);  // cannot lengthen it again
      check_invalid_argument([&] { server.shutdown(-1s); }, {"stream_server::shutdown", "grace"});
    });
    CHECK(served_until == doctest::Approx(3.0));
    CHECK(server.stats().cancelled == 1);
  });
}

TEST_CASE("stream_server::until_shutdown: what it runs is dropped at once when shutdown starts, the rest keeps its grace") {
  run([&] {
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
    const auto port = server.local_addresses().front().port();
    std::vector<std::string> log;
    double served_until = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        server.serve([&](net::stream_transport& t) {
          for (;;) {
            std::string request;
            // Waiting for the next request may be dropped at shutdown...
            if (!server.until_shutdown([&] { request = t.recv(16); })) {
              log.push_back("idle connection dropped at " + std::to_string(now_s()));
              return;
            }
            if (request.empty()) return;
            weft::sleep(2s);  // ...serving one is not
            t.send_all("done " + request);
          }
        });
        served_until = now_s();
      });
      auto idle = net::create_tcp_connection("127.0.0.1", port);
      auto busy = net::create_tcp_connection("127.0.0.1", port);
      busy.send_all("r1");
      wait_for([&] { return server.stats().active == 2; }, "both handlers start");
      weft::sleep_until(weft_test::at(1));
      server.shutdown(10s);
      CHECK(idle.recv(16).empty());  // closed at once
      CHECK(now_s() == doctest::Approx(1.0));
      CHECK(busy.recv(16) == "done r1");  // its request finished
      CHECK(now_s() == doctest::Approx(2.0));
      CHECK(busy.recv(16).empty());  // and then its wait for the next one was dropped
      // Once shutdown started, until_shutdown does not run its function.
      bool ran = false;
      CHECK_FALSE(server.until_shutdown([&] { ran = true; }));
      CHECK_FALSE(ran);
    });
    CHECK(served_until == doctest::Approx(2.0));
    REQUIRE(log.size() == 2);
    CHECK(server.stats().completed == 2);
    CHECK(server.stats().cancelled == 0);
  });
}

TEST_CASE("stream_server: shutdown before serve() makes serve() return at once; a server serves once") {
  run([&] {
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
    server.shutdown(1s);
    server.serve([](net::stream_transport&) { FAIL("no connection was made"); });
    CHECK(now_s() == 0);
    CHECK(server.local_addresses().empty());
    CHECK_THROWS_AS(server.serve([](net::stream_transport&) {}), std::logic_error);
  });
}

TEST_CASE("stream_server: bad arguments are rejected with the reason") {
  run([&] {
    check_invalid_argument([] { net::stream_server s(std::vector<net::stream_listener>{}); }, {"no listener"});
    {
      auto ls = net::create_tcp_listeners("127.0.0.1", 0);
      ls.front().aclose();
      check_invalid_argument([&] { net::stream_server s(std::move(ls)); }, {"closed"});
    }
    check_invalid_argument(
        [] { net::stream_server s(net::create_tcp_listeners("127.0.0.1", 0), with<net::stream_server_options>([](auto& o) { o.idle_timeout = weft::duration(0); })); },
        {"idle_timeout"});
    check_invalid_argument(
        [] { net::stream_server s(net::create_tcp_listeners("127.0.0.1", 0), with<net::stream_server_options>([](auto& o) { o.shutdown_signals = {0}; })); },
        {"not a signal"});
    check_invalid_argument(
        [] { net::stream_server s(net::create_tcp_listeners("127.0.0.1", 0), with<net::stream_server_options>([](auto& o) { o.shutdown_grace = -1s; })); },
        {"shutdown_grace"});
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
    check_invalid_argument([&] { server.serve({}); }, {"handler is empty"});
    check_invalid_argument([] { net::datagram_server s(net::create_udp_listeners("127.0.0.1", 0), with<net::datagram_server_options>([](auto& o) { o.max_in_flight = 0; })); },
                           {"max_in_flight"});
  });
}

// --- limits --------------------------------------------------------------------------

TEST_CASE("stream_server: beyond max_connections, connections wait in the backlog until one ends") {
  run([&] {
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0), with<net::stream_server_options>([](auto& o) { o.max_connections = 1; }));
    const auto port = server.local_addresses().front().port();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { server.serve(echo_or_fail); });
      auto first = net::create_tcp_connection("127.0.0.1", port);
      first.send_all("a");
      CHECK(first.recv(16) == "a");
      auto second = net::create_tcp_connection("127.0.0.1", port);  // completes: the kernel's backlog
      second.send_all("b");
      auto wait = weft::move_on_after(10s);
      wait.run([&] { (void)second.recv(16); });
      CHECK(wait.cancelled_caught());  // not served meanwhile
      CHECK(server.stats().accepted == 1);
      first.aclose();
      CHECK(second.recv(16) == "b");
      CHECK(server.stats().accepted == 2);
      second.aclose();
      wait_for([&] { return server.stats().active == 0; }, "both handlers end");
      server.shutdown(1s);
    });
  });
}

TEST_CASE("stream_server: max_connections is shared by several listeners; a listener waiting holds no place") {
  run([&] {
    temp_dir dir;
    auto listeners = net::create_tcp_listeners("127.0.0.1", 0);
    listeners.push_back(net::create_unix_stream_listener(dir.file("s")));
    const auto port = listeners.front().local_address().port();
    net::stream_server server(std::move(listeners), with<net::stream_server_options>([](auto& o) { o.max_connections = 2; }));
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { server.serve(echo_or_fail); });
      // Two TCP connections are served although the Unix listener waits too.
      auto first = net::create_tcp_connection("127.0.0.1", port);
      auto second = net::create_tcp_connection("127.0.0.1", port);
      first.send_all("1");
      second.send_all("2");
      CHECK(first.recv(16) == "1");
      CHECK(second.recv(16) == "2");
      // A third, on either listener, waits.
      auto third = net::create_unix_stream_connection(dir.file("s"));
      third.send_all("3");
      auto wait = weft::move_on_after(10s);
      wait.run([&] { (void)third.recv(16); });
      CHECK(wait.cancelled_caught());
      second.aclose();
      CHECK(third.recv(16) == "3");
      CHECK(server.stats().accepted == 3);
      first.aclose();
      third.aclose();
      wait_for([&] { return server.stats().active == 0; }, "the handlers end");
      server.shutdown(1s);
    });
  });
}

TEST_CASE("connections waiting in the backlog are accepted in one pass, before the first handlers run on") {
  // One accept per turn of the loop would leave the last of a burst in the
  // backlog while the handlers accepted so far run: seconds, with many busy
  // connections. Here the first handler, after one checkpoint, sees every
  // handler of the burst started.
  constexpr int burst = 50;
  for (const int variant : {0, 1, 2}) {
    CAPTURE(variant);  // 0: stream_server, 1: with max_connections, 2: listener.serve()
    run([&] {
      auto listeners = net::create_tcp_listeners("127.0.0.1", 0);
      const auto port = listeners.front().local_address().port();
      std::vector<net::stream_transport> clients;
      for (int i = 0; i < burst; ++i) clients.push_back(net::create_tcp_connection("127.0.0.1", port));
      int started = 0;
      std::vector<int> seen_after_checkpoint;
      auto handler = [&](net::stream_transport& t) {
        ++started;
        weft::checkpoint();
        seen_after_checkpoint.push_back(started);
        (void)recv_all(t);
      };
      std::optional<net::stream_server> server;  // outside the body: the tasks outlive its locals
      weft::open_task_group([&](weft::task_group& tg) {
        if (variant < 2) {
          server.emplace(std::move(listeners), with<net::stream_server_options>([&](auto& o) {
                           o.max_connections = variant == 1 ? 2 * burst : 0;
                         }));
          tg.start_soon([&] { server->serve(handler); });
        } else {
          tg.start_soon([&] {
            weft::open_task_group([&](weft::task_group& handlers) { listeners.front().serve(handler, handlers); });
          });
        }
        wait_for([&] { return seen_after_checkpoint.size() == burst; }, "every handler passes its checkpoint");
        CHECK(seen_after_checkpoint.front() == burst);
        for (auto& c : clients) c.aclose();
        if (server) {
          server->shutdown(1s);
        } else {
          tg.cancel();
        }
      });
    });
  }
}

TEST_CASE("stream_server: 1000 clients connecting at once are all served") {
  weft_test::run_real(
      [&] {
        net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
        const auto port = server.local_addresses().front().port();
        int served = 0;
        weft::open_task_group([&](weft::task_group& tg) {
          tg.start_soon([&] { server.serve(echo_or_fail); });
          weft::open_task_group([&](weft::task_group& clients) {
            for (int i = 0; i < 1000; ++i) {
              clients.start_soon([&, i] {
                auto c = net::create_tcp_connection("127.0.0.1", port);
                const std::string message = "client " + std::to_string(i);
                c.send_all(message);
                c.send_eof();
                if (recv_all(c) == message) ++served;
                c.aclose();
              });
            }
          });
          server.shutdown(1s);
        });
        CHECK(served == 1000);
        CHECK(server.stats().completed == 1000);
      },
      60s);
}

// --- the idle timeout ----------------------------------------------------------------

TEST_CASE("stream_transport::set_recv_timeout: a waiting receive fails with timed_out, nothing is lost") {
  for (const stream_kind kind : all_stream_kinds) {
    CAPTURE(name_of(kind));
    run([&] {
      auto [client, server] = make_stream_pair(kind);
      CHECK_FALSE(server.recv_timeout());
      server.set_recv_timeout(1.5s);
      CHECK(server.recv_timeout() == weft::duration(1.5));
      try {
        (void)server.recv(16);
        FAIL("no timeout");
      } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::timed_out);
        CHECK(std::string(e.what()).find("1.5 s") != std::string::npos);
      }
      CHECK(now_s() == doctest::Approx(1.5));
      client.send_all("late");
      CHECK(server.recv(16) == "late");  // still usable
      // Data already there: no wait, no timeout.
      client.send_all("ready");
      weft::sleep(10s);
      CHECK(server.recv(16) == "ready");
      server.set_recv_timeout(std::nullopt);
      auto wait = weft::move_on_after(30s);
      wait.run([&] { (void)server.recv(16); });
      CHECK(wait.cancelled_caught());  // waited without limit
      check_invalid_argument([&] { server.set_recv_timeout(weft::duration(0)); }, {"set_recv_timeout"});
      check_invalid_argument([&] { server.set_recv_timeout(-1s); }, {"set_recv_timeout"});
      check_invalid_argument([&] { server.set_recv_timeout(weft::duration(std::numeric_limits<double>::infinity())); },
                             {"set_recv_timeout"});
      // A moved transport keeps its timeout.
      server.set_recv_timeout(2s);
      net::stream_transport moved(std::move(server));
      CHECK(moved.recv_timeout() == weft::duration(2));
    });
  }
}

TEST_CASE("stream_server idle_timeout: counts from the handler's read, not from accept; a trickling client stays") {
  run([&] {
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0), with<net::stream_server_options>([](auto& o) { o.idle_timeout = 2s; }));
    const auto port = server.local_addresses().front().port();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        server.serve([&](net::stream_transport& t) {
          weft::sleep(3s);  // busy before its first read
          echo_or_fail(t);
        });
      });
      auto silent = net::create_tcp_connection("127.0.0.1", port);
      auto trickle = net::create_tcp_connection("127.0.0.1", port);
      tg.start_soon([&] {
        for (int i = 0; i < 6; ++i) {
          trickle.send_all("t");
          CHECK(trickle.recv(16) == "t");
          weft::sleep(1.5s);
        }
        trickle.aclose();
      });
      CHECK(silent.recv(16).empty());  // closed by the server...
      CHECK(now_s() == doctest::Approx(5.0));  // ...3 s of work + 2 s idle, not 2 s after accept
      silent.aclose();
      // The trickling client ends by itself at t = 3 + 6 * 1.5, never idle for 2 s.
      wait_for([&] { return server.stats().accepted == 2 && server.stats().active == 0; }, "both handlers end");
      CHECK(now_s() == doctest::Approx(12.0).epsilon(0.01));
      server.shutdown(0s);
    });
    CHECK(server.stats().peer_errors == 1);
    CHECK(server.stats().completed == 1);
  });
}

// --- signals -------------------------------------------------------------------------

TEST_CASE("stream_server shutdown_signals: the signal starts the shutdown with its grace") {
  run([&] {
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0),
                              with<net::stream_server_options>([](auto& o) {
                                o.shutdown_signals = {SIGUSR2};
                                o.shutdown_grace = 3s;
                              }));
    const auto port = server.local_addresses().front().port();
    double served_until = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        server.serve([](net::stream_transport&) { weft::sleep_forever(); });
        served_until = now_s();
      });
      auto c = net::create_tcp_connection("127.0.0.1", port);
      wait_for([&] { return server.stats().active == 1; }, "the handler starts");
      weft::testing::wait_all_tasks_blocked();  // the server waits for its signal
      weft::sleep_until(weft_test::at(1));
      REQUIRE(::kill(::getpid(), SIGUSR2) == 0);
      server.wait_shutdown();
      CHECK(now_s() == doctest::Approx(1.0));
    });
    CHECK(served_until == doctest::Approx(4.0));
    CHECK(server.stats().cancelled == 1);
  });
}

// --- datagram_server -----------------------------------------------------------------

TEST_CASE("datagram_server: a flood against slow handlers keeps max_in_flight running; the kernel's drops are counted") {
  run_frozen([&] {
    net::datagram_server server(net::create_udp_listeners("127.0.0.1", 0), with<net::datagram_server_options>([](auto& o) { o.max_in_flight = 4; }));
    const auto to = server.local_addresses().front();
    weft::event release;
    std::size_t running = 0, most = 0;
    constexpr std::uint64_t sent = 3000;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        server.serve([&](std::string, const net::endpoint&, net::datagram_listener&) {
          most = std::max(most, ++running);
          release.wait();
          --running;
        });
      });
      const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
      REQUIRE(fd >= 0);
      const sockaddr_storage addr = loopback_sockaddr(AF_INET, to.port());
      const std::string payload(100, 'd');
      for (std::uint64_t i = 0; i < sent; ++i)
        REQUIRE(::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&addr),
                         sockaddr_len(AF_INET)) == static_cast<ssize_t>(payload.size()));
      ::close(fd);
      weft::testing::wait_all_tasks_blocked();
      CHECK(server.stats().accepted == 4);  // reading paused
      CHECK(server.stats().active == 4);
      CHECK(server.dropped() > 0);  // more than the receive buffer holds
      release.set();
      // Every datagram was either received or dropped by the kernel.
      weft::testing::wait_all_tasks_blocked();
      CHECK(server.stats().accepted + server.dropped() == sent);
      server.shutdown(1s);
    });
    CHECK(most == 4);
    CHECK(server.stats().completed == server.stats().accepted);
    CHECK(server.dropped() + server.stats().accepted == sent);  // still counted after serve() closed the socket
  });
}

TEST_CASE("datagram_server: a failing handler is reported with the sender and ends nothing else; replies in the grace") {
  reports seen;
  run([&] {
    net::datagram_server server(net::create_udp_listeners("127.0.0.1", 0));
    const auto to = server.local_addresses().front();
    auto client = net::create_udp_endpoint(std::pair<std::string, std::uint16_t>{"127.0.0.1", to.port()});
    const std::string client_address = client.local_address().to_string();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        server.serve([&](std::string datagram, const net::endpoint& from, net::datagram_listener& l) {
          const std::string reply = "echo: " + datagram;
          if (reply.ends_with(" fail")) throw std::runtime_error("bad datagram");
          if (reply.ends_with(" slow")) weft::sleep(2s);
          l.send_to(reply, from);
        });
      });
      client.send("fail");
      client.send("one");
      CHECK(client.recv() == "echo: one");
      client.send("slow");
      wait_for([&] { return server.stats().active == 1; }, "the slow handler starts");
      server.shutdown(5s);
      CHECK(client.recv() == "echo: slow");  // the socket stays open for replies in the grace
      CHECK(now_s() == doctest::Approx(2.0));
    });
    CHECK(server.stats().accepted == 3);
    CHECK(server.stats().handler_errors == 1);
    CHECK(server.stats().completed == 2);
    CHECK(server.local_addresses().empty());
  });
  REQUIRE(seen.count() == 1);
  const std::string context = seen.contexts().front();
  CAPTURE(context);
  CHECK(context.find("weft::net::datagram_server") != std::string::npos);
  CHECK(weft_test::message_of(seen.errors().front()) == "bad datagram");
}

// --- listener defaults ---------------------------------------------------------------

TEST_CASE("TCP_NODELAY is on for accepted and connected TCP sockets; the default backlog is the system's") {
  run([&] {
    for (const std::string host : {"127.0.0.1", "::1"}) {
      CAPTURE(host);
      auto [client, server] = tcp_pair(host);
      CHECK(client.nodelay());
      CHECK(server.nodelay());
    }
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
    const auto port = server.local_addresses().front().port();
    bool nodelay = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { server.serve([&](net::stream_transport& t) { nodelay = t.nodelay(); }); });
      auto c = net::create_tcp_connection("127.0.0.1", port);
      CHECK(c.recv(1).empty());
      server.shutdown(1s);
    });
    CHECK(nodelay);
  });
  int somaxconn = 4096;
  std::ifstream("/proc/sys/net/core/somaxconn") >> somaxconn;
  CHECK(net::default_backlog() == std::min(somaxconn, 65535));
}

#include "net/net_support.hpp"

#include <sys/resource.h>

#include <array>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

using namespace weft_net_test;

namespace {

// A sibling that fails after a short while, cancelling the rest of its group.
void fail_soon() {
  weft::sleep(20ms);
  throw std::runtime_error("sibling failed");
}

// Runs blocking() next to a failing sibling; checks that blocking() was
// cancelled and that the group reported the sibling's failure.
template <class F>
void cancelled_by_failing_sibling(F&& blocking) {
  bool cancelled = false, returned = false;
  try {
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        try {
          blocking();
          returned = true;
        } catch (const weft::cancelled&) {
          cancelled = true;
          throw;
        }
      });
      tg.start_soon(fail_soon);
    });
    FAIL("the group did not fail");
  } catch (const weft::exception_group& g) {
    CHECK(g.size() == 1);
    CHECK(g.contains<std::runtime_error>());
  }
  CHECK(cancelled);
  CHECK_FALSE(returned);
}

// Runs blocking() under a short deadline; checks that the deadline ended it.
template <class F>
void cancelled_by_deadline(F&& blocking) {
  bool returned = false;
  auto scope = weft::move_on_after(20ms);
  scope.run([&] {
    blocking();
    returned = true;
  });
  CHECK(scope.cancelled_caught());
  CHECK_FALSE(returned);
}

}  // namespace

// --- peer resets -------------------------------------------------------------------

TEST_CASE("a peer reset while recv is parked fails the recv with ECONNRESET") {
  for (const std::string host : {"127.0.0.1", "::1"}) {
    CAPTURE(host);
    run_real([&] {
      auto p = tcp_pair(host);
      int error = 0;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] { error = error_of([&] { (void)p.client.recv(100); }); });
        weft::testing::wait_all_tasks_blocked();
        set_linger_zero(p.server.socket().native_handle());
        p.server.aclose();
      });
      CHECK(error == ECONNRESET);
      CHECK_FALSE(p.client.is_closing());  // the transport is still ours to close
      p.client.aclose();
    });
  }
}

TEST_CASE("after a peer reset, further recv calls fail or report end of stream at once, never block") {
  run_real([] {
    auto p = tcp_pair();
    set_linger_zero(p.server.socket().native_handle());
    p.server.aclose();
    weft::sleep(20ms);  // the reset arrives while nobody reads
    for (int i = 0; i < 3; ++i) {
      CAPTURE(i);
      int error = 0;
      std::string got = "<nothing>";
      auto guard = weft::move_on_after(2s);  // turns a hang into a failure
      guard.run([&] { error = error_of([&] { got = p.client.recv(100); }); });
      REQUIRE_MESSAGE(!guard.cancelled_caught(), "recv blocked on a connection that was reset");
      if (i == 0) {
        CHECK(error == ECONNRESET);
      } else {
        // Later calls report the reset again or end of stream.
        CHECK((error == ECONNRESET || (error == 0 && got.empty())));
      }
    }
  });
}

TEST_CASE("a peer reset while send_all is parked on a full buffer fails the send") {
  run_real([] {
    auto p = tcp_pair();
    fill_send_buffer(p.client);
    int error = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { error = error_of([&] { p.client.send_all(std::string(4 << 20, 'w')); }); });
      weft::testing::wait_all_tasks_blocked();
      p.server.aclose();  // unread data: the close resets the connection
    });
    CHECK((error == ECONNRESET || error == EPIPE));
    CHECK(error_of([&] { p.client.send_all("more"); }) > 0);
  });
}

// --- a slow client -----------------------------------------------------------------

TEST_CASE("a client that never sends: the handler's idle timeout closes it, other clients are served") {
  // Autojump: once every task waits for socket traffic that is not coming,
  // the clock jumps to the idle deadline at once.
  run([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    const std::uint16_t port = ls[0].local_address().port();
    int timeouts = 0, echoed = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        ls[0].serve(
            [&](net::stream_transport& t) {
              for (;;) {
                const std::optional<std::string> msg = weft::move_on_after(10s).run([&] { return t.recv(100); });
                if (!msg) {
                  ++timeouts;  // idle for too long: give up on this client
                  return;
                }
                if (msg->empty()) return;
                t.send_all(*msg);
                ++echoed;
              }
            },
            tg);
      });
      auto slow = net::create_tcp_connection("127.0.0.1", port);
      for (int i = 0; i < 3; ++i) {
        auto fast = net::create_tcp_connection("127.0.0.1", port);
        fast.send_all("ping");
        CHECK(fast.recv(100) == "ping");
        fast.aclose();
      }
      CHECK(timeouts == 0);
      CHECK(now_s() < 10);
      // The slow client waits; the server gives up on it after 10 s idle.
      CHECK(slow.recv(100).empty());
      CHECK(timeouts == 1);
      CHECK(now_s() >= 10);
      // The server keeps serving.
      auto after = net::create_tcp_connection("127.0.0.1", port);
      after.send_all("still there?");
      CHECK(after.recv(100) == "still there?");
      after.aclose();
      CHECK(echoed == 4);
      CHECK(timeouts == 1);
      tg.cancel();
    });
  });
}

// --- descriptors -------------------------------------------------------------------

TEST_CASE("1000 connect/disconnect cycles leave no file descriptor behind") {
  run_real(
      [] {
        auto ls = net::create_tcp_listeners("127.0.0.1", 0);
        const std::uint16_t port = ls[0].local_address().port();
        int handled = 0;
        weft::open_task_group([&](weft::task_group& tg) {
          tg.start_soon([&] {
            ls[0].serve(
                [&](net::stream_transport& t) {
                  const std::string s = t.recv(10);
                  t.send_all(s);
                  ++handled;
                },
                tg);
          });
          // Warm up (first connection, resolver, stacks), then count.
          {
            auto c = net::create_tcp_connection("127.0.0.1", port);
            c.send_all("w");
            CHECK(c.recv(10) == "w");
          }
          while (handled < 1) weft::sleep(1ms);
          const std::size_t before = open_fd_count();
          for (int i = 0; i < 1000; ++i) {
            auto c = net::create_tcp_connection("127.0.0.1", port);
            c.send_all("x");
            REQUIRE(c.recv(10) == "x");
            if (i % 2 == 0)
              c.aclose();  // the odd ones are closed by the destructor
          }
          while (handled < 1001) weft::sleep(1ms);
          weft::testing::wait_all_tasks_blocked();
          CHECK(open_fd_count() == before);
          tg.cancel();
        });
      },
      120s);
}

TEST_CASE("accept hitting EMFILE: the server logs, backs off, and recovers once descriptors are free") {
  temp_dir dir;
  const std::string log_path = dir.file("stderr.log");
  const int status = run_in_child(
      [&] {
        const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        WEFT_CHILD_REQUIRE(log >= 0);
        ::dup2(log, STDERR_FILENO);
        ::close(log);
        weft::run([&] {
          auto ls = net::create_tcp_listeners("127.0.0.1", 0);
          const auto addr = loopback_sockaddr(AF_INET, ls[0].local_address().port());
          int handled = 0;
          weft::open_task_group([&](weft::task_group& tg) {
            tg.start_soon([&] {
              ls[0].serve(
                  [&](net::stream_transport& t) {
                    ++handled;
                    const std::string m = t.recv(100);
                    t.send_all("ok:" + m);
                  },
                  tg);
            });
            // Everything the clients need is opened before the limit.
            const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            const int c1 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            const int c2 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            WEFT_CHILD_REQUIRE(devnull >= 0 && c1 >= 0 && c2 >= 0);
            // A limit a few descriptors above the lowest free one, and
            // fillers that use those up.
            const int lowest_free = ::dup(devnull);
            ::close(lowest_free);
            rlimit rl{};
            ::getrlimit(RLIMIT_NOFILE, &rl);
            rl.rlim_cur = static_cast<rlim_t>(lowest_free + 4);
            WEFT_CHILD_REQUIRE(::setrlimit(RLIMIT_NOFILE, &rl) == 0);
            std::vector<int> fillers;
            for (;;) {
              const int d = ::dup(devnull);
              if (d < 0) {
                WEFT_CHILD_REQUIRE(errno == EMFILE);
                break;
              }
              fillers.push_back(d);
            }
            WEFT_CHILD_REQUIRE(!fillers.empty());

            // A connection arrives (it waits in the backlog); accept fails.
            WEFT_CHILD_REQUIRE(::connect(c1, reinterpret_cast<const sockaddr*>(&addr), sizeof(sockaddr_in)) == 0);
            weft::sleep(500ms);
            WEFT_CHILD_REQUIRE(handled == 0);

            // Descriptors are freed: the server accepts the waiting connection.
            for (const int d : fillers) ::close(d);
            auto t1 = net::wrap_stream_socket(c1);
            t1.send_all("one");
            WEFT_CHILD_REQUIRE(recv_all(t1) == "ok:one");
            WEFT_CHILD_REQUIRE(::connect(c2, reinterpret_cast<const sockaddr*>(&addr), sizeof(sockaddr_in)) == 0);
            auto t2 = net::wrap_stream_socket(c2);
            t2.send_all("two");
            WEFT_CHILD_REQUIRE(recv_all(t2) == "ok:two");
            WEFT_CHILD_REQUIRE(handled == 2);
            tg.cancel();
          });
        });
        return 0;
      },
      30);
  std::ifstream in(log_path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string log = text.str();
  INFO("child stderr:\n" << log);
  CHECK(status == 0);
  std::size_t retries = 0;
  for (std::size_t at = log.find("accept failed"); at != std::string::npos; at = log.find("accept failed", at + 1))
    ++retries;
  CHECK(log.find("Too many open files") != std::string::npos);
  CHECK(retries >= 2);   // it retried while the descriptors were used up ...
  CHECK(retries <= 50);  // ... pausing between attempts, not spinning
}

// --- cancelling each blocking call -------------------------------------------------

TEST_CASE("recv cancelled by a deadline or a failing sibling; the transport stays usable") {
  run_real([] {
    auto p = tcp_pair();
    cancelled_by_deadline([&] { (void)p.server.recv(100); });
    cancelled_by_failing_sibling([&] { (void)p.server.recv(100); });
    std::array<std::byte, 16> buf{};
    cancelled_by_deadline([&] { (void)p.server.recv_into(std::span<std::byte>(buf)); });
    // The cancelled reads are gone: the data goes to the next one.
    p.client.send_all("after");
    CHECK(p.server.recv(100) == "after");
    p.server.send_all("both ways");
    CHECK(p.client.recv(100) == "both ways");
  });
}

TEST_CASE("send_all parked on a full buffer, cancelled by a deadline or a failing sibling; the transport still works") {
  run_real([] {
    auto p = tcp_pair();
    std::size_t sent = fill_send_buffer(p.client);
    const std::string chunk(1 << 20, 's');
    cancelled_by_deadline([&] { p.client.send_all(chunk); });
    cancelled_by_failing_sibling([&] { p.client.send_all(chunk); });
    const std::array<std::string_view, 2> two{chunk, chunk};
    cancelled_by_deadline([&] { p.client.send_all_from_iterable(std::span<const std::string_view>(two)); });
    // Still usable: the rest gets through once the peer reads, and the
    // stream ends with what was sent last.
    std::string received;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { received = recv_all(p.server); });
      p.client.send_all("<the end>");
      p.client.send_eof();
    });
    CHECK(received.size() >= sent + 9);
    CHECK(received.substr(received.size() - 9) == "<the end>");
  });
}

TEST_CASE("accept cancelled by a deadline or a failing sibling; the listener stays usable") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    auto& l = ls[0];
    const std::size_t fds = open_fd_count();
    cancelled_by_deadline([&] { (void)l.accept(); });
    cancelled_by_failing_sibling([&] { (void)l.accept(); });
    CHECK(open_fd_count() == fds);
    auto c = net::create_tcp_connection("127.0.0.1", l.local_address().port());
    auto s = l.accept();
    c.send_all("accepted");
    CHECK(s.recv(100) == "accepted");
  });
}

TEST_CASE("serve cancelled by a deadline or a failing sibling; the listener stays usable") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    auto& l = ls[0];
    auto scope = weft::move_on_after(20ms);
    scope.run([&] {
      weft::open_task_group([&](weft::task_group& tg) { l.serve([](net::stream_transport&) {}, tg); });
    });
    CHECK(scope.cancelled_caught());
    cancelled_by_failing_sibling([&] {
      weft::open_task_group([&](weft::task_group& tg) { l.serve([](net::stream_transport&) {}, tg); });
    });
    auto c = net::create_tcp_connection("127.0.0.1", l.local_address().port());
    auto s = l.accept();
    s.send_all("served");
    CHECK(c.recv(100) == "served");
  });
}

TEST_CASE("connect cancelled by a deadline or a failing sibling; its socket is closed") {
  for (const int family : {AF_INET, AF_INET6}) {
    CAPTURE(family);
    run_real([&] {
      hung_listener hung(family);
      const std::string host = family == AF_INET ? "127.0.0.1" : "::1";
      const std::size_t fds = open_fd_count();
      cancelled_by_deadline([&] { (void)net::create_tcp_connection(host, hung.port()); });
      CHECK(open_fd_count() == fds);
      cancelled_by_failing_sibling([&] { (void)net::create_tcp_connection(host, hung.port()); });
      CHECK(open_fd_count() == fds);
    });
  }
}

TEST_CASE("datagram recv cancelled by a deadline or a failing sibling; the transport stays usable") {
  run_real([] {
    auto listeners = net::create_udp_listeners("127.0.0.1", 0);
    auto& server = listeners[0];
    auto client = net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), server.local_address().port()));
    cancelled_by_deadline([&] { (void)client.recv(); });
    cancelled_by_failing_sibling([&] { (void)client.recv(); });
    cancelled_by_deadline([&] { (void)server.recv_from(); });
    cancelled_by_failing_sibling([&] { (void)server.recv_from(); });
    char buf[16];
    cancelled_by_deadline([&] { (void)client.recv_into(std::span<char>(buf)); });
    cancelled_by_failing_sibling([&] { (void)server.recv_from_into(std::span<char>(buf)); });
    client.send("up");
    auto [data, from] = server.recv_from();
    CHECK(data == "up");
    server.send_to("down", from);
    CHECK(client.recv() == "down");
  });
}

TEST_CASE("a Unix datagram recv cancelled by a deadline; the next datagram is received whole") {
  run_real([] {
    auto [a, b] = unix_datagram_pair();
    cancelled_by_deadline([&] { (void)b.recv(); });
    a.send("intact");
    CHECK(b.recv() == "intact");
  });
}

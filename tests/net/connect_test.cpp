#include "net/net_support.hpp"

#include <boost/asio/ip/address.hpp>

#include <cmath>
#include <linux/netlink.h>
#include <memory>
#include <string>
#include <tuple>

using namespace weft_net_test;
namespace ip = boost::asio::ip;

namespace {

using local_address = std::optional<std::pair<std::string, std::uint16_t>>;

local_address local(const std::string& host, std::uint16_t port = 0) { return std::make_pair(host, port); }

}  // namespace

// --- create_tcp_connection ---------------------------------------------------------

TEST_CASE("create_tcp_connection connects to a numeric IPv4 or IPv6 address and to localhost") {
  for (const std::string host : {"127.0.0.1", "::1", "localhost"}) {
    CAPTURE(host);
    run_real([&] {
      auto ls = net::create_tcp_listeners(host == "localhost" ? "127.0.0.1" : host, 0);
      const auto server_ep = ls[0].local_address();
      auto c = net::create_tcp_connection(host, server_ep.port());
      CHECK(c.peer_address() == server_ep);
      auto s = ls[0].accept();
      CHECK(s.peer_address() == c.local_address());
      c.send_all("hi");
      CHECK(s.recv(10) == "hi");
    });
  }
}

TEST_CASE("a refused connection to a single address throws a connect_error with that one attempt") {
  for (const int family : {AF_INET, AF_INET6}) {
    CAPTURE(family);
    run_real([&] {
      refusing_port refusing(family, 0);
      const std::string host = family == AF_INET ? "127.0.0.1" : "::1";
      const net::endpoint target(ip::make_address(host), refusing.port());
      const std::size_t fds = open_fd_count();
      try {
        (void)net::create_tcp_connection(host, refusing.port());
        FAIL("connected to a port nobody listens on");
      } catch (const net::connect_error& e) {
        CHECK(e.code() == std::error_code(ECONNREFUSED, std::system_category()));
        REQUIRE(e.attempts().size() == 1);
        CHECK(e.attempts()[0].address == target);
        CHECK(e.attempts()[0].error == std::error_code(ECONNREFUSED, std::system_category()));
        CHECK(error_of(e.attempts()[0].exception) == ECONNREFUSED);
        const std::string what = e.what();
        CAPTURE(what);
        CHECK(what.find("weft::net::create_tcp_connection") != std::string::npos);
        CHECK(what.find(target.to_string()) != std::string::npos);
        // Named once: the numeric host is the one address tried.
        CHECK(what.find(target.to_string()) == what.rfind(target.to_string()));
      }
      CHECK(open_fd_count() == fds);
    });
  }
}

TEST_CASE("every failure of create_tcp_connection can be caught as std::system_error") {
  run_real([] {
    refusing_port refusing(AF_INET, 0);
    CHECK_THROWS_AS((void)net::create_tcp_connection("127.0.0.1", refusing.port()), std::system_error);
    CHECK_THROWS_AS((void)net::create_tcp_connection("127.0.0.1", refusing.port()), net::connect_error);
    // A name that does not resolve is getaddrinfo's error, not a connect_error.
    try {
      (void)net::create_tcp_connection("weft-no-such-host.invalid", 80);
      FAIL("a name under .invalid resolved");
    } catch (const net::connect_error&) {
      FAIL("a failed lookup came out as a connect_error");
    } catch (const std::system_error& e) {
      CHECK(std::string(e.what()).find("weft-no-such-host.invalid") != std::string::npos);
    }
  });
}

TEST_CASE("create_tcp_connection rejects a negative or NaN happy_eyeballs_delay") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    const std::uint16_t port = ls[0].local_address().port();
    CHECK_THROWS_AS((void)net::create_tcp_connection("127.0.0.1", port, std::nullopt, -1ms), std::invalid_argument);
    CHECK_THROWS_AS(
        (void)net::create_tcp_connection("127.0.0.1", port, std::nullopt, weft::duration(std::nan(""))),
        std::invalid_argument);
    CHECK_NOTHROW((void)net::create_tcp_connection("127.0.0.1", port, std::nullopt, 0s));
  });
}

TEST_CASE("create_tcp_connection rejects a port out of range, for the remote and the local address") {
  run([] {
    const std::size_t fds = open_fd_count();
    for (const int port : {65536, 70000, -1}) {
      CAPTURE(port);
      check_invalid_argument([&] { (void)net::create_tcp_connection("127.0.0.1", port); },
                             {"weft::net::create_tcp_connection", std::to_string(port)});
      const auto bad_local = std::make_pair(std::string("127.0.0.1"), port);
      check_invalid_argument([&] { (void)net::create_tcp_connection("127.0.0.1", 80, bad_local); },
                             {"weft::net::create_tcp_connection", std::to_string(port)});
    }
    CHECK(open_fd_count() == fds);
  });
}

TEST_CASE("local_address binds the connecting socket to that address") {
  run_real([] {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    const std::uint16_t port = ls[0].local_address().port();
    auto c = net::create_tcp_connection("127.0.0.1", port, local("127.0.0.2"));
    CHECK(c.local_address().address() == ip::make_address("127.0.0.2"));
    auto s = ls[0].accept();
    CHECK(s.peer_address().address() == ip::make_address("127.0.0.2"));

    // A given local port is used as is.
    refusing_port probe(AF_INET, 0);
    const std::uint16_t local_port = probe.port();
    auto ls6 = net::create_tcp_listeners("::1", 0);
    auto c6 = net::create_tcp_connection("::1", ls6[0].local_address().port(), local("::1", local_port));
    CHECK(c6.local_address() == net::endpoint(ip::make_address("::1"), local_port));
  });
}

TEST_CASE("a local_address with no address of the remote's family is an invalid_argument") {
  run_real([] {
    auto v4 = net::create_tcp_listeners("127.0.0.1", 0);
    auto v6 = net::create_tcp_listeners("::1", 0);
    const std::size_t fds = open_fd_count();
    CHECK_THROWS_AS((void)net::create_tcp_connection("127.0.0.1", v4[0].local_address().port(), local("::1")),
                    std::invalid_argument);
    CHECK_THROWS_AS((void)net::create_tcp_connection("::1", v6[0].local_address().port(), local("127.0.0.1")),
                    std::invalid_argument);
    CHECK(open_fd_count() == fds);  // no socket was left open
  });
}

// --- Happy Eyeballs, with a name that resolves to ::1 and 127.0.0.1 ----------------
//
// These run in a child process that sees its own /etc/hosts (a private mount
// namespace), where the name below resolves to both loopback addresses.
// Without the privilege for that they are skipped, and reported so.

namespace {

constexpr const char* dual_name = "weft-he-test";
constexpr const char* hosts_file =
    "127.0.0.1 localhost\n::1 weft-he-test\n127.0.0.1 weft-he-test\n"
    "::1 weft-he-three\n127.0.0.1 weft-he-three\n127.0.0.2 weft-he-three\n"
    "2001:db8::1 weft-he-bad\n192.0.2.1 weft-he-bad\n";

const weft_test::needs private_hosts{private_hosts_file_available(),
                                     "CAP_SYS_ADMIN, to give a child process its own /etc/hosts"};

void with_dual_stack_name(const std::function<void()>& body, unsigned limit_s = 30) {
  temp_dir dir;
  const int status = run_in_child(
      [&] {
        if (!private_hosts_file(dir.file("hosts"), hosts_file)) return child_skipped;
        body();
        return 0;
      },
      limit_s);
  CHECK_MESSAGE(status != child_skipped, "a child could not have its own /etc/hosts although a probe could");
  CHECK(status == 0);
}

// The name resolves to exactly ::1 and 127.0.0.1.
void check_resolution() {
  const auto infos = net::getaddrinfo(dual_name, "80", AF_UNSPEC, SOCK_STREAM);
  bool v4 = false, v6 = false;
  for (const auto& i : infos) {
    WEFT_CHILD_REQUIRE(i.address.address().is_loopback());
    (i.family == AF_INET ? v4 : v6) = true;
  }
  WEFT_CHILD_REQUIRE(v4 && v6);
}

// A listener on 127.0.0.1 and `make(port)` on ::1 at the same port.
template <class Make>
auto v4_listener_and_v6(Make make) {
  for (int attempt = 0;; ++attempt) {
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    const std::uint16_t port = ls[0].local_address().port();
    try {
      auto v6 = make(port);
      return std::make_tuple(std::move(ls[0]), std::move(v6), port);
    } catch (const std::system_error&) {
      if (attempt == 10) throw;  // that port was taken on ::1: try another
    }
  }
}

}  // namespace

TEST_CASE("Happy Eyeballs tries IPv6 first: with both families listening, ::1 wins" * private_hosts) {
  with_dual_stack_name([] {
    run_frozen([] {
      check_resolution();
      auto ls = net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1", "::1"}, 0);
      const std::uint16_t port = ls[0].local_address().port();
      auto c = net::create_tcp_connection(dual_name, port, std::nullopt, 1h);
      WEFT_CHILD_REQUIRE(c.peer_address() == net::endpoint(ip::make_address("::1"), port));
      WEFT_CHILD_REQUIRE(now_s() == 0);
    });
  });
}

TEST_CASE("Happy Eyeballs: when ::1 refuses, the IPv4 attempt starts at once, without waiting for the delay" * private_hosts) {
  with_dual_stack_name(
      [] {
        // The clock never moves: only the failure of the first attempt can
        // start the second (a missing fast path hangs until the child is killed).
        run_frozen([] {
          check_resolution();
          auto [v4, refusing, port] =
              v4_listener_and_v6([](std::uint16_t p) { return std::make_unique<refusing_port>(AF_INET6, p); });
          const std::size_t fds = open_fd_count();
          auto c = net::create_tcp_connection(dual_name, port, std::nullopt, 1h);
          WEFT_CHILD_REQUIRE(c.peer_address() == net::endpoint(ip::make_address("127.0.0.1"), port));
          WEFT_CHILD_REQUIRE(now_s() == 0);
          WEFT_CHILD_REQUIRE(open_fd_count() == fds + 1);
          auto s = v4.accept();
          c.send_all("v4");
          WEFT_CHILD_REQUIRE(s.recv(10) == "v4");
        });
      },
      10);
}

TEST_CASE("Happy Eyeballs: each failed attempt starts the next at once, down to the last address" * private_hosts) {
  with_dual_stack_name(
      [] {
        run_frozen([] {
          const auto infos = net::getaddrinfo("weft-he-three", "80", AF_UNSPEC, SOCK_STREAM);
          WEFT_CHILD_REQUIRE(infos.size() == 3);
          // ::1 and 127.0.0.1 refuse; only 127.0.0.2 listens.
          for (int attempt = 0;; ++attempt) {
            auto ls = net::create_tcp_listeners("127.0.0.2", 0);
            const std::uint16_t port = ls[0].local_address().port();
            std::unique_ptr<refusing_port> r4, r6;
            try {
              r4 = std::make_unique<refusing_port>(AF_INET, port);
              r6 = std::make_unique<refusing_port>(AF_INET6, port);
            } catch (const std::system_error&) {
              WEFT_CHILD_REQUIRE(attempt < 10);
              continue;
            }
            const std::size_t fds = open_fd_count();
            auto c = net::create_tcp_connection("weft-he-three", port, std::nullopt, 1h);
            WEFT_CHILD_REQUIRE(c.peer_address() == net::endpoint(ip::make_address("127.0.0.2"), port));
            WEFT_CHILD_REQUIRE(now_s() == 0);
            WEFT_CHILD_REQUIRE(open_fd_count() == fds + 1);

            // With the last one refusing too: a connect_error listing all
            // three, in the order they were tried.
            ls[0].aclose();
            try {
              (void)net::create_tcp_connection("weft-he-three", port, std::nullopt, 1h);
              throw child_failure("connected although every address refuses");
            } catch (const net::connect_error& e) {
              WEFT_CHILD_REQUIRE(e.attempts().size() == 3);
              WEFT_CHILD_REQUIRE(e.attempts()[0].address == net::endpoint(ip::make_address("::1"), port));
              WEFT_CHILD_REQUIRE(e.attempts()[1].address == net::endpoint(ip::make_address("127.0.0.1"), port));
              WEFT_CHILD_REQUIRE(e.attempts()[2].address == net::endpoint(ip::make_address("127.0.0.2"), port));
              for (const auto& a : e.attempts()) WEFT_CHILD_REQUIRE(error_of(a.exception) == ECONNREFUSED);
            }
            WEFT_CHILD_REQUIRE(now_s() == 0);
            return;
          }
        });
      },
      10);
}

TEST_CASE("Happy Eyeballs: when ::1 never answers, IPv4 is tried after the delay and the hung attempt is closed" * private_hosts) {
  with_dual_stack_name([] {
    weft::run([] {
      check_resolution();
      auto [v4, hung, port] =
          v4_listener_and_v6([](std::uint16_t p) { return std::make_unique<hung_listener>(AF_INET6, p); });
      const std::size_t fds = open_fd_count();
      const weft::time_point start = weft::current_time();
      auto c = net::create_tcp_connection(dual_name, port, std::nullopt, 100ms);
      const weft::duration elapsed = weft::current_time() - start;
      WEFT_CHILD_REQUIRE(c.peer_address() == net::endpoint(ip::make_address("127.0.0.1"), port));
      WEFT_CHILD_REQUIRE(elapsed >= 100ms);                // the second attempt waited for the delay
      WEFT_CHILD_REQUIRE(open_fd_count() == fds + 1);      // the ::1 attempt's socket is gone
      auto s = v4.accept();
      s.send_all("late but fine");
      WEFT_CHILD_REQUIRE(c.recv(100) == "late but fine");
    });
  });
}

TEST_CASE("Happy Eyeballs: when every attempt fails, a connect_error lists every attempt, IPv6 first" * private_hosts) {
  with_dual_stack_name([] {
    weft::run([] {
      check_resolution();
      auto [v4, refusing, port] =
          v4_listener_and_v6([](std::uint16_t p) { return std::make_unique<refusing_port>(AF_INET6, p); });
      v4.aclose();  // now 127.0.0.1 refuses too
      refusing_port v4_refusing(AF_INET, port);
      const std::size_t fds = open_fd_count();
      const net::endpoint v6_ep(ip::make_address("::1"), port), v4_ep(ip::make_address("127.0.0.1"), port);
      try {
        (void)net::create_tcp_connection(dual_name, port, std::nullopt, 1s);
        throw child_failure("connected to ports nobody listens on");
      } catch (const std::system_error& e) {  // one shape for one address or several
        const auto* ce = dynamic_cast<const net::connect_error*>(&e);
        WEFT_CHILD_REQUIRE(ce != nullptr);
        WEFT_CHILD_REQUIRE(ce->attempts().size() == 2);
        WEFT_CHILD_REQUIRE(ce->attempts()[0].address == v6_ep);
        WEFT_CHILD_REQUIRE(ce->attempts()[1].address == v4_ep);
        for (const auto& a : ce->attempts()) {
          WEFT_CHILD_REQUIRE(a.error == std::error_code(ECONNREFUSED, std::system_category()));
          WEFT_CHILD_REQUIRE(error_of(a.exception) == ECONNREFUSED);
        }
        WEFT_CHILD_REQUIRE(e.code() == std::error_code(ECONNREFUSED, std::system_category()));
        const std::string what = e.what();
        WEFT_CHILD_REQUIRE(what.find("weft::net::create_tcp_connection") != std::string::npos);
        WEFT_CHILD_REQUIRE(what.find(dual_name) != std::string::npos);
        WEFT_CHILD_REQUIRE(what.find(v6_ep.to_string()) != std::string::npos);
        WEFT_CHILD_REQUIRE(what.find(v4_ep.to_string()) != std::string::npos);
      }
      WEFT_CHILD_REQUIRE(open_fd_count() == fds);
    });
  });
}

TEST_CASE("Happy Eyeballs: cancelled after one attempt failed, it throws cancelled, never a connect_error" * private_hosts) {
  with_dual_stack_name([] {
    run([] {
      check_resolution();
      // 127.0.0.1 never answers; ::1 at the same port refuses at once.
      auto [hung_unused, refusing, port] = [] {
        for (int attempt = 0;; ++attempt) {
          auto hung = std::make_unique<hung_listener>(AF_INET);
          try {
            auto r = std::make_unique<refusing_port>(AF_INET6, hung->port());
            const std::uint16_t p = hung->port();
            return std::make_tuple(std::move(hung), std::move(r), p);
          } catch (const std::system_error&) {
            WEFT_CHILD_REQUIRE(attempt < 10);
          }
        }
      }();
      const std::size_t fds = open_fd_count();
      bool returned = false;
      auto scope = weft::move_on_after(1s);
      try {
        scope.run([&] {
          (void)net::create_tcp_connection(dual_name, port, std::nullopt, 50ms);
          returned = true;
        });
      } catch (const std::exception& e) {
        throw child_failure(std::string("not a cancellation: ") + e.what());
      }
      WEFT_CHILD_REQUIRE(scope.cancelled_caught());
      WEFT_CHILD_REQUIRE(!returned);
      WEFT_CHILD_REQUIRE(now_s() == 1.0);
      WEFT_CHILD_REQUIRE(open_fd_count() == fds);
    });
  });
}

TEST_CASE("create_udp_endpoint: when every address pair fails, a connect_error lists each of them" * private_hosts) {
  with_dual_stack_name([] {
    run([] {
      check_resolution();
      // weft-he-bad is 2001:db8::1 and 192.0.2.1: neither is an address of
      // this host, so binding fails for each family.
      const std::size_t fds = open_fd_count();
      try {
        (void)net::create_udp_endpoint(std::make_pair(std::string(dual_name), 9),
                                       std::make_pair(std::string("weft-he-bad"), 0));
        throw child_failure("bound to addresses this host does not have");
      } catch (const net::connect_error& e) {
        WEFT_CHILD_REQUIRE(e.attempts().size() == 2);
        for (const auto& a : e.attempts()) {
          WEFT_CHILD_REQUIRE(a.address.address().is_loopback());
          WEFT_CHILD_REQUIRE(a.address.port() == 9);
          WEFT_CHILD_REQUIRE(a.error == std::error_code(EADDRNOTAVAIL, std::system_category()));
        }
        WEFT_CHILD_REQUIRE(e.attempts()[0].address.family() != e.attempts()[1].address.family());
        WEFT_CHILD_REQUIRE(std::string(e.what()).find("weft::net::create_udp_endpoint") != std::string::npos);
      }
      WEFT_CHILD_REQUIRE(open_fd_count() == fds);
    });
  });
}

TEST_CASE("Happy Eyeballs with no delay: every attempt starts at once, one wins, the others are closed" * private_hosts) {
  with_dual_stack_name([] {
    weft::run([] {
      check_resolution();
      auto ls = net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1", "::1"}, 0);
      const std::uint16_t port = ls[0].local_address().port();
      for (int i = 0; i < 20; ++i) {
        const std::size_t fds = open_fd_count();
        auto c = net::create_tcp_connection(dual_name, port, std::nullopt, 0s);
        WEFT_CHILD_REQUIRE(c.peer_address().port() == port);
        WEFT_CHILD_REQUIRE(open_fd_count() == fds + 1);
      }
    });
  });
}

TEST_CASE("Happy Eyeballs: local_address pairs only with remote addresses of its family" * private_hosts) {
  with_dual_stack_name([] {
    run_frozen([] {
      check_resolution();
      auto ls = net::create_tcp_listeners(std::vector<std::string>{"127.0.0.1", "::1"}, 0);
      const std::uint16_t port = ls[0].local_address().port();
      auto c4 = net::create_tcp_connection(dual_name, port, local("127.0.0.2"), 1h);
      WEFT_CHILD_REQUIRE(c4.peer_address() == net::endpoint(ip::make_address("127.0.0.1"), port));
      WEFT_CHILD_REQUIRE(c4.local_address().address() == ip::make_address("127.0.0.2"));
      auto c6 = net::create_tcp_connection(dual_name, port, local("::1"), 1h);
      WEFT_CHILD_REQUIRE(c6.peer_address() == net::endpoint(ip::make_address("::1"), port));
      WEFT_CHILD_REQUIRE(now_s() == 0);
    });
  });
}

TEST_CASE("Happy Eyeballs: a deadline while every attempt hangs cancels them all and closes their sockets" * private_hosts) {
  with_dual_stack_name([] {
    weft::run([] {
      check_resolution();
      auto v4 = std::make_unique<hung_listener>(AF_INET);
      const std::uint16_t port = v4->port();
      hung_listener v6(AF_INET6, port);
      const std::size_t fds = open_fd_count();
      auto scope = weft::move_on_after(300ms);
      scope.run([&] { (void)net::create_tcp_connection(dual_name, port, std::nullopt, 50ms); });
      WEFT_CHILD_REQUIRE(scope.cancelled_caught());
      WEFT_CHILD_REQUIRE(open_fd_count() == fds);
    });
  });
}

// --- Unix stream connections -------------------------------------------------------

TEST_CASE("create_unix_stream_connection fails with ENOENT without a socket file, ECONNREFUSED without a listener") {
  temp_dir dir;
  run_real([&] {
    const std::size_t fds = open_fd_count();
    CHECK(error_of([&] { (void)net::create_unix_stream_connection(dir.file("missing")); }) == ENOENT);
    {
      auto l = net::create_unix_stream_listener(dir.file("stale"));
      l.aclose();  // the socket file stays, nobody listens
    }
    CHECK(error_of([&] { (void)net::create_unix_stream_connection(dir.file("stale")); }) == ECONNREFUSED);
    CHECK(open_fd_count() == fds);
  });
}

TEST_CASE("a failed Unix stream connect is a connect_error naming the function and the path") {
  temp_dir dir;
  run([&] {
    const std::string missing = dir.file("missing");
    try {
      (void)net::create_unix_stream_connection(missing);
      FAIL("connected to a path where nothing listens");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::error_code(ENOENT, std::system_category()));
      const std::string what = e.what();
      CHECK(what.find("weft::net::create_unix_stream_connection") != std::string::npos);
      CHECK(what.find(missing) != std::string::npos);
      const auto* ce = dynamic_cast<const net::connect_error*>(&e);
      REQUIRE(ce != nullptr);
      REQUIRE(ce->attempts().size() == 1);
      CHECK(ce->attempts()[0].address.path() == missing);
    }
  });
}

namespace {

// Fills the accept queue of the Unix listener at path with raw connections
// (non-blocking connects until one is refused with EAGAIN); returns them.
std::vector<int> fill_unix_backlog(const std::string& path) {
  const auto ep = net::endpoint::unix_path(path);
  std::vector<int> fds;
  for (int i = 0; i < 64; ++i) {
    const int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(c >= 0);
    if (::connect(c, ep.data(), static_cast<socklen_t>(ep.size())) != 0) {
      const int e = errno;
      ::close(c);
      REQUIRE(e == EAGAIN);
      return fds;
    }
    fds.push_back(c);
  }
  FAIL("the accept queue of a listener with backlog 1 never filled up");
  return fds;
}

}  // namespace

TEST_CASE("Unix stream connects to a listener whose backlog is full wait, and all connect once the server accepts") {
  temp_dir dir;
  run([&] {
    const std::string path = dir.file("full");
    auto l = net::create_unix_stream_listener(path, 1);
    constexpr int clients = 6;
    int connected = 0, answered = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < clients; ++i)
        tg.start_soon([&, i] {
          auto c = net::create_unix_stream_connection(path);
          // Connected for real: it has a peer, and bytes go both ways.
          CHECK(c.peer_address().path() == path);
          ++connected;
          c.send_all("client " + std::to_string(i));
          CHECK(c.recv(100) == "hello client " + std::to_string(i));
          ++answered;
          c.aclose();
        });
      // The server does not accept for a while: the backlog (1) fills
      // up, and the other clients wait for room.
      weft::sleep(1s);
      CHECK(connected < clients);
      CHECK(answered == 0);
      for (int i = 0; i < clients; ++i) {
        auto s = l.accept();
        tg.start_soon([&, s = std::move(s)]() mutable {
          s.send_all("hello " + s.recv(100));
          CHECK(s.recv(100).empty());
          s.aclose();
        });
      }
    });
    CHECK(connected == clients);
    CHECK(answered == clients);
  });
}

TEST_CASE("a Unix stream connect waiting on a full backlog is ended by a deadline and leaves no descriptor behind") {
  temp_dir dir;
  run([&] {
    const std::string path = dir.file("full");
    auto l = net::create_unix_stream_listener(path, 1);
    const std::vector<int> queued = fill_unix_backlog(path);
    const std::size_t fds = open_fd_count();
    bool returned = false;
    auto scope = weft::move_on_after(2s);
    scope.run([&] {
      (void)net::create_unix_stream_connection(path);
      returned = true;
    });
    CHECK(scope.cancelled_caught());
    CHECK_FALSE(returned);
    CHECK(now_s() == doctest::Approx(2.0));
    CHECK(open_fd_count() == fds);
    // Once there is room again, a connect goes through at once.
    for (int fd : queued) ::close(fd);
    for (std::size_t i = 0; i < queued.size(); ++i) (void)l.accept();
    auto c = net::create_unix_stream_connection(path);
    auto s = l.accept();
    c.send_all("room");
    CHECK(s.recv(10) == "room");
  });
}

TEST_CASE("an empty or too long Unix socket path is rejected, naming the function, the argument and the path") {
  temp_dir dir;
  run([&] {
    const std::string too_long = dir.file(std::string(120, 'x'));
    const std::string ok = dir.file("ok");
    auto listener = net::create_unix_stream_listener(ok);
    const std::size_t fds = open_fd_count();
    const char* connect = "weft::net::create_unix_stream_connection";
    check_invalid_argument([&] { (void)net::create_unix_stream_connection(""); }, {connect, "path is empty"});
    check_invalid_argument([&] { (void)net::create_unix_stream_connection(too_long); },
                           {connect, too_long, std::to_string(too_long.size())});
    check_invalid_argument([&] { (void)net::create_unix_stream_connection(ok, std::string()); },
                           {connect, "local_path is empty"});
    check_invalid_argument([&] { (void)net::create_unix_stream_connection(ok, too_long); },
                           {connect, "local_path", too_long});
    const char* dgram = "weft::net::create_unix_datagram_endpoint";
    check_invalid_argument([&] { (void)net::create_unix_datagram_endpoint(std::string()); },
                           {dgram, "remote_path is empty"});
    check_invalid_argument([&] { (void)net::create_unix_datagram_endpoint(too_long); },
                           {dgram, "remote_path", too_long});
    check_invalid_argument([&] { (void)net::create_unix_datagram_endpoint(std::nullopt, std::string()); },
                           {dgram, "local_path is empty"});
    check_invalid_argument([&] { (void)net::create_unix_stream_listener(""); },
                           {"weft::net::create_unix_stream_listener", "path is empty"});
    check_invalid_argument([&] { (void)net::create_unix_stream_listener(too_long); },
                           {"weft::net::create_unix_stream_listener", too_long});
    check_invalid_argument([&] { (void)net::create_unix_datagram_listener(""); },
                           {"weft::net::create_unix_datagram_listener", "path is empty"});
    check_invalid_argument([&] { (void)net::create_unix_datagram_listener(too_long); },
                           {"weft::net::create_unix_datagram_listener", too_long});
    CHECK(open_fd_count() == fds);
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), {}) == 1);  // only "ok"
  });
}

TEST_CASE("argument errors of the connection factories name the function and the bad value") {
  run([] {
    check_invalid_argument([] { (void)net::create_tcp_connection("127.0.0.1", 80, std::nullopt, -1.5s); },
                           {"weft::net::create_tcp_connection", "happy_eyeballs_delay", "-1.5"});
    check_invalid_argument(
        [] { (void)net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), 9), std::nullopt, AF_UNIX); },
        {"weft::net::create_udp_endpoint", "family", std::to_string(AF_UNIX)});
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) == 0);
    check_invalid_argument([&] { (void)net::wrap_stream_socket(fds[0]); },
                           {"weft::net::wrap_stream_socket", "fd " + std::to_string(fds[0])});
    ::close(fds[0]);
    ::close(fds[1]);
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    check_invalid_argument([&] { (void)net::wrap_connected_datagram_socket(fds[0]); },
                           {"weft::net::wrap_connected_datagram_socket", "fd " + std::to_string(fds[0])});
    ::close(fds[0]);
    ::close(fds[1]);
    check_invalid_argument([] { (void)net::wrap_stream_socket(-1); }, {"weft::net::wrap_stream_socket", "fd -1"});
  });
}

// --- wrapping sockets --------------------------------------------------------------

TEST_CASE("wrap_stream_socket takes ownership of a connected stream socket") {
  run_real([] {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    auto a = net::wrap_stream_socket(fds[0]);
    CHECK(a.socket().native_handle() == fds[0]);
    CHECK(a.family() == AF_UNIX);
    ::send(fds[1], "raw", 3, 0);
    CHECK(a.recv(10) == "raw");
    a.aclose();
    CHECK_FALSE(fd_is_open(fds[0]));
    ::close(fds[1]);

    // A connected TCP socket made outside weft.
    auto ls = net::create_tcp_listeners("127.0.0.1", 0);
    const int raw = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const auto addr = loopback_sockaddr(AF_INET, ls[0].local_address().port());
    REQUIRE(::connect(raw, reinterpret_cast<const sockaddr*>(&addr), sizeof(sockaddr_in)) == 0);
    auto t = net::wrap_stream_socket(raw);
    CHECK(t.family() == AF_INET);
    auto s = ls[0].accept();
    t.send_all("tcp");
    CHECK(s.recv(10) == "tcp");
  });
}

TEST_CASE("wrapping rejects wrong socket types and families, unconnected sockets and non-sockets; they stay open") {
  run_real([] {
    int dgram[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram) == 0);
    CHECK_THROWS_AS((void)net::wrap_stream_socket(dgram[0]), std::invalid_argument);
    CHECK(fd_is_open(dgram[0]));
    ::close(dgram[0]);
    ::close(dgram[1]);

    const int unconnected = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_THROWS_AS((void)net::wrap_stream_socket(unconnected), std::invalid_argument);
    CHECK(fd_is_open(unconnected));
    ::close(unconnected);

    int seq[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seq) == 0);
    CHECK_THROWS_AS((void)net::wrap_stream_socket(seq[0]), std::invalid_argument);
    CHECK_THROWS_AS((void)net::wrap_connected_datagram_socket(seq[0]), std::invalid_argument);
    CHECK(fd_is_open(seq[0]));
    ::close(seq[0]);
    ::close(seq[1]);

    // A datagram socket of another family.
    if (const int netlink = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, 0); netlink >= 0) {
      CHECK_THROWS_AS((void)net::wrap_connected_datagram_socket(netlink), std::invalid_argument);
      CHECK(fd_is_open(netlink));
      ::close(netlink);
    }

    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    CHECK_THROWS_AS((void)net::wrap_stream_socket(pipe_fds[0]), std::invalid_argument);
    CHECK_THROWS_AS((void)net::wrap_connected_datagram_socket(pipe_fds[0]), std::invalid_argument);
    CHECK(fd_is_open(pipe_fds[0]));
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
  });
}

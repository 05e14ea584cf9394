#include "net/net_support.hpp"

#include <boost/asio/ip/address.hpp>

#include <netdb.h>
#include <sys/un.h>

#include <algorithm>
#include <stdexcept>
#include <string>

using namespace weft_net_test;
namespace ip = boost::asio::ip;

// --- endpoint ----------------------------------------------------------------------

TEST_CASE("a default endpoint is unspecified and empty") {
  const net::endpoint ep;
  CHECK(ep.family() == AF_UNSPEC);
  CHECK(ep.size() == 0);
  CHECK_FALSE(ep.is_ip());
  CHECK_FALSE(ep.is_unix());
  CHECK(ep.to_string() == "<unspecified>");
  CHECK_THROWS_AS((void)ep.address(), std::logic_error);
  CHECK_THROWS_AS((void)ep.port(), std::logic_error);
  CHECK_THROWS_AS((void)ep.path(), std::logic_error);
  CHECK(ep == net::endpoint());
}

TEST_CASE("an IPv4 endpoint holds its address and port") {
  const net::endpoint ep(ip::make_address("127.0.0.1"), 8080);
  CHECK(ep.family() == AF_INET);
  CHECK(ep.is_ip());
  CHECK_FALSE(ep.is_unix());
  CHECK(ep.address() == ip::make_address("127.0.0.1"));
  CHECK(ep.port() == 8080);
  CHECK(ep.size() == sizeof(sockaddr_in));
  CHECK(ep.to_string() == "127.0.0.1:8080");
  CHECK_THROWS_AS((void)ep.path(), std::logic_error);
  const auto* sin = reinterpret_cast<const sockaddr_in*>(ep.data());
  CHECK(ntohs(sin->sin_port) == 8080);
  CHECK(ntohl(sin->sin_addr.s_addr) == INADDR_LOOPBACK);
}

TEST_CASE("an IPv6 endpoint holds its address and port and prints in brackets") {
  const net::endpoint ep(ip::make_address("::1"), 443);
  CHECK(ep.family() == AF_INET6);
  CHECK(ep.is_ip());
  CHECK(ep.address() == ip::make_address("::1"));
  CHECK(ep.port() == 443);
  CHECK(ep.size() == sizeof(sockaddr_in6));
  CHECK(ep.to_string() == "[::1]:443");
}

TEST_CASE("a Unix endpoint holds its path; a path that does not fit is rejected") {
  const net::endpoint ep = net::endpoint::unix_path("/tmp/weft-nettest-sock");
  CHECK(ep.family() == AF_UNIX);
  CHECK(ep.is_unix());
  CHECK_FALSE(ep.is_ip());
  CHECK(ep.path() == "/tmp/weft-nettest-sock");
  CHECK(ep.to_string() == "/tmp/weft-nettest-sock");
  CHECK_THROWS_AS((void)ep.address(), std::logic_error);
  CHECK_THROWS_AS((void)ep.port(), std::logic_error);

  const std::size_t capacity = sizeof(sockaddr_un{}.sun_path);
  CHECK_NOTHROW((void)net::endpoint::unix_path(std::string(capacity - 1, 'p')));
  CHECK_THROWS_AS((void)net::endpoint::unix_path(std::string(capacity, 'p')), std::invalid_argument);
  CHECK_THROWS_AS((void)net::endpoint::unix_path(std::string(1000, 'p')), std::invalid_argument);
}

TEST_CASE("endpoint argument errors name the function and the bad value") {
  const std::string long_path(200, 'p');
  check_invalid_argument([&] { (void)net::endpoint::unix_path(long_path); },
                         {"weft::net::endpoint::unix_path", long_path, "200"});
  std::vector<char> big(net::endpoint::capacity() + 1);
  check_invalid_argument([&] { (void)net::endpoint(reinterpret_cast<const sockaddr*>(big.data()), big.size()); },
                         {"weft::net::endpoint", std::to_string(big.size())});
  net::endpoint ep(ip::make_address("127.0.0.1"), 1);
  check_invalid_argument([&] { ep.resize(1000); }, {"weft::net::endpoint::resize", "1000"});
  const auto unix_ep = net::endpoint::unix_path("/tmp/weft-x");
  try {
    (void)unix_ep.port();
    FAIL("a Unix endpoint has a port");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()).find("weft::net::endpoint::port") != std::string::npos);
    CHECK(std::string(e.what()).find("/tmp/weft-x") != std::string::npos);
  }
}

TEST_CASE("an unnamed Unix endpoint has an empty path") {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  const net::endpoint ep(reinterpret_cast<const sockaddr*>(&un), offsetof(sockaddr_un, sun_path));
  CHECK(ep.is_unix());
  CHECK(ep.path().empty());
}

TEST_CASE("an endpoint made from raw sockaddr bytes equals the same address made directly") {
  const auto ss = loopback_sockaddr(AF_INET, 1234);
  const net::endpoint raw(reinterpret_cast<const sockaddr*>(&ss), sizeof(sockaddr_in));
  CHECK(raw == net::endpoint(ip::make_address("127.0.0.1"), 1234));
  CHECK_FALSE(raw == net::endpoint(ip::make_address("127.0.0.1"), 1235));
  CHECK_FALSE(raw == net::endpoint(ip::make_address("127.0.0.2"), 1234));
  CHECK_FALSE(raw == net::endpoint(ip::make_address("::1"), 1234));

  const auto ss6 = loopback_sockaddr(AF_INET6, 99);
  const net::endpoint raw6(reinterpret_cast<const sockaddr*>(&ss6), sizeof(sockaddr_in6));
  CHECK(raw6.address() == ip::make_address("::1"));
  CHECK(raw6.port() == 99);
}

TEST_CASE("an endpoint rejects a length beyond its capacity") {
  std::vector<char> big(net::endpoint::capacity() + 1);
  CHECK_THROWS_AS(net::endpoint(reinterpret_cast<const sockaddr*>(big.data()), big.size()), std::invalid_argument);
  net::endpoint ep(ip::make_address("127.0.0.1"), 1);
  CHECK_THROWS_AS(ep.resize(net::endpoint::capacity() + 1), std::invalid_argument);
  CHECK_NOTHROW(ep.resize(net::endpoint::capacity()));
  CHECK(ep.size() == net::endpoint::capacity());
}

// --- getaddrinfo -------------------------------------------------------------------

TEST_CASE("getaddrinfo converts a numeric IPv4 host and port without a lookup") {
  run_real([] {
    // A lookup would park the task on the resolver thread and let the
    // other task run; a numeric host is converted in place.
    bool other_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      const auto infos = net::getaddrinfo("127.0.0.1", "8080", AF_UNSPEC, SOCK_STREAM);
      CHECK_FALSE(other_ran);
      REQUIRE(infos.size() == 1);
      CHECK(infos[0].family == AF_INET);
      CHECK(infos[0].socktype == SOCK_STREAM);
      CHECK(infos[0].protocol == IPPROTO_TCP);
      CHECK(infos[0].address == net::endpoint(ip::make_address("127.0.0.1"), 8080));
      CHECK(infos[0].canonical_name.empty());
    });
    CHECK(other_ran);
  });
}

TEST_CASE("getaddrinfo converts a numeric IPv6 host and honours the socket type") {
  run_real([] {
    bool other_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      const auto infos = net::getaddrinfo("::1", "53", AF_UNSPEC, SOCK_DGRAM);
      CHECK_FALSE(other_ran);
      REQUIRE(infos.size() == 1);
      CHECK(infos[0].family == AF_INET6);
      CHECK(infos[0].socktype == SOCK_DGRAM);
      CHECK(infos[0].protocol == IPPROTO_UDP);
      CHECK(infos[0].address == net::endpoint(ip::make_address("::1"), 53));
      const auto v6 = net::getaddrinfo("::1", "53", AF_INET6, SOCK_STREAM);
      REQUIRE(v6.size() == 1);
      CHECK(v6[0].socktype == SOCK_STREAM);
    });
  });
}

TEST_CASE("getaddrinfo with socket type 0 returns both stream and datagram entries") {
  run_real([] {
    for (const char* host : {"127.0.0.1", "localhost"}) {
      CAPTURE(std::string(host));
      const auto infos = net::getaddrinfo(host, "80");
      const bool stream = std::any_of(infos.begin(), infos.end(), [](const net::address_info& i) {
        return i.socktype == SOCK_STREAM && i.protocol == IPPROTO_TCP;
      });
      const bool dgram = std::any_of(infos.begin(), infos.end(), [](const net::address_info& i) {
        return i.socktype == SOCK_DGRAM && i.protocol == IPPROTO_UDP;
      });
      CHECK(stream);
      CHECK(dgram);
    }
  });
}

TEST_CASE("getaddrinfo resolves localhost to loopback addresses without blocking the runtime") {
  run_real([] {
    bool other_ran = false;
    std::vector<net::address_info> infos;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      infos = net::getaddrinfo("localhost", "80", AF_UNSPEC, SOCK_STREAM);
      // The lookup ran on the resolver thread while this task was parked.
      CHECK(other_ran);
    });
    REQUIRE_FALSE(infos.empty());
    for (const auto& i : infos) {
      CHECK(i.address.is_ip());
      CHECK(i.address.address().is_loopback());
      CHECK(i.address.port() == 80);
      CHECK(i.family == i.address.family());
    }
    const bool has_v4 = std::any_of(infos.begin(), infos.end(), [](const net::address_info& i) {
      return i.address == net::endpoint(ip::make_address("127.0.0.1"), 80);
    });
    CHECK(has_v4);
  });
}

TEST_CASE("getaddrinfo looks up a service name for a numeric host") {
  run_real([] {
    const auto infos = net::getaddrinfo("127.0.0.1", "http", AF_INET, SOCK_STREAM);
    REQUIRE(infos.size() == 1);
    CHECK(infos[0].address.port() == 80);
  });
}

TEST_CASE("getaddrinfo with no result is an error") {
  run_real([] {
    // A numeric host of the other family gives nothing: an error, not an empty list.
    CHECK(error_of([] { (void)net::getaddrinfo("127.0.0.1", "80", AF_INET6); }) > 0);
    CHECK(error_of([] { (void)net::getaddrinfo("::1", "80", AF_INET); }) > 0);
    CHECK_THROWS_AS((void)net::getaddrinfo("::1", "80", AF_INET), std::system_error);
  });
}

TEST_CASE("getaddrinfo rejects a numeric port above 65535 or below 0, naming the port") {
  run([] {
    for (const char* port : {"70000", "65536", "-1", "-80", "99999999999999999999999"}) {
      CAPTURE(std::string(port));
      for (const char* host : {"127.0.0.1", "::1", "localhost"}) {
        CAPTURE(std::string(host));
        check_invalid_argument([&] { (void)net::getaddrinfo(host, port); }, {"weft::net::getaddrinfo", port});
        check_invalid_argument([&] { (void)net::getaddrinfo(host, port, AF_UNSPEC, SOCK_DGRAM); },
                               {"weft::net::getaddrinfo", port});
      }
    }
    // The ends of the range are fine.
    CHECK(net::getaddrinfo("127.0.0.1", "65535", AF_INET, SOCK_STREAM).at(0).address.port() == 65535);
    CHECK(net::getaddrinfo("127.0.0.1", "0", AF_INET, SOCK_STREAM).at(0).address.port() == 0);
    CHECK(net::getaddrinfo("::1", "00080", AF_INET6, SOCK_STREAM).at(0).address.port() == 80);
  });
}

TEST_CASE("getaddrinfo with a service name that does not resolve throws a system error naming the service") {
  run([] {
    for (const char* host : {"127.0.0.1", "localhost"}) {
      CAPTURE(std::string(host));
      try {
        (void)net::getaddrinfo(host, "weft-no-such-service", AF_UNSPEC, SOCK_STREAM);
        FAIL("an unknown service name resolved");
      } catch (const std::invalid_argument& e) {
        FAIL("an unknown service name is not an argument error: " << std::string(e.what()));
      } catch (const std::system_error& e) {
        const std::string what = e.what();
        CAPTURE(what);
        CHECK(e.code());
        CHECK(what.find("weft::net::getaddrinfo") != std::string::npos);
        CHECK(what.find("weft-no-such-service") != std::string::npos);
      }
    }
  });
}

TEST_CASE("an endpoint rejects a port out of range, naming it") {
  const auto loopback = ip::make_address("127.0.0.1");
  for (const int port : {65536, 70000, -1}) {
    CAPTURE(port);
    check_invalid_argument([&] { (void)net::endpoint(loopback, port); },
                           {"weft::net::endpoint", std::to_string(port)});
  }
  CHECK(net::endpoint(loopback, 65535).port() == 65535);
}

TEST_CASE("getaddrinfo rejects an invalid family or socket type") {
  run_real([] {
    CHECK_THROWS_AS((void)net::getaddrinfo("127.0.0.1", "80", AF_UNIX), std::invalid_argument);
    CHECK_THROWS_AS((void)net::getaddrinfo("127.0.0.1", "80", 12345), std::invalid_argument);
    CHECK_THROWS_AS((void)net::getaddrinfo("127.0.0.1", "80", AF_UNSPEC, SOCK_RAW), std::invalid_argument);
  });
}

TEST_CASE("getaddrinfo and getnameinfo argument errors name the function and the bad value") {
  run([] {
    check_invalid_argument([] { (void)net::getaddrinfo("127.0.0.1", "80", AF_UNIX); },
                           {"weft::net::getaddrinfo", "family", std::to_string(AF_UNIX)});
    check_invalid_argument([] { (void)net::getaddrinfo("127.0.0.1", "80", AF_UNSPEC, SOCK_RAW); },
                           {"weft::net::getaddrinfo", "type", std::to_string(SOCK_RAW)});
    check_invalid_argument([] { (void)net::getnameinfo(net::endpoint::unix_path("/tmp/weft-y")); },
                           {"weft::net::getnameinfo", "/tmp/weft-y"});
  });
}

TEST_CASE("getaddrinfo is a cancel point") {
  run_real([] {
    bool returned = false;
    auto scope = weft::open_cancel_scope();
    scope.run([&](weft::cancel_scope& s) {
      s.cancel();
      (void)net::getaddrinfo("127.0.0.1", "80");
      returned = true;
    });
    CHECK_FALSE(returned);
    CHECK(scope.cancelled_caught());
  });
}

// --- getnameinfo -------------------------------------------------------------------

TEST_CASE("getnameinfo with numeric flags formats the address and port without a lookup") {
  run_real([] {
    bool other_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { other_ran = true; });
      const auto v4 =
          net::getnameinfo(net::endpoint(ip::make_address("127.0.0.1"), 8080), NI_NUMERICHOST | NI_NUMERICSERV);
      CHECK(v4.first == "127.0.0.1");
      CHECK(v4.second == "8080");
      const auto v6 = net::getnameinfo(net::endpoint(ip::make_address("::1"), 443), NI_NUMERICHOST | NI_NUMERICSERV);
      CHECK(v6.first == "::1");
      CHECK(v6.second == "443");
      CHECK_FALSE(other_ran);
    });
  });
}

TEST_CASE("getnameinfo finds the name of 127.0.0.1 in the hosts file") {
  run_real([] {
    const auto [host, serv] = net::getnameinfo(net::endpoint(ip::make_address("127.0.0.1"), 80), NI_NUMERICSERV);
    CHECK_FALSE(host.empty());
    CHECK(host != "127.0.0.1");  // 127.0.0.1 has a name in every hosts file
    CHECK(serv == "80");
    const auto numeric_host = net::getnameinfo(net::endpoint(ip::make_address("127.0.0.1"), 80), NI_NUMERICHOST);
    CHECK(numeric_host.first == "127.0.0.1");
    CHECK(numeric_host.second == "http");
  });
}

TEST_CASE("getnameinfo rejects a non-IP endpoint") {
  run_real([] {
    CHECK_THROWS_AS((void)net::getnameinfo(net::endpoint::unix_path("/tmp/x"), NI_NUMERICHOST | NI_NUMERICSERV),
                    std::invalid_argument);
    CHECK_THROWS_AS((void)net::getnameinfo(net::endpoint()), std::invalid_argument);
  });
}

#include "net/net_support.hpp"

#include <boost/asio/ip/address.hpp>

#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

using namespace weft_net_test;
namespace ip = boost::asio::ip;

namespace {

net::address_attempt failed(const std::string& host, int port, int error) {
  const std::error_code ec(error, std::system_category());
  return {net::endpoint(ip::make_address(host), port), ec,
          std::make_exception_ptr(std::system_error(ec, "connecting to " + host))};
}

}  // namespace

TEST_CASE("connect_error and bind_error are std::system_error, so one catch sees every factory failure") {
  static_assert(std::is_base_of_v<std::system_error, net::connect_error>);
  static_assert(std::is_base_of_v<std::system_error, net::bind_error>);
  static_assert(std::is_base_of_v<net::address_error, net::connect_error>);
  static_assert(std::is_base_of_v<net::address_error, net::bind_error>);
  static_assert(std::is_nothrow_copy_constructible_v<net::connect_error>);
  static_assert(!std::is_base_of_v<net::connect_error, net::bind_error>);
  try {
    throw net::connect_error("weft::net::create_tcp_connection: could not connect to example:80",
                             {failed("127.0.0.1", 80, ECONNREFUSED)});
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::error_code(ECONNREFUSED, std::system_category()));
  }
}

TEST_CASE("what() names the context and lists every attempt with its address and error message") {
  const net::connect_error e("weft::net::create_tcp_connection: could not connect to example:80",
                             {failed("::1", 80, ENETUNREACH), failed("127.0.0.1", 80, ECONNREFUSED)});
  const std::string what = e.what();
  CHECK(what ==
        "weft::net::create_tcp_connection: could not connect to example:80: [::1]:80: " +
            std::error_code(ENETUNREACH, std::system_category()).message() + "; 127.0.0.1:80: " +
            std::error_code(ECONNREFUSED, std::system_category()).message());
}

TEST_CASE("code() is the error of the last attempt; attempts() keeps them all in order") {
  const net::connect_error e("context", {failed("::1", 80, ENETUNREACH), failed("127.0.0.1", 80, ECONNREFUSED)});
  CHECK(e.code() == std::error_code(ECONNREFUSED, std::system_category()));
  REQUIRE(e.attempts().size() == 2);
  CHECK(e.attempts()[0].address == net::endpoint(ip::make_address("::1"), 80));
  CHECK(e.attempts()[0].error == std::error_code(ENETUNREACH, std::system_category()));
  CHECK(error_of(e.attempts()[0].exception) == ENETUNREACH);
  CHECK(e.attempts()[1].address == net::endpoint(ip::make_address("127.0.0.1"), 80));
  CHECK(error_of(e.attempts()[1].exception) == ECONNREFUSED);
}

TEST_CASE("a copy of an address error shares its message and attempts") {
  const net::bind_error original("weft::net::create_tcp_listeners: could not bind a listener",
                                 {failed("127.0.0.1", 8080, EADDRINUSE)});
  const net::bind_error copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
  CHECK(std::string(copy.what()) == original.what());
  CHECK(copy.code() == original.code());
  REQUIRE(copy.attempts().size() == 1);
  CHECK(copy.attempts()[0].address == original.attempts()[0].address);
}

TEST_CASE("an address error without attempts has an empty code and only its context as message") {
  const net::connect_error e("nothing was tried", {});
  CHECK_FALSE(e.code());
  CHECK(std::string(e.what()) == "nothing was tried");
  CHECK(e.attempts().empty());
}

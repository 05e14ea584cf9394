// Endpoints and DNS.

#include "net/io.hpp"

#include <weft/net/endpoint.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include <netdb.h>
#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <stdexcept>

namespace weft::net {

namespace asio = boost::asio;

endpoint::endpoint(const asio::ip::address& address, int port) {
  detail::check_port(port, "weft::net::endpoint");
  const asio::ip::tcp::endpoint ep(address, static_cast<std::uint16_t>(port));
  std::memcpy(&storage_, ep.data(), ep.size());
  len_ = ep.size();
}

WEFT_HOT endpoint::endpoint(const sockaddr* addr, std::size_t len) {
  if (len > sizeof(storage_))
    throw std::invalid_argument("weft::net::endpoint: an address of " + std::to_string(len) +
                                " bytes does not fit in a sockaddr_storage (" + std::to_string(sizeof(storage_)) +
                                " bytes)");
  std::memcpy(&storage_, addr, len);
  len_ = len;
}

endpoint endpoint::unix_path(std::string_view path) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  if (path.size() >= sizeof(un.sun_path))
    throw std::invalid_argument("weft::net::endpoint::unix_path: the path \"" + std::string(path) + "\" is " +
                                std::to_string(path.size()) + " bytes long; a Unix socket path holds at most " +
                                std::to_string(sizeof(un.sun_path) - 1));
  std::memcpy(un.sun_path, path.data(), path.size());
  return endpoint(reinterpret_cast<const sockaddr*>(&un), offsetof(sockaddr_un, sun_path) + path.size() + 1);
}

void endpoint::resize(std::size_t len) {
  if (len > sizeof(storage_))
    throw std::invalid_argument("weft::net::endpoint::resize: " + std::to_string(len) +
                                " bytes is more than a sockaddr_storage holds (" + std::to_string(sizeof(storage_)) +
                                ")");
  len_ = len;
}

asio::ip::address endpoint::address() const {
  if (!is_ip()) throw std::logic_error("weft::net::endpoint::address: " + to_string() + " is not an IP endpoint");
  asio::ip::tcp::endpoint ep;
  std::memcpy(ep.data(), &storage_, len_);
  return ep.address();
}

std::uint16_t endpoint::port() const {
  if (!is_ip()) throw std::logic_error("weft::net::endpoint::port: " + to_string() + " is not an IP endpoint");
  asio::ip::tcp::endpoint ep;
  std::memcpy(ep.data(), &storage_, len_);
  return ep.port();
}

std::string endpoint::path() const {
  if (!is_unix()) throw std::logic_error("weft::net::endpoint::path: " + to_string() + " is not a Unix endpoint");
  const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
  const std::size_t offset = offsetof(sockaddr_un, sun_path);
  if (len_ <= offset) return {};
  std::string p(un->sun_path, len_ - offset);
  if (const auto nul = p.find('\0'); nul != std::string::npos && nul != 0) p.resize(nul);
  return p;
}

std::string endpoint::to_string() const {
  if (is_unix()) return path();
  if (!is_ip()) return "<unspecified>";
  const auto a = address();
  return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(port()) : a.to_string() + ":" + std::to_string(port());
}

bool operator==(const endpoint& a, const endpoint& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

namespace {

// A port given as a number (what getaddrinfo(3) would read as one: leading
// blanks, a sign, digits; "" means 0); nullopt for a service name.
// @throws std::invalid_argument if the number is not a port.
std::optional<std::uint16_t> numeric_port(std::string_view service) {
  if (service.empty()) return 0;
  std::size_t i = 0;
  while (i < service.size() && std::isspace(static_cast<unsigned char>(service[i]))) ++i;
  bool negative = false;
  if (i < service.size() && (service[i] == '+' || service[i] == '-')) negative = service[i++] == '-';
  if (i == service.size()) return std::nullopt;
  unsigned long value = 0;
  for (; i < service.size(); ++i) {
    if (service[i] < '0' || service[i] > '9') return std::nullopt;
    value = std::min<unsigned long>(value * 10 + static_cast<unsigned long>(service[i] - '0'), 1ul << 20);
  }
  if (value > static_cast<unsigned long>(detail::max_port) || (negative && value != 0))
    throw std::invalid_argument("weft::net::getaddrinfo: port " + std::string(service) +
                                " is out of range (0 to 65535)");
  return static_cast<std::uint16_t>(value);
}

template <class Protocol>
std::vector<address_info> resolve(std::string_view host, std::string_view port, int family, int flags, int socktype) {
  using resolver = typename Protocol::resolver;
  std::vector<address_info> out;
  auto add = [&](const typename Protocol::endpoint& ep, const std::string& canonical) {
    address_info info;
    info.family = ep.address().is_v6() ? AF_INET6 : AF_INET;
    info.socktype = socktype;
    info.protocol = socktype == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
    info.canonical_name = canonical;
    info.address = endpoint(ep.address(), ep.port());
    out.push_back(std::move(info));
  };
  const std::optional<std::uint16_t> port_n = numeric_port(port);
  // Numeric hosts and ports need no lookup (and no resolver thread).
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(std::string(host), ec);
  if (!ec && port_n) {
    if (family == AF_UNSPEC || (family == AF_INET6) == addr.is_v6()) add({addr, *port_n}, "");
  } else {
    // A numeric port goes to the resolver as plain digits, which it cannot
    // read differently.
    const std::string service = port_n ? std::to_string(*port_n) : std::string(port);
    resolver r(lowlevel::io_context());
    auto rflags = static_cast<typename resolver::flags>(flags);
    typename resolver::results_type results;
    try {
      if (family == AF_UNSPEC) {
        lowlevel::describe_wait("getaddrinfo");
        results = r.async_resolve(std::string(host), service, rflags, use_fiber);
      } else {
        lowlevel::describe_wait("getaddrinfo");
        results = r.async_resolve(family == AF_INET6 ? Protocol::v6() : Protocol::v4(), std::string(host), service,
                                  rflags, use_fiber);
      }
    } catch (const boost::system::system_error& e) {
      throw std::system_error(std::error_code(e.code()), "weft::net::getaddrinfo: looking up host \"" +
                                                             std::string(host) + "\" and service \"" +
                                                             std::string(port) + "\"");
    }
    for (const auto& entry : results) add(entry.endpoint(), entry.host_name());
  }
  if (out.empty())
    throw std::system_error(std::error_code(boost::system::error_code(asio::error::host_not_found)),
                            "weft::net::getaddrinfo: no address for host \"" + std::string(host) +
                                "\" and service \"" + std::string(port) + "\"");
  return out;
}

}  // namespace

std::vector<address_info> getaddrinfo(std::string_view host, std::string_view port, int family, int type, int flags) try {
  lowlevel::raise_if_cancelled();
  detail::check_ip_family(family, "weft::net::getaddrinfo");
  if (type == SOCK_DGRAM) return resolve<asio::ip::udp>(host, port, family, flags, SOCK_DGRAM);
  if (type != 0 && type != SOCK_STREAM)
    throw std::invalid_argument("weft::net::getaddrinfo: type must be 0, SOCK_STREAM or SOCK_DGRAM, not " +
                                std::to_string(type));
  std::vector<address_info> out = resolve<asio::ip::tcp>(host, port, family, flags, SOCK_STREAM);
  if (type == 0) {
    // Both socket types, as getaddrinfo(3) gives them: each address once
    // for streams and once for datagrams.
    const std::size_t n = out.size();
    for (std::size_t i = 0; i < n; ++i) {
      address_info d = out[i];
      d.socktype = SOCK_DGRAM;
      d.protocol = IPPROTO_UDP;
      out.push_back(std::move(d));
    }
  }
  return out;
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::getaddrinfo");
}

std::pair<std::string, std::string> getnameinfo(const endpoint& ep, int flags) try {
  lowlevel::raise_if_cancelled();
  if (!ep.is_ip())
    throw std::invalid_argument("weft::net::getnameinfo: " + (ep.is_unix() ? "the Unix endpoint \"" + ep.path() + "\""
                                                                            : ep.to_string()) +
                                " is not an IP endpoint");
  if ((flags & NI_NUMERICHOST) && (flags & NI_NUMERICSERV))
    return {ep.address().to_string(), std::to_string(ep.port())};
  asio::ip::tcp::resolver r(lowlevel::io_context());
  lowlevel::describe_wait("getnameinfo");
  auto results = r.async_resolve(asio::ip::tcp::endpoint(ep.address(), ep.port()), use_fiber);
  if (results.empty())
    throw std::system_error(std::error_code(boost::system::error_code(asio::error::host_not_found)), "weft::net::getnameinfo: no name");
  const auto& entry = *results.begin();
  std::string host = (flags & NI_NUMERICHOST) ? ep.address().to_string() : entry.host_name();
  std::string serv = (flags & NI_NUMERICSERV) ? std::to_string(ep.port()) : entry.service_name();
  return {host, serv};
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::getnameinfo");
}

}  // namespace weft::net

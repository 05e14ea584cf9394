// weft::net::endpoint: a socket address (IPv4, IPv6 or Unix), and DNS.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::net {

/// Any socket address: an IP address and port, or a Unix socket path.
class endpoint {
 public:
  endpoint() noexcept = default;
  /// An IP endpoint. The port is an int so that a value out of range is
  /// caught rather than wrapped around.
  /// @throws std::invalid_argument unless 0 <= port <= 65535.
  endpoint(const boost::asio::ip::address& address, int port);
  /// A Unix socket path endpoint. @throws std::invalid_argument (naming the
  /// path and its length) if it is longer than sun_path holds (107 bytes).
  static endpoint unix_path(std::string_view path);
  /// From raw sockaddr bytes. @throws std::invalid_argument if len is too big.
  endpoint(const sockaddr* addr, std::size_t len);

  int family() const noexcept { return len_ == 0 ? AF_UNSPEC : storage_.ss_family; }
  bool is_ip() const noexcept { return family() == AF_INET || family() == AF_INET6; }
  bool is_unix() const noexcept { return family() == AF_UNIX; }
  /// The IP address (only for IP endpoints). @throws std::logic_error otherwise.
  boost::asio::ip::address address() const;
  /// The port (only for IP endpoints). @throws std::logic_error otherwise.
  std::uint16_t port() const;
  /// The Unix socket path ("" for unnamed sockets). @throws std::logic_error if not Unix.
  std::string path() const;
  /// "1.2.3.4:80", "[::1]:80", or the Unix path.
  std::string to_string() const;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  std::size_t size() const noexcept { return len_; }
  void resize(std::size_t len);
  static constexpr std::size_t capacity() noexcept { return sizeof(sockaddr_storage); }

  friend bool operator==(const endpoint& a, const endpoint& b) noexcept;

 private:
  sockaddr_storage storage_{};
  std::size_t len_ = 0;
};

/// One result of getaddrinfo.
struct address_info {
  int family = AF_UNSPEC;
  int socktype = 0;
  int protocol = 0;
  std::string canonical_name;
  endpoint address;
};

/// Resolves host and port (numbers or names) without blocking the runtime:
/// numeric hosts are converted directly, names are looked up on a resolver
/// thread. A port given as a number must be 0 to 65535 (getaddrinfo(3)
/// would silently wrap 70000 around to 4464); any other port string is a
/// service name ("http"). family: AF_UNSPEC, AF_INET or AF_INET6; type:
/// SOCK_STREAM, SOCK_DGRAM or 0 (both). Checkpoint, on the numeric fast path
/// too (it then throws weft::cancelled in a cancelled scope but never yields).
/// @throws weft::cancelled; std::invalid_argument for a numeric port out of
/// range (naming it), a bad family or type; std::system_error naming the host
/// and the service when the lookup fails (an unknown host or service name)
/// or finds nothing (an empty result is an error).
std::vector<address_info> getaddrinfo(std::string_view host, std::string_view port, int family = AF_UNSPEC,
                                      int type = 0, int flags = 0);

/// The host and service names of an IP endpoint (flags as getnameinfo(3):
/// NI_NUMERICHOST, NI_NUMERICSERV, ...). Does not block the runtime.
/// Checkpoint, with numeric flags too. @throws weft::cancelled;
/// std::invalid_argument (naming it) if
/// ep is not an IP endpoint; std::system_error.
std::pair<std::string, std::string> getnameinfo(const endpoint& ep, int flags = 0);

}  // namespace weft::net

// Transports around descriptors opened elsewhere: wrap_stream_socket,
// wrap_connected_datagram_socket.

#include "net/factory.hpp"
#include "net/io.hpp"

#include <weft/net/connect.hpp>

#include <sys/socket.h>

#include <string>

namespace weft::net {

namespace {
int socket_type_of(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -1;
  return type;
}
int socket_family_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  return ss.ss_family;
}
}  // namespace

stream_transport wrap_stream_socket(int fd) try {
  const int type = socket_type_of(fd);
  const int family = socket_family_of(fd);
  if (type != SOCK_STREAM || (family != AF_INET && family != AF_INET6 && family != AF_UNIX))
    throw std::invalid_argument("weft::net::wrap_stream_socket: fd " + std::to_string(fd) +
                                " is not a TCP or Unix stream socket");
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0)
    throw std::invalid_argument("weft::net::wrap_stream_socket: the socket of fd " + std::to_string(fd) +
                                " is not connected");
  return stream_transport(detail::stream_socket(lowlevel::io_context(), detail::stream_proto(family), fd));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::wrap_stream_socket");
}

datagram_transport wrap_connected_datagram_socket(int fd) try {
  const int type = socket_type_of(fd);
  const int family = socket_family_of(fd);
  if (type != SOCK_DGRAM || (family != AF_INET && family != AF_INET6 && family != AF_UNIX))
    throw std::invalid_argument("weft::net::wrap_connected_datagram_socket: fd " + std::to_string(fd) +
                                " is not a UDP or Unix datagram socket");
  return datagram_transport(detail::dgram_socket(lowlevel::io_context(), detail::dgram_proto(family), fd));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::wrap_connected_datagram_socket");
}

}  // namespace weft::net

// Private helpers of the factories that open sockets: protocols and
// endpoints in Asio's generic form, and the record of a failed attempt.
#pragma once

#include <weft/net/endpoint.hpp>
#include <weft/net/errors.hpp>
#include <weft/net/listener.hpp>

#include <boost/asio/generic/datagram_protocol.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/system/error_code.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <exception>
#include <string>
#include <string_view>
#include <system_error>

namespace weft::net::detail {

using stream_socket = boost::asio::generic::stream_protocol::socket;
using dgram_socket = boost::asio::generic::datagram_protocol::socket;
using acceptor = stream_listener::acceptor_type;

inline boost::asio::generic::stream_protocol stream_proto(int family) {
  return boost::asio::generic::stream_protocol(family, family == AF_UNIX ? 0 : IPPROTO_TCP);
}
inline boost::asio::generic::datagram_protocol dgram_proto(int family) {
  return boost::asio::generic::datagram_protocol(family, family == AF_UNIX ? 0 : IPPROTO_UDP);
}
inline boost::asio::generic::stream_protocol::endpoint stream_ep(const endpoint& ep) {
  return {ep.data(), ep.size(), ep.family() == AF_UNIX ? 0 : IPPROTO_TCP};
}
inline boost::asio::generic::datagram_protocol::endpoint dgram_ep(const endpoint& ep) {
  return {ep.data(), ep.size(), ep.family() == AF_UNIX ? 0 : IPPROTO_UDP};
}

/// One failed attempt: `step` says what failed ("connecting to [::1]:80").
inline address_attempt attempt_failed(const endpoint& address, const boost::system::error_code& ec,
                                      const char* function, const std::string& step) {
  const std::error_code error(ec);
  return {address, error, std::make_exception_ptr(std::system_error(error, std::string(function) + ": " + step))};
}
inline address_attempt attempt_failed(const endpoint& address, const std::system_error& e) {
  return {address, e.code(), std::make_exception_ptr(e)};
}

/// "host:port", with an IPv6 literal in brackets.
inline std::string host_port(std::string_view host, int port) {
  const std::string h(host);
  return (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(port);
}

}  // namespace weft::net::detail

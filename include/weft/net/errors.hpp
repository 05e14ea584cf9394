// weft::net::connect_error and bind_error: a factory's failure, with every address it tried.
#pragma once

#include <weft/net/endpoint.hpp>

#include <exception>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace weft::net {

/// One address that a connection or listener factory tried, and how it failed.
struct address_attempt {
  /// The address tried: the remote address (or Unix path) of a connection,
  /// the local address (or path) of a listener.
  endpoint address;
  /// Why it failed.
  std::error_code error;
  /// The std::system_error it failed with; its message also says which step
  /// failed (opening the socket, binding it, connecting, listening).
  std::exception_ptr exception;
};

/// A factory's failure on the addresses it tried: the base of connect_error
/// and bind_error. It is a std::system_error, so `catch (const
/// std::system_error&)` sees every failure of every factory, whether it
/// tried one address or several.
///
/// code() is the error of the *last* attempt, in the order the addresses
/// were tried (as a sequence of blocking connects would report; for Happy
/// Eyeballs the order is the RFC 8305 one, IPv6 first). what() is the
/// context (the weft function and what it was doing) followed by every
/// attempt as "address: error message", separated by "; ". Copying it never
/// throws.
class address_error : public std::system_error {
 public:
  /// An error for `attempts` (in the order tried). With no attempts, code()
  /// is the empty error_code.
  address_error(std::string context, std::vector<address_attempt> attempts);

  const char* what() const noexcept override;
  /// Every attempt, in the order tried.
  const std::vector<address_attempt>& attempts() const noexcept;

 private:
  struct data;
  std::shared_ptr<const data> data_;
};

/// No connection could be made: create_tcp_connection (every Happy Eyeballs
/// attempt failed), create_unix_stream_connection, create_udp_endpoint
/// (every address pair failed), create_unix_datagram_endpoint.
/// `weft::cancelled` is never wrapped in it: a cancelled factory throws
/// `cancelled`, whatever attempts had failed before.
class connect_error : public address_error {
 public:
  using address_error::address_error;
};

/// A listener factory could not bind (or listen on) an address; every
/// socket it had bound is closed again. attempts() lists the addresses that
/// failed.
class bind_error : public address_error {
 public:
  using address_error::address_error;
};

}  // namespace weft::net

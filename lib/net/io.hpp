// Private helpers shared by weft's transports and listeners.
#pragma once

#include <weft/errors.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/net/endpoint.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

namespace weft::net::detail {

/// Marks a transport side busy for one call; a second concurrent user gets
/// busy_resource_error.
class busy_guard {
 public:
  busy_guard(bool& flag, const char* what) : flag_(flag) {
    if (flag_) throw busy_resource_error(what);
    flag_ = true;
  }
  ~busy_guard() { flag_ = false; }
  busy_guard(const busy_guard&) = delete;
  busy_guard& operator=(const busy_guard&) = delete;

 private:
  bool& flag_;
};

[[noreturn]] inline void throw_closed(const char* what) {
  throw std::system_error(std::error_code(EBADF, std::system_category()), what);
}

/// weft's I/O errors are std::system_error; Asio throws
/// boost::system::system_error, which is translated at the API boundary.
[[noreturn]] inline void rethrow_as_std(const boost::system::system_error& e, const char* what) {
  throw std::system_error(std::error_code(e.code()), what);
}

/// Turns an operation's error into the right exception: a cancellation of
/// the task (use_fiber already threw it), the transport closed under us
/// (EBADF), or the error itself.
inline void check(const boost::system::error_code& ec, bool closing, const char* what) {
  if (!ec) return;
  if (closing && (ec == boost::asio::error::operation_aborted || ec == boost::asio::error::bad_descriptor))
    throw_closed(what);
  throw std::system_error(std::error_code(ec), what);
}

/// The largest port number.
inline constexpr int max_port = 65535;

/// Throws std::invalid_argument naming `what` unless 0 <= port <= 65535.
inline void check_port(int port, const char* what) {
  if (port < 0 || port > max_port)
    throw std::invalid_argument(std::string(what) + ": port " + std::to_string(port) +
                                " is out of range (0 to 65535)");
}

inline bool would_block(const boost::system::error_code& ec) {
  return ec == boost::asio::error::would_block || ec == boost::asio::error::try_again;
}

template <class Endpoint>
endpoint to_endpoint(const Endpoint& ep) {
  return endpoint(ep.data(), ep.size());
}

template <class Endpoint>
Endpoint from_endpoint(const endpoint& ep, int type, int protocol) {
  return Endpoint(ep.data(), ep.size(), ep.family() == AF_UNIX ? 0 : protocol ? protocol : (type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP));
}

}  // namespace weft::net::detail

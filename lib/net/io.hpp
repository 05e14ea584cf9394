// Private helpers shared by weft's transports and listeners.
#pragma once

#include <weft/errors.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/net/endpoint.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>

#include <sys/un.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace weft::net::detail {

/// The serial number of the calling thread's runtime (0: none). A socket
/// belongs to the runtime whose io_context it was opened on; used from any
/// other (an ended one's successor on the same thread included), its
/// reactor is gone or not its own.
std::uint64_t current_runtime_serial() noexcept;

/// Throws std::logic_error naming `what` unless the calling thread runs the
/// runtime with serial number `serial`.
void check_runtime(std::uint64_t serial, const char* what);

/// An io_context that is never run and never destroyed: the home of the I/O
/// objects of transports and listeners that outlive their runtime (closed),
/// so that destroying them later is safe.
boost::asio::io_context& orphan_io_context() noexcept;

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

/// aclose() of the socket-owning types: closes once, then is a checkpoint
/// (trio's rule: a cancelled task must not leave the resource open); outside
/// a task it only closes.
template <class Socket>
void close_then_checkpoint(bool& closing, Socket& socket) {
  if (!closing) {
    closing = true;
    boost::system::error_code ignored;
    socket.close(ignored);
  }
  weft::detail::raise_if_cancelled_at_entry();
}

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

/// The longest Unix socket path (sun_path holds it and its NUL).
inline constexpr std::size_t max_unix_path = sizeof(sockaddr_un{}.sun_path) - 1;

/// The endpoint of a Unix socket path given to `what` as its argument
/// `name`. @throws std::invalid_argument naming both if the path is empty
/// or does not fit.
inline endpoint unix_endpoint(std::string_view path, const char* what, const char* name) {
  if (path.empty()) throw std::invalid_argument(std::string(what) + ": " + name + " is empty");
  if (path.size() > max_unix_path)
    throw std::invalid_argument(std::string(what) + ": " + name + " \"" + std::string(path) + "\" is " +
                                std::to_string(path.size()) + " bytes long; a Unix socket path holds at most " +
                                std::to_string(max_unix_path));
  return endpoint::unix_path(path);
}

/// Throws std::invalid_argument naming `what` unless mode fits in the
/// permission bits (07777).
inline void check_mode(const std::optional<unsigned>& mode, const char* what) {
  if (mode && *mode > 07777) {
    char octal[24];
    std::snprintf(octal, sizeof octal, "0%o", *mode);
    throw std::invalid_argument(std::string(what) + ": mode " + octal + " is not a file mode (0 to 07777)");
  }
}

/// Throws std::invalid_argument naming `what` unless backlog >= 1.
inline void check_backlog(int backlog, const char* what) {
  if (backlog < 1)
    throw std::invalid_argument(std::string(what) + ": backlog must be at least 1, not " + std::to_string(backlog));
}

/// Throws std::invalid_argument naming `what` unless family is AF_UNSPEC,
/// AF_INET or AF_INET6.
inline void check_ip_family(int family, const char* what) {
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
    throw std::invalid_argument(std::string(what) + ": family must be AF_UNSPEC, AF_INET or AF_INET6, not " +
                                std::to_string(family));
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

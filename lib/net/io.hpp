// Private helpers shared by weft's transports and listeners.
#pragma once

#include "net/socket_op.hpp"

#include <weft/detail/core.hpp>
#include <weft/checkpoint.hpp>
#include <weft/errors.hpp>
#include <weft/lowlevel/read_readiness.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/net/datagram.hpp>
#include <weft/net/endpoint.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/generic/datagram_protocol.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/system/system_error.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace weft::net::detail {

/// The serial number of the calling thread's runtime (0: none). A socket
/// belongs to the runtime whose io_context it was opened on; used from any
/// other (an ended one's successor on the same thread included), its
/// reactor is gone or not its own.
std::uint64_t current_runtime_serial() noexcept;

/// Throws std::logic_error naming `what` unless the calling thread runs the
/// runtime with serial number `serial`.
void check_runtime(std::uint64_t serial, const char* what);

/// Throws std::invalid_argument naming `what` if the calling thread runs a
/// runtime and the I/O object (a socket, an acceptor) whose executor is
/// `io_object_executor` is not of its io_context: transports and listeners
/// wait for their operations on their runtime's thread (see socket_op).
void check_io_context(const boost::asio::any_io_executor& io_object_executor, const char* what);

/// What a transport or listener checks of the Asio I/O object it adopts
/// (`noun`: "socket", "acceptor"): it is open, on the calling thread's
/// runtime's io_context, and then made non-blocking.
/// @throws std::invalid_argument (closed, or of another io_context),
/// std::system_error.
template <class IoObject>
void adopt_io_object(IoObject& o, const char* what, const char* noun) {
  if (!o.is_open()) throw std::invalid_argument(std::string(what) + ": the " + noun + " is not open");
  check_io_context(o.get_executor(), what);
  boost::system::error_code ec;
  o.non_blocking(true, ec);
  if (ec) throw std::system_error(std::error_code(ec), what);
}

/// The checkpoint at the entry of a blocking call.
/// @throws std::logic_error naming `what` outside a task; weft::cancelled.
inline void checkpoint_at_entry(const char* what) {
  if (weft::detail::current_task() == nullptr) [[unlikely]]
    weft::detail::require_task(what);  // throws
  weft::detail::raise_if_cancelled_at_entry();
}

[[noreturn]] inline void throw_closed(const char* what) {
  throw std::system_error(std::error_code(EBADF, std::system_category()), what);
}

/// The entry of a blocking call of a transport: used by a task of the
/// runtime that opened it, not closed, and a checkpoint.
/// @throws std::logic_error, std::system_error (EBADF), weft::cancelled.
template <class Socket>
void enter_blocking_call(std::uint64_t runtime, bool closing, const Socket& socket, const char* what) {
  check_runtime(runtime, what);
  if (closing || !socket.is_open()) throw_closed(what);
  checkpoint_at_entry(what);
}

/// The entry of a blocking call of a listener: as enter_blocking_call, but
/// a closed listener reports EBADF first (one whose runtime has ended was
/// closed then).
template <class Socket>
void enter_listener_call(std::uint64_t runtime, bool closing, const Socket& socket, const char* what) {
  if (closing || !socket.is_open()) throw_closed(what);
  check_runtime(runtime, what);
  checkpoint_at_entry(what);
}

/// An io_context that is never run and never destroyed: the home of the I/O
/// objects of transports and listeners that outlive their runtime (closed),
/// so that destroying them later is safe.
boost::asio::io_context& orphan_io_context() noexcept;

/// io_binding's detach for the types that own a socket (transports,
/// listeners): their runtime ends before them. Closes `socket` as the
/// owner's destructor would (with SO_LINGER 0 first if `abortive`: the peer
/// sees a reset), marks the owner closing, and moves the socket to an
/// io_context that never ends, so that using the owner throws and
/// destroying it later is safe.
template <class Socket>
void detach_to_orphan(Socket& socket, bool& closing, bool abortive) noexcept {
  boost::system::error_code ignored;
  if (socket.is_open()) {
    if (abortive) socket.set_option(boost::asio::socket_base::linger(true, 0), ignored);
    socket.close(ignored);
  }
  closing = true;
  socket = Socket(orphan_io_context());
}

/// Sets TCP_NODELAY on the TCP socket fd (on by default for weft's accepted
/// and connected TCP sockets, as trio and Asio servers do: a
/// request/response protocol must not wait for Nagle's timer). A failure is
/// ignored: the socket works without the option.
inline void set_tcp_nodelay(int fd) noexcept {
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// A boolean socket option at `Level`/`Name`, for the options Asio does not
/// name (SO_REUSEPORT). Meets Asio's SettableSocketOption and
/// GettableSocketOption requirements: socket.set_option(reuse_port(true)).
template <int Level, int Name>
class boolean_option {
 public:
  boolean_option() noexcept = default;
  explicit boolean_option(bool on) noexcept : value_(on ? 1 : 0) {}
  bool value() const noexcept { return value_ != 0; }

  template <class Protocol>
  int level(const Protocol&) const noexcept {
    return Level;
  }
  template <class Protocol>
  int name(const Protocol&) const noexcept {
    return Name;
  }
  template <class Protocol>
  int* data(const Protocol&) noexcept {
    return &value_;
  }
  template <class Protocol>
  const int* data(const Protocol&) const noexcept {
    return &value_;
  }
  template <class Protocol>
  std::size_t size(const Protocol&) const noexcept {
    return sizeof(value_);
  }
  /// After getsockopt(2): the size it reported.
  template <class Protocol>
  void resize(const Protocol&, std::size_t s) {
    if (s != sizeof(value_)) throw std::length_error("weft::net: a boolean socket option of unexpected size");
  }

 private:
  int value_ = 0;
};

using reuse_port = boolean_option<SOL_SOCKET, SO_REUSEPORT>;

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

/// The listen backlog to use: `backlog` if given (std::invalid_argument
/// naming `what` unless it is at least 1), else default_backlog().
int resolve_backlog(std::optional<int> backlog, const char* what);

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

/// One send(2), or sendto(2) when `to` is given, on a non-blocking socket,
/// without SIGPIPE, retried on EINTR: a socket buffer with room takes the
/// data at once, without a trip through the reactor. Returns the bytes
/// sent, or -1 with the errno value in `error`. Read `fd` from the socket
/// for every call: a task that parked in between may find it closed.
inline std::ptrdiff_t send_now(int fd, const void* data, std::size_t size, const endpoint* to, int& error) noexcept {
  for (;;) {
    const ssize_t n =
        to == nullptr ? ::send(fd, data, size, MSG_NOSIGNAL)
                      : ::sendto(fd, data, size, MSG_NOSIGNAL, to->data(), static_cast<socklen_t>(to->size()));
    if (n >= 0) return n;
    if (errno != EINTR) {
      error = errno;
      return -1;
    }
  }
}

/// One recv(2) on a non-blocking socket (recvfrom(2), with the sender's
/// address, when `from` is given), retried on EINTR. Returns the bytes
/// received (0: end of stream, or an empty datagram), or -1 with the errno
/// value in `error`.
inline std::ptrdiff_t recv_now(int fd, void* data, std::size_t size, int& error, sockaddr_storage* from = nullptr,
                               socklen_t* from_size = nullptr) noexcept {
  for (;;) {
    if (from != nullptr) *from_size = sizeof *from;
    const ssize_t n = ::recvfrom(fd, data, size, 0, reinterpret_cast<sockaddr*>(from), from_size);
    if (n >= 0) return n;
    if (errno != EINTR) {
      error = errno;
      return -1;
    }
  }
}

inline bool would_block(int error) noexcept { return error == EAGAIN || error == EWOULDBLOCK; }

inline boost::system::error_code system_error_code(int error) noexcept {
  return {error, boost::system::system_category()};
}

template <class Endpoint>
endpoint to_endpoint(const Endpoint& ep) {
  return endpoint(ep.data(), ep.size());
}

template <class Endpoint>
Endpoint from_endpoint(const endpoint& ep, int type, int protocol) {
  return Endpoint(ep.data(), ep.size(), ep.family() == AF_UNIX ? 0 : protocol ? protocol : (type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP));
}

/// Parks until `socket` is writable (its buffer has room again). For a
/// task of the socket's runtime, after its checkpoint; see socket_op::wait().
/// @throws as check(): EBADF if `closing` is set by then (the transport
/// was closed under the wait), the wait's error otherwise; weft::cancelled.
template <class Socket>
void wait_writable(Socket& socket, const bool& closing, const char* what) {
  lowlevel::describe_wait("send (socket buffer full) on fd", socket.native_handle());
  socket_op<std::size_t> op;  // completes with (error_code)
  socket.async_wait(Socket::wait_write, op.handler());
  op.wait();
  check(op.error(), closing, what);
}

/// Parks until the reactor reports `socket` readable, for a read that found
/// it drained: a lowlevel::read_wait, costing no system call to start. For
/// a task of the socket's runtime, after its checkpoint; cancellation and
/// errors as wait_writable.
void wait_readable(boost::asio::generic::stream_protocol::socket& socket, const bool& closing, const char* what);
void wait_readable(boost::asio::generic::datagram_protocol::socket& socket, const bool& closing, const char* what);
/// wait_readable with a receive timeout: gives up at `deadline`, first set
/// (when it is inf_time) to now + timeout.
/// @throws std::system_error(std::errc::timed_out) once the deadline passed; as wait_readable.
void wait_readable_until(boost::asio::generic::stream_protocol::socket& socket, const bool& closing, const char* what,
                         time_point& deadline, duration timeout);

/// Reads from `socket` (of the calling task's runtime, after its
/// checkpoint) as trio does: `read(error)` (one recv(2), -1 with the errno
/// value in `error` on failure) at once if the reactor may have data for
/// the socket, and otherwise, or when that fails with EAGAIN, once the
/// reactor reports the socket readable. A read that finds what was there
/// before the call lets the other ready tasks run once (cancel-shielded: the
/// result is the caller's) before returning, so that a peer that keeps the
/// socket full cannot starve them. Returns what `read` returned, -1 for a
/// failure other than EAGAIN. `read` may note a short read
/// (lowlevel::note_short_read): nothing runs between it and the recv(2).
/// With a positive `timeout`, a call that has to wait gives up once it
/// waited that long in all (wait_readable_until).
/// @throws as wait_readable().
template <class Socket, class Read>
std::ptrdiff_t read_when_ready(Socket& socket, const bool& closing, const char* what, int& error, Read&& read,
                               duration timeout = duration::zero()) {
  bool waited = !lowlevel::read_may_find_data(socket);
  time_point deadline = inf_time;
  for (;;) {
    if (waited) {
      if constexpr (std::is_same_v<Socket, boost::asio::generic::stream_protocol::socket>) {
        if (timeout.count() > 0) [[unlikely]]
          wait_readable_until(socket, closing, what, deadline, timeout);
        else
          wait_readable(socket, closing, what);
      } else {
        wait_readable(socket, closing, what);
      }
    }
    const std::ptrdiff_t n = read(error);
    if (n >= 0) [[likely]] {
      if (!waited) weft::cancel_shielded_coro_yield();
      return n;
    }
    if (!would_block(error)) return -1;
    lowlevel::note_read_drained(socket);
    waited = true;
  }
}

/// Receives one datagram from `socket` (a datagram socket of the calling
/// task's runtime, after its checkpoint) into [data, data + size), and its
/// sender's address into `from` when given, as stream_transport::recv_into
/// reads (read_when_ready). Returns the datagram's size (truncated to
/// `size`). `ahead` is the socket's read_ahead (read_ahead.cpp), made by
/// the first call: a UDP socket's receive asks for two datagrams, and
/// keeps the second there for the next call.
/// @throws as check(); weft::cancelled; std::bad_alloc (the first call).
std::size_t recv_datagram(boost::asio::generic::datagram_protocol::socket& socket, void* data, std::size_t size,
                          sockaddr_storage* from, socklen_t* from_size, const bool& closing, const char* what,
                          read_ahead_ptr& ahead);

}  // namespace weft::net::detail

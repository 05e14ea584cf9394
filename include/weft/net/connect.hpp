// weft::net factories: connections, endpoints and listeners.
#pragma once

#include <weft/net/datagram.hpp>
#include <weft/net/endpoint.hpp>
#include <weft/net/errors.hpp>
#include <weft/net/listener.hpp>
#include <weft/net/stream.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::net {

// Ports are ints so that a value out of range (70000, -1) is reported with
// std::invalid_argument instead of being wrapped around on the way in; every
// factory taking a port accepts 0 to 65535.
//
// Errors have one shape per kind of factory, whether one address was tried
// or several: a connection that cannot be made is a connect_error, a
// listener that cannot be bound a bind_error (see errors.hpp); both are
// std::system_error and list every address tried. A name that does not
// resolve is getaddrinfo's std::system_error. weft::cancelled is never
// wrapped. Every factory that resolves a name or connects is a checkpoint,
// also when it could complete at once: in a cancelled scope it throws
// weft::cancelled before opening anything. A bad argument is a std::invalid_argument whose message names the
// function and the value. A Unix socket path must be non-empty and at most
// 107 bytes long (it must fit in sockaddr_un::sun_path with its NUL).

/// Connects to host:port over TCP with Happy Eyeballs (RFC 8305): resolves
/// both families, tries IPv6 first and then alternates families, starting
/// one attempt per address `happy_eyeballs_delay` apart (sooner when the
/// previous attempt failed); the first connection wins and the others are
/// closed. local_address (host, port) binds the socket first and is only
/// paired with addresses of its own family. Checkpoint.
/// @throws weft::cancelled (every attempt's socket is closed);
/// std::invalid_argument (a port out of range, a negative
/// happy_eyeballs_delay, no address of the local address's family);
/// connect_error listing every attempt, in the order they were started, when
/// all fail (also when there was only one address; its code() is the last
/// attempt's); std::system_error when the name does not resolve.
stream_transport create_tcp_connection(std::string_view host, int port,
                                       std::optional<std::pair<std::string, int>> local_address = {},
                                       duration happy_eyeballs_delay = std::chrono::milliseconds(250));

/// Connects to the Unix stream socket at path (after binding local_path if
/// given). Like a blocking connect(2), it waits while the listener's accept
/// queue is full, retrying after a pause that doubles from 1 ms to 50 ms of
/// runtime-clock time, until there is room: bound the wait with a cancel
/// scope. Checkpoint, also when the connection is made at once.
/// @throws weft::cancelled (the socket is closed); std::invalid_argument
/// for an empty or too long path or local_path; connect_error with the path
/// as its one attempt when the connect fails (ENOENT: no socket file;
/// ECONNREFUSED: nobody listens); std::system_error naming local_path when
/// it cannot be bound.
stream_transport create_unix_stream_connection(std::string_view path, std::optional<std::string> local_path = {});

/// Wraps an already connected stream socket (a file descriptor whose
/// ownership passes to the transport). @throws std::invalid_argument if fd is
/// not a connected stream socket (it is then left open); the message names fd.
stream_transport wrap_stream_socket(int fd);

/// A UDP socket connected to remote_host:remote_port (and/or bound to
/// local_address; family restricts the lookups). Each (local, remote) pair of
/// one family is tried in turn until one binds and connects. Checkpoint.
/// @throws weft::cancelled; std::invalid_argument if a port is out of range,
/// family is not AF_UNSPEC, AF_INET or AF_INET6, neither address is given,
/// or the two share no family; connect_error
/// listing every pair tried (by remote address, or local address without a
/// remote) when all fail; std::system_error when a name does not resolve.
datagram_transport create_udp_endpoint(std::optional<std::pair<std::string, int>> remote = {},
                                       std::optional<std::pair<std::string, int>> local = {},
                                       int family = AF_UNSPEC);

/// A Unix datagram socket connected to remote_path and/or bound to local_path.
/// Never blocks, but a checkpoint like every connection factory.
/// @throws weft::cancelled; std::invalid_argument if neither is given or a path is empty or
/// too long; connect_error when the
/// connect fails; std::system_error naming local_path when it cannot be bound.
datagram_transport create_unix_datagram_endpoint(std::optional<std::string> remote_path,
                                                 std::optional<std::string> local_path = {});

/// Wraps an already connected datagram socket (ownership passes).
/// @throws std::invalid_argument (naming fd) if fd is not a UDP or Unix
/// datagram socket.
datagram_transport wrap_connected_datagram_socket(int fd);

/// The listen backlog listeners get by default: the system's maximum
/// (/proc/sys/net/core/somaxconn, at most 65535), so that a burst of
/// connections waits for accept() instead of being refused; 65535 where the
/// system does not say (Linux then clamps it to its maximum itself). Read
/// once. Never throws.
int default_backlog() noexcept;

/// TCP listeners on every address of host (empty: all interfaces; several
/// hosts: each of them) at port (0: a free port, the same for every
/// listener where possible). SO_REUSEADDR is set, SO_REUSEPORT if asked;
/// IPv6 sockets are IPV6_V6ONLY. Host names are resolved as getaddrinfo
/// does (a checkpoint). The backlog (connections the kernel completes
/// before they are accepted) defaults to default_backlog().
/// @throws std::invalid_argument if backlog < 1 or the port is out of range;
/// bind_error listing every address that failed (one or several) if any
/// bind fails, after every socket was closed; std::system_error when a
/// name does not resolve; weft::cancelled.
std::vector<stream_listener> create_tcp_listeners(const std::vector<std::string>& hosts, int port,
                                                  std::optional<int> backlog = {}, bool reuse_port = false);
std::vector<stream_listener> create_tcp_listeners(std::string_view host, int port, std::optional<int> backlog = {},
                                                  bool reuse_port = false);

/// A Unix stream listener at path (an existing socket file at path is an
/// error), with file mode `mode` if given. Not a checkpoint (never blocks).
/// @throws std::invalid_argument if backlog < 1, mode is above 07777, or the
/// path is empty or too long; bind_error with the path as
/// its one attempt if it cannot be bound (EADDRINUSE: a file exists there);
/// std::system_error naming the path if the mode cannot be set.
stream_listener create_unix_stream_listener(std::string_view path, std::optional<int> backlog = {},
                                            std::optional<unsigned> mode = {});

/// UDP listeners on every address of host (see create_tcp_listeners).
/// @throws as create_tcp_listeners.
std::vector<datagram_listener> create_udp_listeners(std::string_view host, int port,
                                                    bool reuse_port = false);

/// A Unix datagram listener at path, with file mode `mode` if given. Not a
/// checkpoint. @throws as create_unix_stream_listener.
datagram_listener create_unix_datagram_listener(std::string_view path, std::optional<unsigned> mode = {});

}  // namespace weft::net

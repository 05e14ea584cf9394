// weft::net::datagram_transport: a connected UDP or Unix datagram socket for tasks.
#pragma once

#include <weft/backend.hpp>
#include <weft/net/endpoint.hpp>

#include <boost/asio/generic/datagram_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace weft::net {

/// The largest datagram recv() returns (larger ones are truncated by the system).
inline constexpr std::size_t max_datagram_size = 65536;

namespace detail {
/// The receive side of a datagram socket, made by its first receive: the
/// datagram a receive read ahead (see datagram_transport).
struct read_ahead;
struct read_ahead_deleter {
  void operator()(read_ahead* r) const noexcept;
};
using read_ahead_ptr = std::unique_ptr<read_ahead, read_ahead_deleter>;
}  // namespace detail

/// A connected datagram socket.
///
/// Receiving a UDP datagram asks the system for two (one recvmmsg(2)): a
/// second one already there is kept, and the next receive returns it
/// without a system call; when there was none, the next receive waits for
/// the socket to become readable instead of first finding it empty. Either
/// way, request/response traffic costs one system call less per receive.
/// The kept datagram is part of the transport: reading socket() with your
/// own recv(2) as well would see datagrams out of order. The first receive
/// allocates max_datagram_size bytes for it (Unix datagram sockets, whose
/// datagrams may be larger, receive one at a time and need none).
class datagram_transport {
 public:
  using socket_type = boost::asio::generic::datagram_protocol::socket;

  /// Takes ownership of a connected datagram socket of the running runtime
  /// (opened on weft::lowlevel::io_context()). @throws std::invalid_argument
  /// if the socket is not open, or belongs to another io_context.
  explicit datagram_transport(socket_type socket);
  datagram_transport(datagram_transport&&) noexcept;
  datagram_transport& operator=(datagram_transport&&) noexcept;
  ~datagram_transport();

  /// Receives one datagram (up to max_datagram_size bytes). Checkpoint, also
  /// with a datagram waiting: in a cancelled scope it throws
  /// weft::cancelled and leaves the datagram for the next call.
  /// @throws weft::cancelled; busy_resource_error if another task is
  /// receiving; std::system_error (EBADF once closed).
  std::string recv();
  /// Receives one datagram into buf and returns its size; bytes of a
  /// datagram longer than buf are discarded (as recv(2) does), and an empty
  /// buf receives and discards one datagram. No allocation. Checkpoint.
  /// @throws as recv.
  std::size_t recv_into(std::span<std::byte> buf);
  std::size_t recv_into(std::span<char> buf) { return recv_into(std::as_writable_bytes(buf)); }
  /// Sends one datagram. Checkpoint, also when the socket has room (in a
  /// cancelled scope nothing is sent). @throws std::system_error (EMSGSIZE,
  /// naming the size, if it is too big for the socket: 65507 bytes for UDP
  /// over IPv4); weft::cancelled.
  void send(std::span<const std::byte> data);
  void send(std::string_view data) { send(std::as_bytes(std::span<const char>(data.data(), data.size()))); }

  /// Closes the socket; a task blocked in recv fails promptly with EBADF.
  /// Idempotent, never blocks. A checkpoint after closing: in a cancelled
  /// task it closes and then throws weft::cancelled (outside any task it
  /// only closes). @throws weft::cancelled (the socket is closed all the same).
  void aclose();
  bool is_closing() const noexcept { return closing_; }

  socket_type& socket() noexcept { return socket_; }
  int family() const;
  endpoint local_address() const;
  endpoint peer_address() const;

  async_backend& backend() const noexcept { return builtin_backend(); }

 private:
  void check_usable(const char* what) const;
  socket_type socket_;
  std::uint64_t runtime_;  // the serial number of the runtime whose io_context the socket uses
  std::unique_ptr<char[]> buffer_;  // recv()'s buffer, allocated on first use
  detail::read_ahead_ptr ahead_;    // made by the first receive
  bool receiving_ = false;
  bool closing_ = false;
  static void detach(void* self) noexcept;
  weft::detail::io_binding binding_{this, &detach};  // last: unbound before socket_ goes
};

}  // namespace weft::net

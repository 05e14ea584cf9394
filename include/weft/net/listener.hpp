// weft::net listeners: accept stream connections or receive datagrams, one task each.
//
// Every blocking call is a checkpoint, also when it could complete at once:
// in a cancelled scope it throws weft::cancelled before doing anything, so
// a pending connection or datagram stays for the next call.
#pragma once

#include <weft/backend.hpp>
#include <weft/function_ref.hpp>
#include <weft/net/datagram.hpp>
#include <weft/net/endpoint.hpp>
#include <weft/net/stream.hpp>
#include <weft/task_group.hpp>

#include <boost/asio/generic/datagram_protocol.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/socket_base.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace weft {
class semaphore;
}

namespace weft::net {

/// A listening TCP or Unix stream socket.
class stream_listener {
 public:
  using acceptor_type = boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol>;
  using handler = std::function<void(stream_transport&)>;

  /// Takes ownership of a listening acceptor of the running runtime (opened
  /// on weft::lowlevel::io_context()). @throws std::invalid_argument if it
  /// is not open, or belongs to another io_context.
  explicit stream_listener(acceptor_type acceptor);
  stream_listener(stream_listener&&) noexcept;
  stream_listener& operator=(stream_listener&&) noexcept;
  ~stream_listener();

  /// Accepts one connection (with TCP_NODELAY set, for TCP). Checkpoint,
  /// also with a connection pending (it is then left pending). @throws weft::cancelled, busy_resource_error
  /// (another task is accepting), std::system_error.
  stream_transport accept();

  /// Accepts connections forever; each one runs handler(transport) in a new
  /// task of `group`, and the transport is closed when the handler returns.
  /// An exception escaping a handler fails `group`, as any task's would:
  /// stream_server (server.hpp) isolates handlers from each other instead.
  /// Accept capacity errors (EMFILE, ENFILE, ENOBUFS, ENOMEM) are logged to
  /// stderr and retried after a short pause; transient per-connection errors
  /// (ECONNABORTED, EPROTO, ...) are skipped. Returns never; ends with the
  /// error of a closed listener (EBADF), or weft::cancelled. Connections
  /// waiting in the backlog are all accepted in one pass (their handlers
  /// start, then run), and it waits for readiness only once none is left.
  /// A checkpoint before every accept: once cancelled it accepts nothing more (an accept
  /// already under way when the cancellation comes may still complete; its
  /// connection is then handed to a handler, not dropped).
  /// @throws std::invalid_argument if h is empty; busy_resource_error if
  /// already serving; std::system_error; weft::cancelled.
  [[noreturn]] void serve(handler h, task_group& group);

  /// Closes the listener; a serve()/accept() blocked on it fails promptly.
  /// Idempotent, never blocks. A checkpoint after closing: in a cancelled
  /// task it closes and then throws weft::cancelled (outside any task it
  /// only closes). @throws weft::cancelled (the listener is closed all the same).
  void aclose();
  bool is_closing() const noexcept { return closing_; }

  acceptor_type& acceptor() noexcept { return acceptor_; }
  endpoint local_address() const;
  async_backend& backend() const noexcept { return builtin_backend(); }

 private:
  friend class stream_server;
  /// Accepts one connection (parks until one comes); errors into ec.
  stream_transport::socket_type accept_one(boost::system::error_code& ec);
  /// Parks until a connection waits to be accepted; errors into ec.
  void wait_acceptable(boost::system::error_code& ec);
  /// Accepts a waiting connection without parking (would_block if none).
  stream_transport::socket_type try_accept(boost::system::error_code& ec);
  /// serve()'s loop: hands every accepted connection to on_connection.
  /// With `limit`, takes a unit of it before each accept; on_connection
  /// owns that unit from the moment it is called, even if it throws (it
  /// releases it when the connection ends).
  [[noreturn]] void accept_loop(function_ref<void(stream_transport)> on_connection, weft::semaphore* limit);

  acceptor_type acceptor_;
  std::uint64_t runtime_;  // the serial number of the runtime whose io_context the acceptor uses
  bool tcp_ = false;       // accepted sockets get TCP_NODELAY
  bool accepting_ = false;
  bool closing_ = false;
  static void detach(void* self) noexcept;
  weft::detail::io_binding binding_{this, &detach};  // last: unbound before the socket goes
};

/// A bound (unconnected) UDP or Unix datagram socket serving many peers.
/// Its receives read a UDP datagram ahead as datagram_transport's do (one
/// system call less per receive; max_datagram_size bytes, allocated by the
/// first receive, hold it): reading socket() yourself as well would see
/// datagrams out of order.
class datagram_listener {
 public:
  using socket_type = boost::asio::generic::datagram_protocol::socket;
  using handler = std::function<void(std::string datagram, const endpoint& from, datagram_listener& listener)>;

  /// Takes ownership of a bound datagram socket of the running runtime
  /// (opened on weft::lowlevel::io_context()). @throws std::invalid_argument
  /// if it is not open, or belongs to another io_context.
  explicit datagram_listener(socket_type socket);
  datagram_listener(datagram_listener&&) noexcept;
  datagram_listener& operator=(datagram_listener&&) noexcept;
  ~datagram_listener();

  /// Receives one datagram and its sender. Checkpoint, also with a datagram
  /// waiting (it is then left for the next call).
  std::pair<std::string, endpoint> recv_from();
  /// Receives one datagram into buf; returns its size (bytes beyond
  /// buf.size() are discarded) and its sender. No allocation. Checkpoint.
  std::pair<std::size_t, endpoint> recv_from_into(std::span<std::byte> buf);
  std::pair<std::size_t, endpoint> recv_from_into(std::span<char> buf) {
    return recv_from_into(std::as_writable_bytes(buf));
  }
  /// Sends a datagram to `to`; safe to call from several tasks at once. Checkpoint.
  /// @throws weft::cancelled; std::invalid_argument if `to` is neither an IP
  /// nor a Unix endpoint; std::system_error (EMSGSIZE, naming the size and
  /// `to`, for a datagram too big).
  void send_to(std::span<const std::byte> data, const endpoint& to);
  void send_to(std::string_view data, const endpoint& to) {
    send_to(std::as_bytes(std::span<const char>(data.data(), data.size())), to);
  }

  /// Receives datagrams forever; each runs handler(datagram, sender, *this) in
  /// a new task of `group`, started in arrival order. Returns never. A
  /// checkpoint before every datagram it receives.
  /// @throws std::invalid_argument if h is empty; busy_resource_error if
  /// already serving; std::system_error; weft::cancelled.
  [[noreturn]] void serve(handler h, task_group& group);

  /// Closes the listener; a task blocked in recv_from or serve fails
  /// promptly with EBADF. Idempotent, never blocks; a checkpoint after
  /// closing, as stream_listener::aclose. @throws weft::cancelled.
  void aclose();
  bool is_closing() const noexcept { return closing_; }
  socket_type& socket() noexcept { return socket_; }
  endpoint local_address() const;
  async_backend& backend() const noexcept { return builtin_backend(); }

 private:
  socket_type socket_;
  std::uint64_t runtime_;  // the serial number of the runtime whose io_context the socket uses
  std::unique_ptr<char[]> buffer_;  // recv_from()'s buffer, allocated on first use
  detail::read_ahead_ptr ahead_;    // made by the first receive
  bool receiving_ = false;
  bool closing_ = false;
  static void detach(void* self) noexcept;
  weft::detail::io_binding binding_{this, &detach};  // last: unbound before the socket goes
};

}  // namespace weft::net

// weft::net::stream_transport: a connected TCP or Unix stream socket for tasks.
//
// Every blocking call parks only the calling task, is a checkpoint, and is
// interrupted by any cancel scope: the pending Asio operation is cancelled
// and the task resumes promptly with weft::cancelled. It is a checkpoint
// also when it could complete at once (data already there, room in the
// socket buffer): in a cancelled scope it throws weft::cancelled before
// doing anything, so nothing is received or sent. I/O errors are
// std::system_error.
#pragma once

#include <weft/backend.hpp>
#include <weft/net/endpoint.hpp>
#include <weft/time.hpp>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace weft::net {

/// The most bytes one stream_transport::recv(n) returns, and so the most it
/// allocates: 64 KiB, what one read of a socket typically gives anyway.
/// recv_into has no such limit (the caller owns the buffer).
inline constexpr std::size_t max_recv_size = 65536;

class stream_transport {
 public:
  using socket_type = boost::asio::generic::stream_protocol::socket;

  /// Takes ownership of a connected stream socket of the running runtime
  /// (opened on weft::lowlevel::io_context()). @throws std::invalid_argument
  /// if the socket is not open, or belongs to another io_context.
  explicit stream_transport(socket_type socket);
  stream_transport(stream_transport&&) noexcept;
  stream_transport& operator=(stream_transport&&) noexcept;
  stream_transport(const stream_transport&) = delete;
  stream_transport& operator=(const stream_transport&) = delete;
  /// A transport destroyed without aclose() is closed abortively (the peer
  /// sees a reset, not a clean end of stream): call aclose() to finish a
  /// conversation.
  ~stream_transport();

  /// Receives up to min(n, max_recv_size) bytes: whatever has arrived, once
  /// something has; an empty result means end of stream (with n > 0). Any n
  /// is valid: a larger n (up to SIZE_MAX) allocates no more than
  /// max_recv_size bytes. n = 0 returns an empty string without waiting for
  /// data. Checkpoint.
  /// @throws weft::cancelled; busy_resource_error if another task is
  /// receiving on this transport; std::system_error (EBADF once closed).
  std::string recv(std::size_t n);
  /// Receives into buf; returns the byte count, 0 at end of stream (or for an
  /// empty buf, without waiting). Checkpoint.
  std::size_t recv_into(std::span<std::byte> buf);
  std::size_t recv_into(std::span<char> buf) { return recv_into(std::as_writable_bytes(buf)); }

  /// Sends every byte. Tries the write at once and parks only if the socket
  /// buffer is full. Checkpoint. @throws as recv (busy if another task is sending).
  void send_all(std::span<const std::byte> data);
  void send_all(std::string_view data) { send_all(std::as_bytes(std::span<const char>(data.data(), data.size()))); }
  /// Sends several buffers in order with scatter/gather I/O (sendmsg), without
  /// joining them into one copy. Checkpoint.
  void send_all_from_iterable(std::span<const std::span<const std::byte>> buffers);
  void send_all_from_iterable(std::span<const std::string_view> buffers);

  /// Shuts down the sending side (the peer reads end of stream); receiving
  /// still works. Not a checkpoint. @throws std::system_error.
  void send_eof();

  /// Closes the transport: gracefully (the peer reads end of stream), or
  /// abortively (SO_LINGER 0: the peer sees a reset) if the calling task is
  /// cancelled. A task blocked in recv or send on this transport fails
  /// promptly with EBADF. Never blocks; idempotent. A checkpoint *after*
  /// closing: in a cancelled task it closes (abortively) and then throws
  /// weft::cancelled, so cancellation never skips the close. Outside any
  /// task (an Asio handler) it only closes.
  /// @throws weft::cancelled (the transport is closed all the same).
  /// @warning Do not call it from a destructor: it may throw cancelled. The
  /// destructor itself closes (abortively) a transport that is still open.
  void aclose();
  /// True once aclose() started (or the transport was moved from).
  bool is_closing() const noexcept { return closing_; }

  // Extra attributes.
  socket_type& socket() noexcept { return socket_; }
  int family() const;
  endpoint local_address() const;
  endpoint peer_address() const;

  // Socket options.
  void set_nodelay(bool on);
  bool nodelay() const;
  void set_keepalive(bool on);
  bool keepalive() const;

  /// The receive timeout: a recv or recv_into that has to wait for data
  /// gives up once nothing came for `timeout` since the call began, with
  /// std::system_error(std::errc::timed_out); nothing is lost, and the
  /// transport stays usable. The clock runs only while a receive waits (an
  /// idle timeout that starts when the reader reads, not when the connection
  /// opened). std::nullopt (the default) waits without limit.
  /// @throws std::invalid_argument unless timeout is positive.
  void set_recv_timeout(std::optional<duration> timeout);
  std::optional<duration> recv_timeout() const noexcept {
    return recv_timeout_.count() > 0 ? std::optional<duration>(recv_timeout_) : std::nullopt;
  }

  async_backend& backend() const noexcept { return builtin_backend(); }

 private:
  friend class stream_listener;  // serve() closes each transport when its handler returns
  friend class stream_server;    // so does the server
  /// aclose() without its checkpoint.
  void close_now() noexcept;
  void check_usable(const char* what) const;
  socket_type socket_;
  std::uint64_t runtime_;  // the serial number of the runtime whose io_context the socket uses
  bool receiving_ = false;
  bool sending_ = false;
  bool closing_ = false;
  bool eof_ = false;
  boost::system::error_code read_error_;  // a connection error seen by recv sticks
  duration recv_timeout_{0};              // 0: none
  static void detach(void* self) noexcept;
  weft::detail::io_binding binding_{this, &detach};  // last: unbound before socket_ goes
};

}  // namespace weft::net

// weft::net::sync_stream: a stream_transport as an Asio synchronous stream.
//
//   weft::net::sync_stream stream(conn);                     // conn: a stream_transport&
//   boost::beast::flat_buffer buffer;
//   boost::beast::http::request<boost::beast::http::string_body> request;
//   boost::beast::http::read(stream, buffer, request);       // parks this task only
//
// It meets Asio's SyncReadStream and SyncWriteStream requirements, so the
// synchronous algorithms of Asio and Boost.Beast run directly on weft's
// transport: asio::read, asio::write, asio::read_until,
// beast::http::read / write, beast::websocket::stream's sync calls,
// asio::ssl::stream<sync_stream>. Each read_some is one
// stream_transport::recv_into (bytes go straight into the algorithm's
// buffer, no copy; it reads at once what has arrived and parks only when
// nothing has), each write_some one send_all or send_all_from_iterable.
// So the algorithm blocks only the calling task, every call is a checkpoint,
// cancel scopes and deadlines interrupt it, and the transport's receive
// timeout applies.
//
// Errors follow Asio's conventions: at end of stream read_some fails with
// boost::asio::error::eof; an I/O error is a boost::system::system_error
// (or is stored in the error_code argument). weft::cancelled is thrown by
// both forms, never turned into an error code, and a busy_resource_error
// (two tasks reading at once) is thrown too. The view does not own the
// transport; it must not outlive it.
#pragma once

#include <weft/net/stream.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <cstddef>
#include <span>
#include <system_error>

namespace weft::net {

class sync_stream {
 public:
  using executor_type = boost::asio::any_io_executor;
  using lowest_layer_type = sync_stream;  // for asio::ssl::stream

  explicit sync_stream(stream_transport& transport) noexcept : transport_(&transport) {}

  /// Reads into the first non-empty buffer of `buffers` what has arrived
  /// (parks until something has). Returns the byte count; 0 only for empty
  /// buffers. Checkpoint.
  /// @throws boost::system::system_error (asio::error::eof at end of
  /// stream); weft::cancelled; busy_resource_error.
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec, "weft::net::sync_stream::read_some");
    return n;
  }
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    ec = {};
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      const boost::asio::mutable_buffer b(*it);
      if (b.size() == 0) continue;
      try {
        const std::size_t n = transport_->recv_into(std::span<std::byte>(static_cast<std::byte*>(b.data()), b.size()));
        if (n == 0) ec = boost::asio::error::eof;
        return n;
      } catch (const std::system_error& e) {
        ec = to_boost(e.code());
        return 0;
      }
    }
    return 0;
  }

  /// Writes every byte of `buffers` (one sendmsg for several buffers, as
  /// far as the socket takes them; parks only while its buffer is full).
  /// Returns the byte count. Checkpoint.
  /// @throws boost::system::system_error; weft::cancelled; busy_resource_error.
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    boost::system::error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec, "weft::net::sync_stream::write_some");
    return n;
  }
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
    ec = {};
    constexpr std::size_t batch = 16;
    std::array<std::span<const std::byte>, batch> spans;
    std::size_t count = 0, total = 0;
    try {
      for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
           ++it) {
        const boost::asio::const_buffer b(*it);
        if (b.size() == 0) continue;
        spans[count++] = std::span<const std::byte>(static_cast<const std::byte*>(b.data()), b.size());
        total += b.size();
        if (count == batch) {
          send(spans.data(), count);
          count = 0;
        }
      }
      if (count > 0) send(spans.data(), count);
    } catch (const std::system_error& e) {
      ec = to_boost(e.code());
      return 0;  // what went out before the error is unknown to the caller anyway: the stream is broken
    }
    return total;
  }

  executor_type get_executor() const { return transport_->socket().get_executor(); }
  lowest_layer_type& lowest_layer() noexcept { return *this; }
  const lowest_layer_type& lowest_layer() const noexcept { return *this; }
  stream_transport& transport() const noexcept { return *transport_; }

 private:
  void send(const std::span<const std::byte>* spans, std::size_t count) {
    if (count == 1)
      transport_->send_all(spans[0]);
    else
      transport_->send_all_from_iterable(std::span<const std::span<const std::byte>>(spans, count));
  }
  static boost::system::error_code to_boost(const std::error_code& c) noexcept {
    if (c.category() == std::system_category() || c.category() == std::generic_category())
      return boost::system::error_code(c.value(), boost::system::system_category());
    return boost::system::error_code(c);
  }

  stream_transport* transport_;
};

}  // namespace weft::net

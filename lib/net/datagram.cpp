// Datagram transports.

#include "net/io.hpp"

#include <weft/net/datagram.hpp>

#include <boost/asio/socket_base.hpp>

#include <memory>
#include <string>

namespace weft::net {

namespace asio = boost::asio;

datagram_transport::datagram_transport(socket_type socket)
    : socket_(std::move(socket)), runtime_(detail::current_runtime_serial()) {
  detail::adopt_io_object(socket_, "weft::net::datagram_transport", "socket");
}
datagram_transport::datagram_transport(datagram_transport&& o) noexcept
    : socket_(std::move(o.socket_)),
      runtime_(o.runtime_),
      buffer_(std::move(o.buffer_)),
      ahead_(std::move(o.ahead_)), closing_(std::exchange(o.closing_, true)) {}
datagram_transport& datagram_transport::operator=(datagram_transport&& o) noexcept {
  if (this != &o) {
    boost::system::error_code ignored;
    socket_.close(ignored);
    socket_ = std::move(o.socket_);
    runtime_ = o.runtime_;
    buffer_ = std::move(o.buffer_);
    ahead_ = std::move(o.ahead_);
    closing_ = std::exchange(o.closing_, true);
  }
  return *this;
}
datagram_transport::~datagram_transport() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void datagram_transport::detach(void* self) noexcept {
  auto& t = *static_cast<datagram_transport*>(self);
  detail::detach_to_orphan(t.socket_, t.closing_, /*abortive=*/false);
}

void datagram_transport::check_usable(const char* what) const try {
  detail::check_runtime(runtime_, what);
  if (closing_ || !socket_.is_open()) detail::throw_closed(what);
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_transport::check_usable");
}

std::string datagram_transport::recv() try {
  // One receive buffer per transport, allocated once: the result holds
  // only the datagram's bytes.
  if (!buffer_) buffer_ = std::make_unique<char[]>(max_datagram_size);
  const std::size_t n = recv_into(std::span<char>(buffer_.get(), max_datagram_size));
  return std::string(buffer_.get(), n);
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_transport::recv");
}

WEFT_HOT std::size_t datagram_transport::recv_into(std::span<std::byte> buf) try {
  const char* what = "weft::net::datagram_transport::recv";
  detail::enter_blocking_call(runtime_, closing_, socket_, what);
  detail::busy_guard busy(receiving_, "weft::net::datagram_transport: another task is already receiving on this transport");
  return detail::recv_datagram(socket_, buf.data(), buf.size(), nullptr, nullptr, closing_, what, ahead_);
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_transport::recv_into");
}

WEFT_HOT void datagram_transport::send(std::span<const std::byte> data) try {
  const char* what = "weft::net::datagram_transport::send";
  detail::enter_blocking_call(runtime_, closing_, socket_, what);
  for (;;) {
    int error = 0;
    if (detail::send_now(socket_.native_handle(), data.data(), data.size(), nullptr, error) >= 0) return;
    if (error == EMSGSIZE)
      throw std::system_error(std::error_code(error, std::system_category()),
                              std::string(what) + ": a datagram of " + std::to_string(data.size()) + " bytes");
    if (!detail::would_block(error)) detail::check(detail::system_error_code(error), closing_, what);
    detail::wait_writable(socket_, closing_, what);
  }
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_transport::send");
}

void datagram_transport::aclose() { detail::close_then_checkpoint(closing_, socket_); }

int datagram_transport::family() const { return local_address().family(); }
endpoint datagram_transport::local_address() const try {
  check_usable("weft::net::datagram_transport::local_address");
  return detail::to_endpoint(socket_.local_endpoint());
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_transport::local_address");
}
endpoint datagram_transport::peer_address() const try {
  check_usable("weft::net::datagram_transport::peer_address");
  return detail::to_endpoint(socket_.remote_endpoint());
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_transport::peer_address");
}

}  // namespace weft::net

// Stream transports.

#include "net/io.hpp"

#include <weft/lowlevel/read_readiness.hpp>
#include <weft/net/stream.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace weft::net {

namespace asio = boost::asio;

stream_transport::stream_transport(socket_type socket)
    : socket_(std::move(socket)), runtime_(detail::current_runtime_serial()) {
  detail::adopt_io_object(socket_, "weft::net::stream_transport", "socket");
}

stream_transport::stream_transport(stream_transport&& o) noexcept
    : socket_(std::move(o.socket_)),
      runtime_(o.runtime_),
      closing_(std::exchange(o.closing_, true)),
      eof_(o.eof_),
      read_error_(o.read_error_),
      recv_timeout_(o.recv_timeout_) {}

stream_transport& stream_transport::operator=(stream_transport&& o) noexcept {
  if (this != &o) {
    boost::system::error_code ignored;
    socket_.close(ignored);
    socket_ = std::move(o.socket_);
    runtime_ = o.runtime_;
    closing_ = std::exchange(o.closing_, true);
    eof_ = o.eof_;
    read_error_ = o.read_error_;
    recv_timeout_ = o.recv_timeout_;
  }
  return *this;
}

void stream_transport::detach(void* self) noexcept {
  // As the destructor: abortively, unless aclose() ran.
  auto& t = *static_cast<stream_transport*>(self);
  detail::detach_to_orphan(t.socket_, t.closing_, /*abortive=*/true);
}

stream_transport::~stream_transport() {
  // Never closed with aclose(): most likely unwinding after an error, so
  // tell the peer with a reset rather than a clean end of stream.
  boost::system::error_code ignored;
  if (socket_.is_open()) {
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
    socket_.close(ignored);
  }
}

void stream_transport::check_usable(const char* what) const try {
  detail::check_runtime(runtime_, what);
  if (closing_ || !socket_.is_open()) detail::throw_closed(what);
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::check_usable");
}

std::string stream_transport::recv(std::size_t n) try {
  check_usable("weft::net::stream_transport::recv");
  lowlevel::raise_if_cancelled();
  if (n == 0) return {};
  std::string out(std::min(n, max_recv_size), '\0');
  out.resize(recv_into(std::span<char>(out.data(), out.size())));
  return out;
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::recv");
}

WEFT_HOT std::size_t stream_transport::recv_into(std::span<std::byte> buf) try {
  const char* what = "weft::net::stream_transport::recv_into";
  detail::enter_blocking_call(runtime_, closing_, socket_, what);
  if (buf.empty()) return 0;
  detail::busy_guard busy(receiving_, "weft::net::stream_transport: another task is already receiving on this transport");
  // After end of stream or a connection error no readiness edge will come
  // again (the reactor is edge-triggered): answer at once, every time.
  if (eof_) return 0;
  if (read_error_) detail::check(read_error_, closing_, what);
  int error = 0;
  const std::ptrdiff_t n = detail::read_when_ready(socket_, closing_, what, error, [&](int& e) {
    const std::ptrdiff_t r = detail::recv_now(socket_.native_handle(), buf.data(), buf.size(), e);
    // A short read (of TCP) drained the socket: the next read then waits
    // for the next edge instead of failing with EAGAIN first.
    if (r > 0 && static_cast<std::size_t>(r) < buf.size()) lowlevel::note_short_read(socket_);
    return r;
  }, recv_timeout_);
  if (n > 0) [[likely]]
    return static_cast<std::size_t>(n);
  if (n == 0) {
    eof_ = true;
    return 0;
  }
  const boost::system::error_code ec = detail::system_error_code(error);
  if (ec != asio::error::bad_descriptor) read_error_ = ec;  // closed under us: check() reports it
  detail::check(ec, closing_, what);
  return 0;  // not reached: check() threw
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::recv_into");
}

WEFT_HOT void stream_transport::send_all(std::span<const std::byte> data) try {
  const char* what = "weft::net::stream_transport::send_all";
  detail::enter_blocking_call(runtime_, closing_, socket_, what);
  detail::busy_guard busy(sending_, "weft::net::stream_transport: another task is already sending on this transport");
  std::size_t sent = 0;
  while (sent < data.size()) {
    // Write at once; park on writability only when the socket buffer is full.
    int error = 0;
    const std::ptrdiff_t n =
        detail::send_now(socket_.native_handle(), data.data() + sent, data.size() - sent, nullptr, error);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (!detail::would_block(error)) detail::check(detail::system_error_code(error), closing_, what);
    detail::wait_writable(socket_, closing_, what);
  }
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::send_all");
}

void stream_transport::send_all_from_iterable(std::span<const std::span<const std::byte>> buffers) try {
  const char* what = "weft::net::stream_transport::send_all_from_iterable";
  detail::enter_blocking_call(runtime_, closing_, socket_, what);
  detail::busy_guard busy(sending_, "weft::net::stream_transport: another task is already sending on this transport");
  std::vector<asio::const_buffer> pending;
  pending.reserve(buffers.size());
  for (const auto& b : buffers)
    if (!b.empty()) pending.emplace_back(b.data(), b.size());
  std::size_t first = 0;
  while (first < pending.size()) {
    boost::system::error_code ec;
    // One sendmsg over (up to 64 of) the remaining buffers: no joining copy.
    std::size_t n = socket_.write_some(std::span(pending).subspan(first), ec);
    if (ec) {
      if (!detail::would_block(ec)) detail::check(ec, closing_, what);
      detail::wait_writable(socket_, closing_, what);
      continue;
    }
    while (n > 0 && first < pending.size()) {
      const std::size_t take = std::min(n, pending[first].size());
      pending[first] += take;
      n -= take;
      if (pending[first].size() == 0) ++first;
    }
  }
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::send_all_from_iterable");
}

void stream_transport::send_all_from_iterable(std::span<const std::string_view> buffers) try {
  std::vector<std::span<const std::byte>> spans;
  spans.reserve(buffers.size());
  for (auto s : buffers) spans.push_back(std::as_bytes(std::span<const char>(s.data(), s.size())));
  send_all_from_iterable(std::span<const std::span<const std::byte>>(spans));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::send_all_from_iterable");
}

void stream_transport::send_eof() try {
  check_usable("weft::net::stream_transport::send_eof");
  boost::system::error_code ec;
  socket_.shutdown(asio::socket_base::shutdown_send, ec);
  if (ec && ec != asio::error::not_connected) throw std::system_error(std::error_code(ec), "weft::net::stream_transport::send_eof");
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::send_eof");
}

void stream_transport::close_now() noexcept {
  if (closing_) return;
  closing_ = true;
  boost::system::error_code ignored;
  if (lowlevel::cancellation_pending()) socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  // Closing cancels a pending read or write of another task; it wakes with
  // operation_aborted and reports EBADF.
  socket_.close(ignored);
}

void stream_transport::aclose() {
  // Close first, then checkpoint: a cancelled task must not leave the
  // transport open (trio's rule for aclose).
  close_now();
  weft::detail::raise_if_cancelled_at_entry();
}

int stream_transport::family() const { return local_address().family(); }

endpoint stream_transport::local_address() const try {
  check_usable("weft::net::stream_transport::local_address");
  return detail::to_endpoint(socket_.local_endpoint());
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::local_address");
}

endpoint stream_transport::peer_address() const try {
  check_usable("weft::net::stream_transport::peer_address");
  return detail::to_endpoint(socket_.remote_endpoint());
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::peer_address");
}

void stream_transport::set_nodelay(bool on) try {
  socket_.set_option(asio::ip::tcp::no_delay(on));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::set_nodelay");
}
bool stream_transport::nodelay() const try {
  asio::ip::tcp::no_delay option;
  socket_.get_option(option);
  return option.value();
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::nodelay");
}
void stream_transport::set_recv_timeout(std::optional<duration> timeout) {
  if (timeout && !(timeout->count() > 0 && timeout->count() < std::numeric_limits<double>::infinity()))
    throw std::invalid_argument("weft::net::stream_transport::set_recv_timeout: the timeout must be positive and finite, not " +
                                std::to_string(timeout->count()) + " s");
  recv_timeout_ = timeout ? *timeout : duration{0};
}

void stream_transport::set_keepalive(bool on) try {
  socket_.set_option(asio::socket_base::keep_alive(on));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::set_keepalive");
}
bool stream_transport::keepalive() const try {
  asio::socket_base::keep_alive option;
  socket_.get_option(option);
  return option.value();
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_transport::keepalive");
}

}  // namespace weft::net

// Stream and datagram listeners.

#include "net/io.hpp"

#include <weft/checkpoint.hpp>
#include <weft/net/listener.hpp>
#include <weft/sync/semaphore.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

namespace weft::net {

namespace asio = boost::asio;

stream_listener::stream_listener(acceptor_type acceptor)
    : acceptor_(std::move(acceptor)), runtime_(detail::current_runtime_serial()) {
  detail::adopt_io_object(acceptor_, "weft::net::stream_listener", "acceptor");
  boost::system::error_code ec;
  const int family = acceptor_.local_endpoint(ec).protocol().family();
  tcp_ = !ec && (family == AF_INET || family == AF_INET6);
}
stream_listener::stream_listener(stream_listener&& o) noexcept
    : acceptor_(std::move(o.acceptor_)),
      runtime_(o.runtime_),
      tcp_(o.tcp_),
      closing_(std::exchange(o.closing_, true)) {}
stream_listener& stream_listener::operator=(stream_listener&& o) noexcept {
  if (this != &o) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    acceptor_ = std::move(o.acceptor_);
    runtime_ = o.runtime_;
    tcp_ = o.tcp_;
    closing_ = std::exchange(o.closing_, true);
  }
  return *this;
}
void stream_listener::detach(void* self) noexcept {
  auto& l = *static_cast<stream_listener*>(self);
  detail::detach_to_orphan(l.acceptor_, l.closing_, /*abortive=*/false);
}

stream_listener::~stream_listener() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

stream_transport::socket_type stream_listener::accept_one(boost::system::error_code& ec) {
  stream_transport::socket_type socket(acceptor_.get_executor());
  lowlevel::describe_wait("accept on fd", acceptor_.native_handle());
  detail::socket_op<std::size_t> op;  // completes with (error_code)
  acceptor_.async_accept(socket, op.handler());
  op.wait();
  ec = op.error();
  if (!ec && tcp_) detail::set_tcp_nodelay(socket.native_handle());
  return socket;
}

void stream_listener::wait_acceptable(boost::system::error_code& ec) {
  lowlevel::describe_wait("accept on fd", acceptor_.native_handle());
  detail::socket_op<std::size_t> op;  // completes with (error_code)
  acceptor_.async_wait(acceptor_type::wait_read, op.handler());
  op.wait();
  ec = op.error();
}

stream_transport::socket_type stream_listener::try_accept(boost::system::error_code& ec) {
  stream_transport::socket_type socket(acceptor_.get_executor());
  if (!acceptor_.non_blocking()) acceptor_.non_blocking(true, ec);
  if (!ec) acceptor_.accept(socket, ec);
  if (!ec && tcp_) detail::set_tcp_nodelay(socket.native_handle());
  return socket;
}

stream_transport stream_listener::accept() try {
  const char* what = "weft::net::stream_listener::accept";
  detail::enter_listener_call(runtime_, closing_, acceptor_, what);
  detail::busy_guard busy(accepting_, "weft::net::stream_listener: another task is already accepting on this listener");
  boost::system::error_code ec;
  stream_transport::socket_type socket = accept_one(ec);
  detail::check(ec, closing_, what);
  return stream_transport(std::move(socket));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_listener::accept");
}

namespace {
bool is_capacity_error(const boost::system::error_code& ec) {
  const int e = ec.value();
  return ec.category() == boost::system::system_category() &&
         (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM);
}
bool is_transient_error(const boost::system::error_code& ec) {
  const int e = ec.value();
  return ec.category() == boost::system::system_category() &&
         (e == ECONNABORTED || e == EPROTO || e == ENOPROTOOPT || e == EHOSTDOWN || e == ENONET ||
          e == EHOSTUNREACH || e == EOPNOTSUPP || e == ENETUNREACH || e == EAGAIN || e == EPERM);
}
}  // namespace

void stream_listener::serve(handler h, task_group& group) try {
  if (!h) throw std::invalid_argument("weft::net::stream_listener::serve: the handler is empty");
  auto shared = std::make_shared<handler>(std::move(h));
  accept_loop(
      [&](stream_transport transport) {
        group.start_soon([shared, transport = std::move(transport)]() mutable {
          struct closer {
            stream_transport& t;
            ~closer() { t.close_now(); }  // aclose() without its checkpoint: no throw from a destructor
          } close_on_exit{transport};
          (*shared)(transport);
        });
      },
      nullptr);
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_listener::serve");
}

void stream_listener::accept_loop(function_ref<void(stream_transport)> on_connection, weft::semaphore* limit) {
  const char* what = "weft::net::stream_listener::serve";
  detail::busy_guard busy(accepting_, "weft::net::stream_listener: this listener is already serving or accepting");
  // Accepts without waiting while connections may be pending, and waits for
  // readiness only once an accept found none: a burst that arrived in one
  // edge is accepted in one pass, before the handlers started so far run
  // on. (An accept that waits for its own completion would take one
  // connection per turn of the loop: with many busy connections, the last
  // of a burst of 1000 would wait for seconds in the backlog.)
  bool may_have_connection = true;
  for (;;) {
    // Before every accept, not only the first: with connections waiting, an
    // accept completes without the cancellation reaching it.
    detail::enter_listener_call(runtime_, closing_, acceptor_, what);
    struct unit {
      weft::semaphore* limit = nullptr;
      ~unit() {
        if (limit) limit->release();
      }
    } held;
    boost::system::error_code ec;
    stream_transport::socket_type socket(acceptor_.get_executor());
    if (!may_have_connection) {
      // A listener that waits for a connection holds no place of the limit
      // (several listeners share one), and what comes beyond the limit
      // stays in the backlog.
      wait_acceptable(ec);
      if (!ec) {
        may_have_connection = true;
        continue;
      }
    } else {
      if (limit != nullptr) {
        limit->acquire();
        held.limit = limit;
      }
      socket = try_accept(ec);
      if (detail::would_block(ec)) {
        // Drained. Only now wait for readiness: the reactor reports edges,
        // and connections that came in one edge are all accepted first.
        may_have_connection = false;
        continue;
      }
    }
    if (!ec) {
      held.limit = nullptr;  // on_connection owns it now, even if it throws
      on_connection(stream_transport(std::move(socket)));
      continue;
    }
    if (is_capacity_error(ec)) {
      // Out of file descriptors or memory: the pending connection stays in
      // the backlog; try again once some have been freed.
      std::fprintf(stderr, "weft: accept failed on %s: %s; retrying in 100 ms\n", local_address().to_string().c_str(),
                   ec.message().c_str());
      weft::sleep(std::chrono::milliseconds(100));
      continue;
    }
    if (is_transient_error(ec)) continue;  // that connection is gone; the next one may be fine
    detail::check(ec, closing_, what);
  }
}

void stream_listener::aclose() { detail::close_then_checkpoint(closing_, acceptor_); }

endpoint stream_listener::local_address() const try {
  if (!acceptor_.is_open()) detail::throw_closed("weft::net::stream_listener::local_address");
  return detail::to_endpoint(acceptor_.local_endpoint());
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::stream_listener::local_address");
}

// --- datagram_listener -------------------------------------------------------------

datagram_listener::datagram_listener(socket_type socket)
    : socket_(std::move(socket)), runtime_(detail::current_runtime_serial()) {
  detail::adopt_io_object(socket_, "weft::net::datagram_listener", "socket");
}
datagram_listener::datagram_listener(datagram_listener&& o) noexcept
    : socket_(std::move(o.socket_)),
      runtime_(o.runtime_),
      buffer_(std::move(o.buffer_)),
      ahead_(std::move(o.ahead_)),
      closing_(std::exchange(o.closing_, true)) {}
datagram_listener& datagram_listener::operator=(datagram_listener&& o) noexcept {
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
void datagram_listener::detach(void* self) noexcept {
  auto& l = *static_cast<datagram_listener*>(self);
  detail::detach_to_orphan(l.socket_, l.closing_, /*abortive=*/false);
}

datagram_listener::~datagram_listener() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

std::pair<std::string, endpoint> datagram_listener::recv_from() try {
  if (!buffer_) buffer_ = std::make_unique<char[]>(max_datagram_size);
  auto [n, from] = recv_from_into(std::span<char>(buffer_.get(), max_datagram_size));
  return {std::string(buffer_.get(), n), std::move(from)};
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_listener::recv_from");
}

WEFT_HOT std::pair<std::size_t, endpoint> datagram_listener::recv_from_into(std::span<std::byte> buf) try {
  const char* what = "weft::net::datagram_listener::recv_from";
  detail::enter_listener_call(runtime_, closing_, socket_, what);
  detail::busy_guard busy(receiving_, "weft::net::datagram_listener: another task is already receiving on this listener");
  sockaddr_storage from;
  socklen_t from_size = sizeof from;
  const std::size_t n = detail::recv_datagram(socket_, buf.data(), buf.size(), &from, &from_size, closing_, what, ahead_);
  return {n, endpoint(reinterpret_cast<const sockaddr*>(&from), from_size)};
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_listener::recv_from_into");
}

WEFT_HOT void datagram_listener::send_to(std::span<const std::byte> data, const endpoint& to) try {
  const char* what = "weft::net::datagram_listener::send_to";
  detail::enter_listener_call(runtime_, closing_, socket_, what);
  if (!to.is_ip() && !to.is_unix())
    throw std::invalid_argument(std::string(what) + ": the destination " + to.to_string() +
                                " is neither an IP nor a Unix endpoint");
  for (;;) {
    int error = 0;
    if (detail::send_now(socket_.native_handle(), data.data(), data.size(), &to, error) >= 0) return;
    if (error == EMSGSIZE)
      throw std::system_error(std::error_code(error, std::system_category()),
                              std::string(what) + ": a datagram of " + std::to_string(data.size()) + " bytes to " +
                                  to.to_string());
    if (!detail::would_block(error)) detail::check(detail::system_error_code(error), closing_, what);
    detail::wait_writable(socket_, closing_, what);
  }
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_listener::send_to");
}

void datagram_listener::serve(handler h, task_group& group) try {
  if (!h) throw std::invalid_argument("weft::net::datagram_listener::serve: the handler is empty");
  auto shared = std::make_shared<handler>(std::move(h));
  for (;;) {
    auto [datagram, from] = recv_from();  // a checkpoint at entry, every time round
    group.start_soon([shared, this, datagram = std::move(datagram), from = from]() mutable {
      (*shared)(std::move(datagram), from, *this);
    });
  }
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_listener::serve");
}

void datagram_listener::aclose() { detail::close_then_checkpoint(closing_, socket_); }

endpoint datagram_listener::local_address() const try {
  if (closing_ || !socket_.is_open()) detail::throw_closed("weft::net::datagram_listener::local_address");
  return detail::to_endpoint(socket_.local_endpoint());
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::datagram_listener::local_address");
}

}  // namespace weft::net

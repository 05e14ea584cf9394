// recv_datagram and read_ahead: the receive of weft's datagram sockets.
//
// A UDP socket's receive is one recvmmsg(2) asking for two datagrams. The
// second, when one was already there, is kept and returned by the next
// receive without a system call. When there was none, the second read
// found the socket drained, exactly as a recv(2) failing with EAGAIN would
// have (the reactor is told: lowlevel::note_read_drained), and the next
// receive waits for the reactor to report the socket readable instead of
// first trying a read bound to fail. Asio's reads (and a plain recv loop)
// pay that failing recv(2) on every receive of request/response traffic.
//
// Why "fewer than two" means drained: the kernel stops a recvmmsg(2) at the
// first read that finds nothing or fails. Nothing there is EAGAIN. A
// failure (a pending socket error: ICMP port unreachable on a connected UDP
// socket) is kept for the next call, and it came with a readiness report
// of its own after the first datagram was taken: a UDP receive reports a
// pending error before any queued datagram, so an error already there
// would have failed the first read instead.
//
// Unix datagram sockets read one datagram per call: their datagrams may be
// larger than max_datagram_size, which a kept copy would truncate.

#include "net/io.hpp"

#include <weft/checkpoint.hpp>

#include <sys/socket.h>

#include <cstring>
#include <memory>

namespace weft::net::detail {

struct read_ahead {
  std::unique_ptr<char[]> bytes;  // max_datagram_size; null: one datagram per call
  std::size_t size = 0;           // of the kept datagram
  socklen_t from_size = 0;
  bool held = false;  // a datagram is kept
  sockaddr_storage from;
};

void read_ahead_deleter::operator()(read_ahead* r) const noexcept { delete r; }

namespace {

read_ahead_ptr make_read_ahead(int fd) {
  read_ahead_ptr r(new read_ahead);
  int domain = 0;
  socklen_t length = sizeof domain;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 && (domain == AF_INET || domain == AF_INET6))
    r->bytes.reset(new char[max_datagram_size]);  // left uninitialized: the kernel writes what is read
  return r;
}

// The kept datagram, as a receive returns it.
std::size_t take_held(read_ahead& r, void* data, std::size_t size, sockaddr_storage* from, socklen_t* from_size) noexcept {
  r.held = false;
  const std::size_t n = r.size < size ? r.size : size;  // the rest is discarded, as recv(2) does
  if (n != 0) std::memcpy(data, r.bytes.get(), n);
  if (from != nullptr) {
    const socklen_t k = r.from_size < *from_size ? r.from_size : *from_size;
    std::memcpy(from, &r.from, k);
    *from_size = r.from_size;
  }
  return n;
}

// One recvmmsg(2) for up to two datagrams, retried on EINTR: the first into
// [data, data + size) (its sender into `from`), the second kept in `r`.
// Returns the first's size, or -1 with the errno value in `error`.
std::ptrdiff_t recv_two(int fd, void* data, std::size_t size, sockaddr_storage* from, socklen_t* from_size,
                        read_ahead& r, int& error) noexcept {
  iovec iov[2] = {{data, size}, {r.bytes.get(), max_datagram_size}};
  mmsghdr msgs[2];
  std::memset(msgs, 0, sizeof msgs);
  msgs[0].msg_hdr.msg_iov = &iov[0];
  msgs[0].msg_hdr.msg_iovlen = 1;
  msgs[1].msg_hdr.msg_iov = &iov[1];
  msgs[1].msg_hdr.msg_iovlen = 1;
  msgs[1].msg_hdr.msg_name = &r.from;
  for (;;) {
    if (from != nullptr) {
      msgs[0].msg_hdr.msg_name = from;
      msgs[0].msg_hdr.msg_namelen = *from_size;
    }
    msgs[1].msg_hdr.msg_namelen = sizeof r.from;
    const int n = ::recvmmsg(fd, msgs, 2, 0, nullptr);
    if (n > 0) {
      if (from != nullptr) *from_size = msgs[0].msg_hdr.msg_namelen;
      if (n == 2) {
        r.size = msgs[1].msg_len;
        r.from_size = msgs[1].msg_hdr.msg_namelen;
        r.held = true;
      }
      return msgs[0].msg_len;
    }
    if (n == 0) {  // received nothing (not documented for vlen > 0): as a drained socket
      error = EAGAIN;
      return -1;
    }
    if (errno != EINTR) {
      error = errno;
      return -1;
    }
  }
}

}  // namespace

WEFT_HOT std::size_t recv_datagram(boost::asio::generic::datagram_protocol::socket& socket, void* data, std::size_t size,
                                   sockaddr_storage* from, socklen_t* from_size, const bool& closing, const char* what,
                                   read_ahead_ptr& ahead) {
  if (!ahead) [[unlikely]]
    ahead = make_read_ahead(socket.native_handle());
  read_ahead& r = *ahead;
  if (r.held) {
    const std::size_t n = take_held(r, data, size, from, from_size);
    weft::cancel_shielded_coro_yield();  // as a read that found data at once (read_when_ready)
    return n;
  }
  int error = 0;
  const int fd = socket.native_handle();
  std::ptrdiff_t n;
  if (r.bytes) [[likely]] {
    n = read_when_ready(socket, closing, what, error, [&](int& e) {
      const std::ptrdiff_t got = recv_two(fd, data, size, from, from_size, r, e);
      if (got >= 0 && !r.held) lowlevel::note_read_drained(socket);  // the second read found none
      return got;
    });
  } else {
    n = read_when_ready(socket, closing, what, error,
                        [&](int& e) { return recv_now(fd, data, size, e, from, from_size); });
  }
  if (n < 0) check(system_error_code(error), closing, what);
  return static_cast<std::size_t>(n);
}

}  // namespace weft::net::detail

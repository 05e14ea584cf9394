// Read readiness of a socket as the runtime's reactor tracks it, for code
// that reads a socket of the runtime's io_context with its own recv(2)
// calls (weft's transports and datagram listeners do).
//
// Asio's reactor is edge-triggered. For each socket it remembers whether a
// read may find data: set when the reactor reports the socket readable,
// cleared when one of Asio's reads found the socket drained. While it is
// clear, Asio starts a read by waiting for the next readiness edge instead
// of trying recv(2) first, which would fail with EAGAIN.
//
// Contracts (the socket must be open, and of the calling thread's runtime's
// io_context):
//  - read_may_find_data(s): that flag. Always true when weft is built with
//    WEFT_PORTABLE_ASIO (Asio's public API does not show it).
//  - note_read_drained(s): clears it. Call it on the runtime's thread right
//    after a recv(2) of your own on s failed with EAGAIN, with no turn of
//    the reactor in between (nothing that may park or run handlers); or
//    after a recvmmsg(2) on a UDP socket returned fewer datagrams than it
//    asked for (its last read found none; an error it keeps for the next
//    call came with a readiness report of its own). A no-op with
//    WEFT_PORTABLE_ASIO.
//  - note_short_read(s): the same after a recv(2) of your own on s that
//    returned fewer bytes than asked for. For a TCP socket that read
//    drained it (epoll(7)), unless the peer's end of stream or an error
//    was already there: the end of stream or error would then be left
//    behind, with no new edge to report it. So the flag is cleared only for
//    a TCP socket whose last readiness report showed neither (the reactor
//    is asked to report the peer's end of stream, EPOLLRDHUP, from the
//    first call on: one epoll_ctl(2) per socket). A no-op otherwise, and
//    with WEFT_PORTABLE_ASIO.
//    Noting a read that did not drain the socket would make reads wait for
//    more data to arrive: never call these after a full read.
//  - read_wait: one wait for s to become readable, for when
//    read_may_find_data(s) is false, that costs no system call to start:
//    it is queued on the reactor as Asio queues a read that may not try
//    first. (Asio's async_wait re-arms the socket with epoll_ctl(2) every
//    time, since it cannot know that no readiness edge was missed.) With
//    WEFT_PORTABLE_ASIO it is an async_wait.
// None of these is a checkpoint; none throws. Built on Asio internals
// checked against the Boost version weft pins (see docs/internals.md).
#pragma once

#include <boost/asio/generic/datagram_protocol.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>

namespace weft::lowlevel {

/// See the header comment.
bool read_may_find_data(boost::asio::generic::stream_protocol::socket& s) noexcept;
bool read_may_find_data(boost::asio::generic::datagram_protocol::socket& s) noexcept;

/// See the header comment.
void note_read_drained(boost::asio::generic::stream_protocol::socket& s) noexcept;
void note_read_drained(boost::asio::generic::datagram_protocol::socket& s) noexcept;

/// See the header comment.
void note_short_read(boost::asio::generic::stream_protocol::socket& s) noexcept;

/// See the header comment. Not movable: the reactor holds its address
/// while it waits.
class read_wait {
 public:
  /// Called once per start(), on the runtime's thread, from its loop (never
  /// inside start()): `ec` is empty once the reactor reports the socket
  /// readable (or in error, or at end of stream: read to find out), and
  /// boost::asio::error::operation_aborted when cancel() or closing the
  /// socket ended the wait. `abandoned` is true, with an empty `ec`, when
  /// the io_context was destroyed with the wait pending.
  using callback = void (*)(void* context, const boost::system::error_code& ec, bool abandoned) noexcept;

  read_wait() noexcept {}  // storage_ left uninitialized on purpose
  read_wait(const read_wait&) = delete;
  read_wait& operator=(const read_wait&) = delete;
  /// Call only once the callback has run (or start() was never called).
  ~read_wait() = default;

  /// Starts the wait on `s` (open or not: a closed socket reports
  /// boost::asio::error::bad_descriptor through the callback). Call only
  /// when no earlier start() of this read_wait is pending.
  void start(boost::asio::generic::stream_protocol::socket& s, callback cb, void* context) noexcept;
  void start(boost::asio::generic::datagram_protocol::socket& s, callback cb, void* context) noexcept;
  /// Ends a pending wait with operation_aborted (through the callback, from
  /// the loop); nothing if the wait has completed already.
  void cancel() noexcept;

 private:
  static constexpr std::size_t storage_size = 128;
  alignas(std::max_align_t) unsigned char storage_[storage_size];
  void* reactor_data_ = nullptr;  // the socket's, for cancel()
  int descriptor_ = -1;
  callback cb_ = nullptr;
  void* context_ = nullptr;
  bool pending_ = false;
  friend struct read_wait_access;
};

}  // namespace weft::lowlevel

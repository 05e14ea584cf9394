// The out-of-line parts of net/io.hpp and net/socket_op.hpp: which runtime
// a socket belongs to, where it goes when that runtime ends, and the wait
// for readability of stream transports.

#include "core/runtime.hpp"
#include "net/io.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/errors.hpp>
#include <weft/net/connect.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace weft::net::detail {

WEFT_HOT std::uint64_t current_runtime_serial() noexcept {
  const weft::detail::runtime* rt = weft::detail::current_runtime();
  return rt != nullptr ? rt->serial() : 0;
}

boost::asio::io_context& orphan_io_context() noexcept {
  static auto* const context = new boost::asio::io_context(1);  // never destroyed, on purpose
  return *context;
}

void throw_op_abandoned() {
  throw abandoned_error(
      "weft::net: a socket operation was destroyed without completing (its io_context shut down first); its result "
      "is lost");
}

namespace {
struct readable_state {
  op_waiter waiter;
  boost::system::error_code ec;
};

template <class Socket>
WEFT_HOT void wait_readable_impl(Socket& socket, const bool& closing, const char* what) {
  lowlevel::describe_wait("recv on fd", socket.native_handle());
  readable_state state;
  lowlevel::read_wait wait;
  wait.start(
      socket,
      [](void* context, const boost::system::error_code& ec, bool abandoned) noexcept {
        auto& s = *static_cast<readable_state*>(context);
        s.ec = ec;
        s.waiter.finish(abandoned);
      },
      &state);
  // A cancelled wait completes (aborted) from the loop and wakes us.
  state.waiter.wait([&]() noexcept { wait.cancel(); }, state.ec);
  check(state.ec, closing, what);
}
}  // namespace

WEFT_HOT void wait_readable(boost::asio::generic::stream_protocol::socket& socket, const bool& closing, const char* what) {
  wait_readable_impl(socket, closing, what);
}
WEFT_HOT void wait_readable(boost::asio::generic::datagram_protocol::socket& socket, const bool& closing, const char* what) {
  wait_readable_impl(socket, closing, what);
}

int resolve_backlog(std::optional<int> backlog, const char* what) {
  if (!backlog) return default_backlog();
  if (*backlog < 1)
    throw std::invalid_argument(std::string(what) + ": backlog must be at least 1, not " + std::to_string(*backlog));
  return *backlog;
}

void wait_readable_until(boost::asio::generic::stream_protocol::socket& socket, const bool& closing, const char* what,
                         time_point& deadline, duration timeout) {
  if (deadline == inf_time) deadline = weft::current_time() + timeout;
  cancel_scope scope(deadline);
  scope.run([&] { wait_readable_impl(socket, closing, what); });
  if (scope.cancelled_caught()) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", timeout.count());
    throw std::system_error(std::make_error_code(std::errc::timed_out),
                            std::string(what) + ": nothing received for " + seconds + " s (the receive timeout)");
  }
}

void check_io_context(const boost::asio::any_io_executor& io_object_executor, const char* what) {
  weft::detail::runtime* rt = weft::detail::current_runtime();
  if (rt == nullptr || io_object_executor == boost::asio::any_io_executor(rt->io().get_executor())) return;
  throw std::invalid_argument(std::string(what) +
                              ": the socket belongs to another io_context than the running runtime's; open it on "
                              "weft::lowlevel::io_context()");
}

WEFT_HOT void check_runtime(std::uint64_t serial, const char* what) {
  if (serial == current_runtime_serial() && serial != 0) [[likely]]
    return;
  throw std::logic_error(std::string(what) +
                         ": this socket belongs to the runtime that opened it, which has ended or runs on another "
                         "thread; use it only in the tasks of that runtime");
}

}  // namespace weft::net::detail

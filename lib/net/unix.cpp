// Unix socket factories: stream connections and listeners, datagram
// endpoints and listeners, by path.

#include "net/factory.hpp"
#include "net/io.hpp"

#include <weft/checkpoint.hpp>
#include <weft/net/connect.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/socket_base.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <utility>

namespace weft::net {

namespace asio = boost::asio;

namespace {

// Binds a connecting socket to its local path.
template <class Socket, class Endpoint>
void bind_local(Socket& s, const Endpoint& ep, const std::string& path, const char* what) {
  boost::system::error_code ec;
  s.bind(ep, ec);
  if (ec) throw std::system_error(std::error_code(ec), std::string(what) + ": binding the local path " + path);
}

// chmod of a listener's socket file.
void set_mode(std::string_view path, std::optional<unsigned> mode, const char* what) {
  if (mode && ::chmod(std::string(path).c_str(), *mode) != 0)
    throw std::system_error(std::error_code(errno, std::system_category()),
                            std::string(what) + ": setting the mode of " + std::string(path));
}

// A Unix listener's bind_error: `step` ("bind", "listen on") failed at ep.
[[noreturn]] void throw_bind_error(const char* what, const endpoint& ep, const boost::system::error_code& ec,
                                   const char* step) {
  throw bind_error(std::string(what) + ": could not " + step,
                   {detail::attempt_failed(ep, ec, what, std::string(step) + " " + ep.to_string())});
}

// Removes the socket file a listener bound if the listener is not finished
// after all: a failed factory leaves nothing behind.
class socket_file_guard {
 public:
  explicit socket_file_guard(std::string_view path) : path_(path) {}
  socket_file_guard(socket_file_guard&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ~socket_file_guard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  socket_file_guard(const socket_file_guard&) = delete;
  socket_file_guard& operator=(const socket_file_guard&) = delete;
  void release() noexcept { path_.clear(); }

 private:
  std::string path_;
};

// Binds a listener's socket to its path and gives the file `mode`. The
// guard removes the file unless the listener is finished after all.
template <class Socket, class Endpoint>
[[nodiscard]] socket_file_guard bind_listener(Socket& s, const Endpoint& bind_ep, const endpoint& ep, std::string_view path,
                                              std::optional<unsigned> mode, const char* what) {
  boost::system::error_code ec;
  s.bind(bind_ep, ec);
  if (ec) throw_bind_error(what, ep, ec, "bind");
  socket_file_guard file(path);
  set_mode(path, mode, what);
  return file;
}

}  // namespace

stream_transport create_unix_stream_connection(std::string_view path, std::optional<std::string> local_path) try {
  const char* what = "weft::net::create_unix_stream_connection";
  lowlevel::raise_if_cancelled();
  const endpoint remote = detail::unix_endpoint(path, what, "the path");
  std::optional<endpoint> local;
  if (local_path) local = detail::unix_endpoint(*local_path, what, "local_path");
  detail::stream_socket s(lowlevel::io_context());
  s.open(detail::stream_proto(AF_UNIX));
  s.non_blocking(true);
  if (local) bind_local(s, detail::stream_ep(*local), *local_path, what);
  // A listener whose accept queue is full makes a non-blocking connect(2)
  // fail with EAGAIN (a blocking one would wait for room). Nothing becomes
  // readable or writable when room appears, so retry after a pause that
  // doubles up to 50 ms; weft::sleep keeps the wait on the runtime clock and
  // cancellable.
  auto fail = [&](const boost::system::error_code& ec) {
    throw connect_error(std::string(what) + ": could not connect",
                        {detail::attempt_failed(remote, ec, what, "connecting to " + std::string(path))});
  };
  auto system_error = [](int e) { return boost::system::error_code(e, boost::system::system_category()); };
  duration pause = std::chrono::milliseconds(1);
  for (;;) {
    if (::connect(s.native_handle(), remote.data(), static_cast<socklen_t>(remote.size())) == 0) break;
    const int error = errno;
    if (error == EISCONN) break;
    if (error == EINTR) continue;
    if (error == EAGAIN) {
      weft::sleep(pause);
      pause = std::min<duration>(pause * 2, std::chrono::milliseconds(50));
      continue;
    }
    if (error != EINPROGRESS) fail(system_error(error));
    // In progress (not for Unix sockets on Linux, but allowed by POSIX):
    // wait until writable, then read the outcome.
    boost::system::error_code ec;
    lowlevel::describe_wait("connect on fd", s.native_handle());
    s.async_wait(asio::socket_base::wait_write, use_fiber[ec]);
    if (ec) fail(ec);
    int so_error = 0;
    socklen_t len = sizeof so_error;
    if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
    if (so_error != 0) fail(system_error(so_error));
    break;
  }
  return stream_transport(std::move(s));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_unix_stream_connection");
}

datagram_transport create_unix_datagram_endpoint(std::optional<std::string> remote_path,
                                                 std::optional<std::string> local_path) try {
  const char* what = "weft::net::create_unix_datagram_endpoint";
  lowlevel::raise_if_cancelled();
  if (!remote_path && !local_path)
    throw std::invalid_argument("weft::net::create_unix_datagram_endpoint: give a remote path, a local path, or both");
  std::optional<endpoint> local, remote;
  if (local_path) local = detail::unix_endpoint(*local_path, what, "local_path");
  if (remote_path) remote = detail::unix_endpoint(*remote_path, what, "remote_path");
  detail::dgram_socket s(lowlevel::io_context());
  s.open(detail::dgram_proto(AF_UNIX));
  if (local) bind_local(s, detail::dgram_ep(*local), *local_path, what);
  if (remote) {
    boost::system::error_code ec;
    s.connect(detail::dgram_ep(*remote), ec);
    if (ec)
      throw connect_error(std::string(what) + ": could not connect",
                          {detail::attempt_failed(*remote, ec, what, "connecting to " + *remote_path)});
  }
  return datagram_transport(std::move(s));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_unix_datagram_endpoint");
}

stream_listener create_unix_stream_listener(std::string_view path, std::optional<int> backlog, std::optional<unsigned> mode) try {
  const char* what = "weft::net::create_unix_stream_listener";
  const int listen_backlog = detail::resolve_backlog(backlog, what);
  detail::check_mode(mode, what);
  const endpoint ep = detail::unix_endpoint(path, what, "the path");
  detail::acceptor a(lowlevel::io_context());
  a.open(detail::stream_proto(AF_UNIX));
  socket_file_guard file = bind_listener(a, detail::stream_ep(ep), ep, path, mode, what);
  boost::system::error_code ec;
  a.listen(listen_backlog, ec);
  if (ec) throw_bind_error(what, ep, ec, "listen on");
  stream_listener listener(std::move(a));
  file.release();
  return listener;
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_unix_stream_listener");
}

datagram_listener create_unix_datagram_listener(std::string_view path, std::optional<unsigned> mode) try {
  const char* what = "weft::net::create_unix_datagram_listener";
  detail::check_mode(mode, what);
  const endpoint ep = detail::unix_endpoint(path, what, "the path");
  detail::dgram_socket s(lowlevel::io_context());
  s.open(detail::dgram_proto(AF_UNIX));
  socket_file_guard file = bind_listener(s, detail::dgram_ep(ep), ep, path, mode, what);
  datagram_listener listener(std::move(s));
  file.release();
  return listener;
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_unix_datagram_listener");
}

}  // namespace weft::net

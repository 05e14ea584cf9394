// Connections, endpoints and listeners: the factories.

#include "net/io.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>
#include <weft/net/connect.hpp>
#include <weft/sync/event.hpp>
#include <weft/task_group.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/socket_base.hpp>

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>

namespace weft::net {

namespace asio = boost::asio;
using stream_socket = asio::generic::stream_protocol::socket;
using dgram_socket = asio::generic::datagram_protocol::socket;
using acceptor = stream_listener::acceptor_type;

namespace {

asio::generic::stream_protocol stream_proto(int family) {
  return asio::generic::stream_protocol(family, family == AF_UNIX ? 0 : IPPROTO_TCP);
}
asio::generic::datagram_protocol dgram_proto(int family) {
  return asio::generic::datagram_protocol(family, family == AF_UNIX ? 0 : IPPROTO_UDP);
}
asio::generic::stream_protocol::endpoint stream_ep(const endpoint& ep) {
  return {ep.data(), ep.size(), ep.family() == AF_UNIX ? 0 : IPPROTO_TCP};
}
asio::generic::datagram_protocol::endpoint dgram_ep(const endpoint& ep) {
  return {ep.data(), ep.size(), ep.family() == AF_UNIX ? 0 : IPPROTO_UDP};
}

// RFC 8305 §4: IPv6 first, then alternate address families.
std::vector<endpoint> interleave(const std::vector<address_info>& infos) {
  std::vector<endpoint> v6, v4, out;
  for (const auto& i : infos) (i.family == AF_INET6 ? v6 : v4).push_back(i.address);
  std::size_t a = 0, b = 0;
  bool six = !v6.empty();
  while (a < v6.size() || b < v4.size()) {
    if (six && a < v6.size())
      out.push_back(v6[a++]);
    else if (b < v4.size())
      out.push_back(v4[b++]);
    else
      out.push_back(v6[a++]);
    six = !six;
  }
  return out;
}

void remove_duplicates(std::vector<endpoint>& eps) {
  std::vector<endpoint> unique;
  for (auto& e : eps)
    if (std::find(unique.begin(), unique.end(), e) == unique.end()) unique.push_back(e);
  eps.swap(unique);
}

}  // namespace

// --- errors ------------------------------------------------------------------------

struct address_error::data {
  std::string what;
  std::vector<address_attempt> attempts;
};

namespace {
std::error_code last_error(const std::vector<address_attempt>& attempts) {
  return attempts.empty() ? std::error_code() : attempts.back().error;
}
}  // namespace

address_error::address_error(std::string context, std::vector<address_attempt> attempts)
    : std::system_error(last_error(attempts), context) {
  auto d = std::make_shared<data>();
  d->what = std::move(context);
  const char* separator = ": ";
  for (const auto& a : attempts) {
    d->what += separator;
    d->what += a.address.to_string();
    d->what += ": ";
    d->what += a.error.message();
    separator = "; ";
  }
  d->attempts = std::move(attempts);
  data_ = std::move(d);
}

const char* address_error::what() const noexcept { return data_->what.c_str(); }
const std::vector<address_attempt>& address_error::attempts() const noexcept { return data_->attempts; }

namespace {

// One failed attempt: `step` says what failed ("connecting to [::1]:80").
address_attempt attempt_failed(const endpoint& address, const boost::system::error_code& ec, const char* function,
                               const std::string& step) {
  const std::error_code error(ec);
  return {address, error, std::make_exception_ptr(std::system_error(error, std::string(function) + ": " + step))};
}
address_attempt attempt_failed(const endpoint& address, const std::system_error& e) {
  return {address, e.code(), std::make_exception_ptr(e)};
}

// "host:port", with an IPv6 literal in brackets.
std::string host_port(std::string_view host, int port) {
  const std::string h(host);
  return (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(port);
}

}  // namespace

// --- connections -------------------------------------------------------------------

stream_transport create_tcp_connection(std::string_view host, int port,
                                       std::optional<std::pair<std::string, int>> local_address,
                                       duration happy_eyeballs_delay) try {
  lowlevel::raise_if_cancelled();
  detail::check_port(port, "weft::net::create_tcp_connection");
  if (local_address) detail::check_port(local_address->second, "weft::net::create_tcp_connection");
  if (std::isnan(happy_eyeballs_delay.count()) || happy_eyeballs_delay.count() < 0)
    throw std::invalid_argument("weft::net::create_tcp_connection: happy_eyeballs_delay must be at least 0 s, not " +
                                std::to_string(happy_eyeballs_delay.count()) + " s");
  std::vector<endpoint> remotes = interleave(getaddrinfo(host, std::to_string(port), AF_UNSPEC, SOCK_STREAM));
  remove_duplicates(remotes);
  std::vector<endpoint> locals;
  if (local_address) {
    for (const auto& i : getaddrinfo(local_address->first, std::to_string(local_address->second), AF_UNSPEC,
                                     SOCK_STREAM, AI_PASSIVE))
      locals.push_back(i.address);
    std::erase_if(remotes, [&](const endpoint& r) {
      return std::none_of(locals.begin(), locals.end(), [&](const endpoint& l) { return l.family() == r.family(); });
    });
    if (remotes.empty())
      throw std::invalid_argument("weft::net::create_tcp_connection: no address of " + std::string(host) +
                                  " has the address family of the local address " + local_address->first);
  }

  const char* what = "weft::net::create_tcp_connection";
  std::optional<stream_socket> winner;
  // One slot per address, so that the attempts are reported in the order
  // they were started whatever order they failed in.
  std::vector<std::optional<address_attempt>> failures(remotes.size());
  auto& io = lowlevel::io_context();
  open_task_group([&](task_group& tg) {
    for (std::size_t i = 0; i < remotes.size(); ++i) {
      const endpoint& remote = remotes[i];
      auto failed = std::make_shared<event>();
      tg.start_soon([&, i, failed] {
        stream_socket s(io);
        std::string step = "opening a socket for " + remote.to_string();
        try {
          s.open(stream_proto(remote.family()));
          for (const auto& l : locals)
            if (l.family() == remote.family()) {
              step = "binding " + l.to_string() + " to connect to " + remote.to_string();
              s.set_option(asio::socket_base::reuse_address(true));
              s.bind(stream_ep(l));
              break;
            }
          step = "connecting to " + remote.to_string();
          lowlevel::describe_wait("connect on fd", s.native_handle());
          s.async_connect(stream_ep(remote), use_fiber);
        } catch (const boost::system::system_error& e) {
          failures[i] = attempt_failed(remote, e.code(), what, step);
          failed->set();
          return;
        }
        if (!winner) {
          winner.emplace(std::move(s));
          tg.cancel();  // the other attempts lose and close their sockets
        }
      });
      // Start the next attempt after the delay, or as soon as this one fails.
      move_on_after(happy_eyeballs_delay).run([&] { failed->wait(); });
    }
  });
  if (winner) return stream_transport(std::move(*winner));
  // No winner and no cancellation (that would have left the group as
  // weft::cancelled): every attempt ran and failed.
  std::vector<address_attempt> attempts;
  for (auto& f : failures)
    if (f) attempts.push_back(std::move(*f));
  throw connect_error(std::string(what) + ": could not connect to " + host_port(host, port), std::move(attempts));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_tcp_connection");
}

stream_transport create_unix_stream_connection(std::string_view path, std::optional<std::string> local_path) try {
  const char* what = "weft::net::create_unix_stream_connection";
  lowlevel::raise_if_cancelled();
  const endpoint remote = detail::unix_endpoint(path, what, "the path");
  std::optional<endpoint> local;
  if (local_path) local = detail::unix_endpoint(*local_path, what, "local_path");
  stream_socket s(lowlevel::io_context());
  s.open(stream_proto(AF_UNIX));
  s.non_blocking(true);
  if (local) {
    boost::system::error_code ec;
    s.bind(stream_ep(*local), ec);
    if (ec)
      throw std::system_error(std::error_code(ec), std::string(what) + ": binding the local path " + *local_path);
  }
  // A listener whose accept queue is full makes a non-blocking connect(2)
  // fail with EAGAIN (a blocking one would wait for room). Nothing becomes
  // readable or writable when room appears, so retry after a pause that
  // doubles up to 50 ms; weft::sleep keeps the wait on the runtime clock and
  // cancellable.
  auto fail = [&](const boost::system::error_code& ec) {
    throw connect_error(std::string(what) + ": could not connect",
                        {attempt_failed(remote, ec, what, "connecting to " + std::string(path))});
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

namespace {
int socket_type_of(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -1;
  return type;
}
int socket_family_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  return ss.ss_family;
}
}  // namespace

stream_transport wrap_stream_socket(int fd) try {
  const int type = socket_type_of(fd);
  const int family = socket_family_of(fd);
  if (type != SOCK_STREAM || (family != AF_INET && family != AF_INET6 && family != AF_UNIX))
    throw std::invalid_argument("weft::net::wrap_stream_socket: fd " + std::to_string(fd) +
                                " is not a TCP or Unix stream socket");
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0)
    throw std::invalid_argument("weft::net::wrap_stream_socket: the socket of fd " + std::to_string(fd) +
                                " is not connected");
  return stream_transport(stream_socket(lowlevel::io_context(), stream_proto(family), fd));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::wrap_stream_socket");
}

datagram_transport wrap_connected_datagram_socket(int fd) try {
  const int type = socket_type_of(fd);
  const int family = socket_family_of(fd);
  if (type != SOCK_DGRAM || (family != AF_INET && family != AF_INET6 && family != AF_UNIX))
    throw std::invalid_argument("weft::net::wrap_connected_datagram_socket: fd " + std::to_string(fd) +
                                " is not a UDP or Unix datagram socket");
  return datagram_transport(dgram_socket(lowlevel::io_context(), dgram_proto(family), fd));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::wrap_connected_datagram_socket");
}

datagram_transport create_udp_endpoint(std::optional<std::pair<std::string, int>> remote,
                                       std::optional<std::pair<std::string, int>> local, int family) try {
  lowlevel::raise_if_cancelled();
  if (!remote && !local)
    throw std::invalid_argument("weft::net::create_udp_endpoint: give a remote address, a local address, or both");
  detail::check_ip_family(family, "weft::net::create_udp_endpoint");
  if (remote) detail::check_port(remote->second, "weft::net::create_udp_endpoint");
  if (local) detail::check_port(local->second, "weft::net::create_udp_endpoint");
  std::vector<address_info> remotes, locals;
  if (local)
    locals = getaddrinfo(local->first, std::to_string(local->second), family, SOCK_DGRAM, AI_PASSIVE);
  if (remote) remotes = getaddrinfo(remote->first, std::to_string(remote->second), family, SOCK_DGRAM);
  const char* what = "weft::net::create_udp_endpoint";
  std::vector<address_attempt> attempts;
  // Try each (local, remote) pair of one family until one binds and connects.
  auto try_pair = [&](const address_info* l, const address_info* r) -> std::optional<datagram_transport> {
    const endpoint& tried = r ? r->address : l->address;
    std::string step = "opening a socket for " + tried.to_string();
    try {
      dgram_socket s(lowlevel::io_context());
      s.open(dgram_proto(tried.family()));
      if (l) {
        step = "binding " + l->address.to_string();
        s.bind(dgram_ep(l->address));
      }
      if (r) {
        step = "connecting to " + r->address.to_string();
        s.connect(dgram_ep(r->address));
      }
      return datagram_transport(std::move(s));
    } catch (const boost::system::system_error& e) {
      attempts.push_back(attempt_failed(tried, e.code(), what, step));
      return std::nullopt;
    }
  };
  if (remote) {
    for (const auto& r : remotes) {
      if (local) {
        for (const auto& l : locals)
          if (l.family == r.family)
            if (auto t = try_pair(&l, &r)) return std::move(*t);
      } else if (auto t = try_pair(nullptr, &r)) {
        return std::move(*t);
      }
    }
  } else {
    for (const auto& l : locals)
      if (auto t = try_pair(&l, nullptr)) return std::move(*t);
  }
  if (attempts.empty())
    throw std::invalid_argument(std::string(what) + ": the local address " + host_port(local->first, local->second) +
                                " and the remote address " + host_port(remote->first, remote->second) +
                                " share no address family");
  const std::string target = remote ? "connect to " + host_port(remote->first, remote->second)
                                    : "bind " + host_port(local->first, local->second);
  throw connect_error(std::string(what) + ": could not " + target, std::move(attempts));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_udp_endpoint");
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
  dgram_socket s(lowlevel::io_context());
  s.open(dgram_proto(AF_UNIX));
  boost::system::error_code ec;
  if (local) {
    s.bind(dgram_ep(*local), ec);
    if (ec)
      throw std::system_error(std::error_code(ec), std::string(what) + ": binding the local path " + *local_path);
  }
  if (remote) {
    s.connect(dgram_ep(*remote), ec);
    if (ec)
      throw connect_error(std::string(what) + ": could not connect",
                          {attempt_failed(*remote, ec, what, "connecting to " + *remote_path)});
  }
  return datagram_transport(std::move(s));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_unix_datagram_endpoint");
}

namespace {

// Makes one listener per address with make(endpoint); if any fails, closes
// every one made so far and throws a bind_error listing each failure.
template <class Make>
auto bind_all(const char* what, const std::vector<address_info>& infos, int port, Make make) {
  using item = decltype(make(infos.front().address));
  std::vector<item> out;
  std::vector<address_attempt> failures;
  int chosen = port;
  for (const auto& info : infos) {
    endpoint ep = info.address;
    if (port == 0 && chosen != 0 && ep.is_ip()) ep = endpoint(ep.address(), chosen);  // one free port for all
    try {
      out.push_back(make(ep));
      if (chosen == 0 && ep.is_ip()) chosen = out.back().local_address().port();
    } catch (const boost::system::system_error& e) {
      failures.push_back(attempt_failed(ep, e.code(), what, "binding a listener to " + ep.to_string()));
    } catch (const std::system_error& e) {
      failures.push_back(attempt_failed(ep, e));
    }
  }
  if (!failures.empty()) {
    out.clear();  // closes every socket bound so far
    std::string context = std::string(what) + ": could not bind ";
    context += failures.size() == 1 ? "a listener" : std::to_string(failures.size()) + " of the listeners";
    throw bind_error(std::move(context), std::move(failures));
  }
  return out;
}

std::vector<address_info> passive_addresses(std::string_view host, int port, int type) {
  if (host.empty()) {
    std::vector<address_info> all = getaddrinfo("::", std::to_string(port), AF_INET6, type);
    auto v4 = getaddrinfo("0.0.0.0", std::to_string(port), AF_INET, type);
    all.insert(all.end(), v4.begin(), v4.end());
    return all;
  }
  auto infos = getaddrinfo(host, std::to_string(port), AF_UNSPEC, type, AI_PASSIVE);
  std::vector<address_info> unique;
  for (auto& i : infos)
    if (std::none_of(unique.begin(), unique.end(), [&](const address_info& u) { return u.address == i.address; }))
      unique.push_back(i);
  return unique;
}

}  // namespace

std::vector<stream_listener> create_tcp_listeners(const std::vector<std::string>& hosts, int port,
                                                  int backlog, bool reuse_port_option) try {
  lowlevel::raise_if_cancelled();
  detail::check_port(port, "weft::net::create_tcp_listeners");
  detail::check_backlog(backlog, "weft::net::create_tcp_listeners");
  std::vector<address_info> infos;
  if (hosts.empty()) {
    infos = passive_addresses("", port, SOCK_STREAM);
  } else {
    for (const auto& h : hosts) {
      auto more = passive_addresses(h, port, SOCK_STREAM);
      infos.insert(infos.end(), more.begin(), more.end());
    }
  }
  return bind_all("weft::net::create_tcp_listeners", infos, port, [&](const endpoint& ep) {
    acceptor a(lowlevel::io_context());
    a.open(stream_proto(ep.family()));
    a.set_option(asio::socket_base::reuse_address(true));
    if (reuse_port_option) a.set_option(detail::reuse_port(true));
    if (ep.family() == AF_INET6) a.set_option(asio::ip::v6_only(true));
    a.bind(stream_ep(ep));
    a.listen(backlog);
    return stream_listener(std::move(a));
  });
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_tcp_listeners");
}

std::vector<stream_listener> create_tcp_listeners(std::string_view host, int port, int backlog,
                                                  bool reuse_port_option) {
  if (host.empty()) return create_tcp_listeners(std::vector<std::string>{}, port, backlog, reuse_port_option);
  return create_tcp_listeners(std::vector<std::string>{std::string(host)}, port, backlog, reuse_port_option);
}

namespace {

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
                   {attempt_failed(ep, ec, what, std::string(step) + " " + ep.to_string())});
}

// Removes the socket file a listener bound if the listener is not finished
// after all: a failed factory leaves nothing behind.
class socket_file_guard {
 public:
  explicit socket_file_guard(std::string_view path) : path_(path) {}
  ~socket_file_guard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  socket_file_guard(const socket_file_guard&) = delete;
  socket_file_guard& operator=(const socket_file_guard&) = delete;
  void release() noexcept { path_.clear(); }

 private:
  std::string path_;
};

}  // namespace

stream_listener create_unix_stream_listener(std::string_view path, int backlog, std::optional<unsigned> mode) try {
  const char* what = "weft::net::create_unix_stream_listener";
  detail::check_backlog(backlog, what);
  detail::check_mode(mode, what);
  const endpoint ep = detail::unix_endpoint(path, what, "the path");
  acceptor a(lowlevel::io_context());
  a.open(stream_proto(AF_UNIX));
  boost::system::error_code ec;
  a.bind(stream_ep(ep), ec);
  if (ec) throw_bind_error(what, ep, ec, "bind");
  socket_file_guard file(path);
  set_mode(path, mode, what);
  a.listen(backlog, ec);
  if (ec) throw_bind_error(what, ep, ec, "listen on");
  stream_listener listener(std::move(a));
  file.release();
  return listener;
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_unix_stream_listener");
}

std::vector<datagram_listener> create_udp_listeners(std::string_view host, int port, bool reuse_port_option) try {
  lowlevel::raise_if_cancelled();
  detail::check_port(port, "weft::net::create_udp_listeners");
  return bind_all("weft::net::create_udp_listeners", passive_addresses(host, port, SOCK_DGRAM), port,
                  [&](const endpoint& ep) {
    dgram_socket s(lowlevel::io_context());
    s.open(dgram_proto(ep.family()));
    s.set_option(asio::socket_base::reuse_address(true));
    if (reuse_port_option) s.set_option(detail::reuse_port(true));
    if (ep.family() == AF_INET6) s.set_option(asio::ip::v6_only(true));
    s.bind(dgram_ep(ep));
    return datagram_listener(std::move(s));
  });
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_udp_listeners");
}

datagram_listener create_unix_datagram_listener(std::string_view path, std::optional<unsigned> mode) try {
  const char* what = "weft::net::create_unix_datagram_listener";
  detail::check_mode(mode, what);
  const endpoint ep = detail::unix_endpoint(path, what, "the path");
  dgram_socket s(lowlevel::io_context());
  s.open(dgram_proto(AF_UNIX));
  boost::system::error_code ec;
  s.bind(dgram_ep(ep), ec);
  if (ec) throw_bind_error(what, ep, ec, "bind");
  socket_file_guard file(path);
  set_mode(path, mode, what);
  datagram_listener listener(std::move(s));
  file.release();
  return listener;
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_unix_datagram_listener");
}

}  // namespace weft::net

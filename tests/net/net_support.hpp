// Shared fixtures of the networking tests (their runtimes are those of
// tests/support/runners.hpp): error inspection, descriptor counting,
// scratch directories, connected pairs, a loopback listener whose connects
// hang, and running a scenario in a child process.
//
// Every address used here is a loopback address (127.0.0.0/8 or ::1).
#pragma once

#include "support/support.hpp"

#include <weft/net.hpp>

#include <boost/system/system_error.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <concepts>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace weft_net_test {

using namespace std::chrono_literals;
namespace net = weft::net;
using weft_test::now_s;
using weft_test::run;
using weft_test::run_frozen;
using weft_test::run_real;

/// What a call threw, as an errno value: the code of a system error
/// (boost::system::system_error or std::system_error), 0 if it returned,
/// -1 for any other std::exception. weft::cancelled passes through.
template <class F>
  requires std::invocable<F&>
int error_of(F&& fn) {
  try {
    fn();
  } catch (const boost::system::system_error& e) {
    return e.code().value();
  } catch (const std::system_error& e) {
    return e.code().value();
  } catch (const std::exception&) {
    return -1;
  }
  return 0;
}

/// The errno of an exception_ptr holding a system error, -1 otherwise.
inline int error_of(const std::exception_ptr& e) {
  return error_of([&] { std::rethrow_exception(e); });
}

/// Checks that fn throws std::invalid_argument whose message contains every
/// one of `parts` (the weft function, the bad value).
template <class F>
  requires std::invocable<F&>
void check_invalid_argument(F&& fn, std::initializer_list<std::string_view> parts) {
  try {
    fn();
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CAPTURE(what);
    for (const auto part : parts) {
      CAPTURE(part);
      CHECK(what.find(part) != std::string::npos);
    }
  } catch (const std::exception& e) {
    FAIL("not a std::invalid_argument: " << std::string(e.what()));
  }
}

/// Open file descriptors of this process (entries of /proc/self/fd).
inline std::size_t open_fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

inline bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

/// A private scratch directory under /tmp, removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    char tmpl[] = "/tmp/weft-nettest-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// An int option of a socket (getsockopt), -1 on error.
inline int sockopt_int(int fd, int level, int name) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, level, name, &value, &len) != 0) return -1;
  return value;
}

/// Makes the next close of fd send a reset (SO_LINGER 0).
inline void set_linger_zero(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/// The two ends of one connection.
struct stream_pair {
  net::stream_transport client;
  net::stream_transport server;
};

/// A TCP connection over loopback (host "127.0.0.1" or "::1"). In a task.
inline stream_pair tcp_pair(const std::string& host = "127.0.0.1") {
  auto listeners = net::create_tcp_listeners(host, 0);
  REQUIRE(listeners.size() == 1);
  auto client = net::create_tcp_connection(host, listeners[0].local_address().port());
  auto server = listeners[0].accept();
  return {std::move(client), std::move(server)};
}

/// A connected pair of Unix stream sockets. In a task.
inline stream_pair unix_stream_pair() {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  return {net::wrap_stream_socket(fds[0]), net::wrap_stream_socket(fds[1])};
}

/// A connected pair of Unix datagram sockets. In a task.
inline std::pair<net::datagram_transport, net::datagram_transport> unix_datagram_pair() {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) == 0);
  return {net::wrap_connected_datagram_socket(fds[0]), net::wrap_connected_datagram_socket(fds[1])};
}

/// Receives until end of stream; returns everything. In a task.
inline std::string recv_all(net::stream_transport& t) {
  std::string out;
  for (;;) {
    std::string s = t.recv(64 * 1024);
    if (s.empty()) return out;
    out += s;
  }
}

/// The kinds of stream connection most tests run over.
enum class stream_kind { tcp4, tcp6, unix_socket };
inline const char* name_of(stream_kind k) {
  return k == stream_kind::tcp4 ? "tcp4" : k == stream_kind::tcp6 ? "tcp6" : "unix";
}
inline constexpr stream_kind all_stream_kinds[] = {stream_kind::tcp4, stream_kind::tcp6, stream_kind::unix_socket};

inline stream_pair make_stream_pair(stream_kind k) {
  switch (k) {
    case stream_kind::tcp4:
      return tcp_pair("127.0.0.1");
    case stream_kind::tcp6:
      return tcp_pair("::1");
    case stream_kind::unix_socket:
      break;
  }
  return unix_stream_pair();
}

/// Sends until the socket buffers towards the peer are full (the peer is
/// not reading): the next send_all parks. In a task.
inline std::size_t fill_send_buffer(net::stream_transport& t) {
  const int fd = t.socket().native_handle();
  std::string chunk(64 * 1024, 'f');
  std::size_t total = 0;
  for (;;) {
    const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      REQUIRE((errno == EAGAIN || errno == EWOULDBLOCK));
      return total;
    }
    total += static_cast<std::size_t>(n);
  }
}

/// Reads from a raw socket until end of stream; returns everything. Blocking
/// with a poll timeout: use outside a runtime, or for loopback data that is
/// already there.
inline std::string read_all_raw(int fd, int timeout_ms = 5000) {
  std::string out;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) throw std::runtime_error("read_all_raw: timed out");
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) throw std::system_error(errno, std::system_category(), "recv");
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

/// A raw loopback socket address.
inline sockaddr_storage loopback_sockaddr(int family, std::uint16_t port, const char* v4 = "127.0.0.1") {
  sockaddr_storage ss{};
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    ::inet_pton(AF_INET, v4, &sin->sin_addr);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = in6addr_loopback;
  }
  return ss;
}

inline socklen_t sockaddr_len(int family) {
  return family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

/// A TCP socket bound to a loopback address and port but not listening:
/// connections to it are refused, and nobody else can listen there.
class refusing_port {
 public:
  refusing_port(int family, std::uint16_t port) {
    fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::system_category(), "socket");
    const auto ss = loopback_sockaddr(family, port);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&ss), sockaddr_len(family)) != 0) {
      const int e = errno;
      ::close(fd_);
      throw std::system_error(e, std::system_category(), "bind");
    }
  }
  ~refusing_port() { ::close(fd_); }
  refusing_port(const refusing_port&) = delete;
  refusing_port& operator=(const refusing_port&) = delete;
  std::uint16_t port() const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                         : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }

 private:
  int fd_ = -1;
};

/// A loopback TCP listener whose accept queue is full: listen(1), never
/// accepted, filled with connections until one stays unanswered. The kernel
/// drops further SYNs, so a connect to it hangs (SYN-SENT) until cancelled.
class hung_listener {
 public:
  explicit hung_listener(int family, std::uint16_t port = 0, const char* v4 = "127.0.0.1") : family_(family) {
    fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::system_category(), "socket");
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6) ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    auto ss = loopback_sockaddr(family, port, v4);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&ss), sockaddr_len(family)) != 0 || ::listen(fd_, 1) != 0) {
      const int e = errno;
      ::close(fd_);
      throw std::system_error(e, std::system_category(), "bind/listen");
    }
    socklen_t len = sizeof ss;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    for (int i = 0; i < 64; ++i) {
      const int c = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      fillers_.push_back(c);
      const int r = ::connect(c, reinterpret_cast<const sockaddr*>(&ss), sockaddr_len(family));
      if (r != 0 && errno != EINPROGRESS) throw std::system_error(errno, std::system_category(), "connect");
      pollfd p{c, POLLOUT, 0};
      if (::poll(&p, 1, 200) == 0) return;  // unanswered: the queue is full
    }
    throw std::runtime_error("hung_listener: the accept queue never filled up");
  }
  ~hung_listener() {
    for (int c : fillers_) ::close(c);
    ::close(fd_);
  }
  hung_listener(const hung_listener&) = delete;
  hung_listener& operator=(const hung_listener&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int family_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<int> fillers_;
};

/// A failed expectation inside a child process.
struct child_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define WEFT_CHILD_REQUIRE(cond)                                                                              \
  do {                                                                                                         \
    if (!(cond)) throw ::weft_net_test::child_failure(std::string(__FILE__ ":") + std::to_string(__LINE__) + \
                                                      ": requirement failed: " #cond);                        \
  } while (false)

/// The exit status that means "this scenario cannot run here".
inline constexpr int child_skipped = 77;

/// Runs fn() in a forked child process and returns its exit status: what fn
/// returned, 1 if it threw (the message goes to stderr), or 128 + signal.
/// The child is killed by SIGALRM after limit_s seconds.
inline int run_in_child(const std::function<int()>& fn, unsigned limit_s = 30) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(limit_s);
    int code = 1;
    try {
      code = fn();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
    } catch (const weft::cancelled& c) {
      std::fprintf(stderr, "child: cancelled: %s\n", c.what());
    } catch (...) {
      std::fprintf(stderr, "child: unknown exception\n");
    }
    ::_exit(code);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

/// In a child process: replaces /etc/hosts, in a private mount namespace of
/// this process only, with `content` (written to `scratch`). False if the
/// process may not do that (no CAP_SYS_ADMIN).
inline bool private_hosts_file(const std::string& scratch, const std::string& content) {
  {
    std::ofstream out(scratch);
    out << content;
  }
  if (::unshare(CLONE_NEWNS) != 0) return false;
  // Nothing mounted here may propagate back to the parent namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  return ::mount(scratch.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) == 0;
}

/// Whether private_hosts_file works here: tried once, in a child process.
/// For deciding at registration which test cases can run (before doctest
/// runs, so without its assertions).
inline bool private_hosts_file_available() {
  static const bool available = [] {
    try {
      temp_dir dir;
      const std::string scratch = dir.file("hosts");
      std::fflush(nullptr);
      const pid_t pid = ::fork();
      if (pid == 0) ::_exit(private_hosts_file(scratch, "127.0.0.1 localhost\n") ? 0 : 1);
      int status = 1;
      while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return available;
}

}  // namespace weft_net_test

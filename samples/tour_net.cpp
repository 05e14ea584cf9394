// A tour of weft's networking below the servers (stream_server and
// datagram_server have samples of their own: echo_server.cpp, udp_echo.cpp):
// names and addresses, listeners and connections made by hand, the stream
// transport's calls and socket options, what the factories throw, datagrams
// over Unix sockets, sockets made elsewhere and handed to weft, a receive
// timeout, and Asio's synchronous algorithms on a transport.
//
// Every call here parks only its task and is a checkpoint; the straight-line
// code is what a handler or a client looks like.
#include <weft/testing/manual_clock.hpp>
#include <weft/weft.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/write.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace net = weft::net;

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

// 1. Names and addresses. getaddrinfo looks names up on a resolver thread
// (numeric hosts need none), so the runtime goes on meanwhile.
void names_and_addresses() {
  const std::vector<net::address_info> found = net::getaddrinfo("localhost", "8080", AF_INET, SOCK_STREAM);
  const net::endpoint& ep = found.front().address;
  check(found.front().family == AF_INET && found.front().socktype == SOCK_STREAM, "getaddrinfo: IPv4, TCP");
  check(ep.is_ip() && !ep.is_unix() && ep.to_string() == "127.0.0.1:8080", "getaddrinfo: localhost is 127.0.0.1");
  // And back, numerically (without NI_NUMERICHOST it would look the name up).
  const auto [host, service] = net::getnameinfo(ep, NI_NUMERICHOST | NI_NUMERICSERV);
  check(host == "127.0.0.1" && service == "8080", "getnameinfo");
  std::printf("localhost:8080 is %s (%s, port %s)\n", ep.to_string().c_str(), host.c_str(), service.c_str());

  const net::endpoint v6(boost::asio::ip::make_address("::1"), 443);
  const net::endpoint path = net::endpoint::unix_path("/run/app.sock");
  check(v6.family() == AF_INET6 && v6.to_string() == "[::1]:443", "an IPv6 endpoint");
  check(path.is_unix() && path.family() == AF_UNIX && path.path() == "/run/app.sock", "a Unix endpoint");
  try {  // ports are ints: a value out of range is refused, not wrapped around
    (void)net::endpoint(boost::asio::ip::make_address("127.0.0.1"), 70000);
    check(false, "port 70000 refused");
  } catch (const std::invalid_argument&) {
  }
}

// 2. A listener and a connection by hand: accept() takes one connection.
void stream_connections() {
  // Port 0: a free port. The backlog defaults to default_backlog(), the
  // system's maximum, so a burst of connects waits instead of being refused.
  std::vector<net::stream_listener> listeners = net::create_tcp_listeners("127.0.0.1", 0);
  net::stream_listener& listener = listeners.front();
  check(net::default_backlog() >= 1 && net::default_backlog() <= 65535, "default_backlog");
  // The Asio acceptor underneath, for what weft has no call for.
  boost::asio::socket_base::reuse_address reuse;
  listener.acceptor().get_option(reuse);
  check(reuse.value(), "TCP listeners set SO_REUSEADDR");

  // The connect completes in the kernel's backlog; accept() then takes it.
  net::stream_transport client = net::create_tcp_connection("127.0.0.1", listener.local_address().port());
  net::stream_transport server = listener.accept();
  check(client.family() == AF_INET, "an IPv4 connection");
  check(server.peer_address() == client.local_address() && client.peer_address() == listener.local_address(),
        "each side sees the other's address");

  // TCP_NODELAY is on for connected and accepted sockets; keep-alive is off.
  check(client.nodelay() && server.nodelay() && !client.keepalive(), "default socket options");
  client.set_keepalive(true);  // notice a peer that vanished on a long-lived idle connection
  server.set_nodelay(false);   // Nagle back on, for a bulk sender
  check(client.keepalive() && !server.nodelay(), "socket options set");

  // Several buffers in one sendmsg, without joining them into one copy.
  const std::array<std::string_view, 3> request = {"GET /", "index.html", " HTTP/1.0\r\n\r\n"};
  client.send_all_from_iterable(request);
  client.send_eof();  // half-close: the server reads end of stream and can still answer
  std::string got;
  // recv(n) returns at most max_recv_size (64 KiB) bytes, whatever has arrived.
  for (std::string chunk; !(chunk = server.recv(net::max_recv_size)).empty();) got += chunk;
  check(got == "GET /index.html HTTP/1.0\r\n\r\n", "the gathered request arrives whole");
  server.send_all("HTTP/1.0 204 No Content\r\n\r\n");
  server.aclose();  // graceful: the client reads the answer, then end of stream
  check(server.is_closing() && !client.is_closing(), "is_closing");
  check(client.recv(net::max_recv_size) == "HTTP/1.0 204 No Content\r\n\r\n" && client.recv(1).empty(),
        "the answer after a half-close, then end of stream");
  client.aclose();

  // Library code written against weft::async_backend reaches it from any weft object.
  check(client.backend().name() == "weft" && &listener.backend() == &weft::current_backend(), "backend()");
  listener.aclose();
  check(listener.is_closing(), "the listener is closed");
}

// 3. What the factories throw: connect_error and bind_error, both an
// address_error (a std::system_error) listing every address tried.
void factory_errors() {
  std::vector<net::stream_listener> busy = net::create_tcp_listeners("127.0.0.1", 0);
  const int port = busy.front().local_address().port();
  try {  // the port is in use
    (void)net::create_tcp_listeners("127.0.0.1", port);
    check(false, "a port in use is refused");
  } catch (const net::bind_error& e) {
    check(e.code() == std::errc::address_in_use && e.attempts().size() == 1, "bind_error: address in use");
    std::printf("bind_error: %s\n", e.what());
  }
  busy.front().aclose();  // nobody listens on `port` now
  try {
    (void)net::create_tcp_connection("127.0.0.1", port);
    check(false, "a closed port refuses");
  } catch (const net::connect_error& e) {
    const net::address_attempt& attempt = e.attempts().front();
    check(e.code() == std::errc::connection_refused && attempt.address.port() == port, "connect_error: refused");
    std::printf("connect_error: %s\n", e.what());
  }
  try {  // 192.0.2.1 (TEST-NET-1) is not an address of this host
    (void)net::create_tcp_listeners("192.0.2.1", 0);
    check(false, "a foreign address cannot be bound");
  } catch (const net::address_error& e) {  // the base: one catch for every factory
    check(dynamic_cast<const net::bind_error*>(&e) != nullptr && e.code() == std::errc::address_not_available,
          "bind_error: address not available");
    // Each attempt keeps its own exception, which says which step failed.
    try {
      std::rethrow_exception(e.attempts().front().exception);
    } catch (const std::system_error& step) {
      check(std::string(step.what()).find("bind") != std::string::npos, "the attempt names its step");
    }
  }
}

// 4. Datagrams over Unix sockets: a listener serves many peers, an endpoint
// talks to one.
void unix_datagrams(const std::string& dir) {
  const std::string server_path = dir + "/server.sock", client_path = dir + "/client.sock";
  net::datagram_listener server = net::create_unix_datagram_listener(server_path, 0600);
  // The client binds a path of its own: without one the server could not answer.
  net::datagram_transport client = net::create_unix_datagram_endpoint(server_path, client_path);
  check(client.family() == AF_UNIX && client.peer_address().path() == server_path, "a connected Unix endpoint");

  client.send("ping");
  const auto [datagram, from] = server.recv_from();
  check(datagram == "ping" && from.is_unix() && from.path() == client_path, "recv_from: the datagram and its sender");
  server.send_to("pong", from);
  check(client.recv() == "pong", "the answer");

  // Into the caller's buffer, no allocation; max_datagram_size holds any datagram.
  std::vector<char> buffer(net::max_datagram_size);
  client.send(std::string(1000, 'x'));
  const auto [size, sender] = server.recv_from_into(std::span<char>(buffer));
  check(size == 1000 && sender == from, "recv_from_into");

  check(&client.backend() == &server.backend(), "one backend");
  client.aclose();
  server.aclose();
  check(client.is_closing() && server.is_closing(), "both closed");
  try {  // a path with no socket behind it
    (void)net::create_unix_datagram_endpoint(dir + "/nobody.sock");
    check(false, "nobody at the path");
  } catch (const net::connect_error& e) {
    check(e.code() == std::errc::no_such_file_or_directory, "connect_error: no socket file");
  }
}

// 5. Sockets made elsewhere, handed to weft (which then owns them).
void udp_socket_from_syscalls() {
  std::vector<net::datagram_listener> udp = net::create_udp_listeners("127.0.0.1", 0);
  net::datagram_listener& service = udp.front();
  const net::endpoint to = service.local_address();
  // An endpoint is a sockaddr for the system calls: data() and size() to
  // pass one, capacity() and resize() to have the kernel fill one in.
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  check(fd >= 0 && ::connect(fd, to.data(), static_cast<socklen_t>(to.size())) == 0, "a connected raw UDP socket");
  net::endpoint local;
  socklen_t length = static_cast<socklen_t>(net::endpoint::capacity());
  check(::getsockname(fd, local.data(), &length) == 0, "getsockname");
  local.resize(length);

  net::datagram_transport conn = net::wrap_connected_datagram_socket(fd);
  check(conn.local_address() == local && conn.peer_address() == to, "the wrapped socket's addresses");
  conn.send("hello");
  const auto [datagram, from] = service.recv_from();
  check(datagram == "hello" && from == local, "a datagram from the wrapped socket");
  conn.aclose();
  service.aclose();
}

// A connected pair of stream sockets, as a parent process shares with a child.
std::pair<net::stream_transport, net::stream_transport> stream_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::system_error(errno, std::generic_category(), "socketpair");
  return {net::wrap_stream_socket(fds[0]), net::wrap_stream_socket(fds[1])};
}

// 6. A receive timeout: a receive that waits that long for nothing fails
// with timed_out; nothing is lost, and the transport stays usable. The clock
// runs only while a receive waits (an idle timeout, not a deadline).
void receive_timeout(net::stream_transport& a, net::stream_transport& b) {
  b.set_recv_timeout(30s);
  check(b.recv_timeout() == weft::duration(30s), "recv_timeout");
  const weft::time_point start = weft::current_time();
  try {
    (void)b.recv(100);
    check(false, "the receive times out");
  } catch (const std::system_error& e) {
    check(e.code() == std::errc::timed_out, "timed_out");
  }
  const double waited = (weft::current_time() - start).count();
  check(waited >= 30 && waited < 31, "it waited 30 s");
  a.send_all("late, but fine");
  check(b.recv(100) == "late, but fine", "the transport still works");
  b.set_recv_timeout(std::nullopt);  // wait without limit again
  check(!b.recv_timeout(), "no timeout");
  std::printf("the receive gave up after %.0f s of (virtual) waiting\n", waited);
}

// 7. Asio's synchronous algorithms on a transport, through sync_stream: a
// length-prefixed message format written once for any Asio sync stream.
template <class SyncWriteStream>
void write_message(SyncWriteStream& stream, std::string_view body) {
  const std::uint32_t size = htonl(static_cast<std::uint32_t>(body.size()));
  const std::array<boost::asio::const_buffer, 2> frame = {boost::asio::buffer(&size, sizeof size),
                                                          boost::asio::buffer(body.data(), body.size())};
  boost::asio::write(stream, frame);  // one write_some: one sendmsg for both buffers
}

template <class SyncReadStream>
std::string read_message(SyncReadStream& stream) {
  std::uint32_t size = 0;
  boost::asio::read(stream, boost::asio::buffer(&size, sizeof size));
  std::string body(ntohl(size), '\0');
  boost::asio::read(stream, boost::asio::buffer(body));
  return body;
}

void asio_algorithms(net::stream_transport& a, net::stream_transport& b) {
  net::sync_stream out(a), in(b);
  const std::string big(1 << 20, 'm');  // more than the socket buffer: the writer parks until the reader reads
  std::vector<std::string> got;
  weft::open_task_group([&](weft::task_group& tg) {
    tg.start_soon([&] {
      write_message(out, big);
      write_message(out, "bye");
      // write_some writes every byte (parking while the buffer is full), unlike a socket's.
      check(out.write_some(boost::asio::buffer("!", 1)) == 1, "write_some");
      a.send_eof();
    });
    got.push_back(read_message(in));
    got.push_back(read_message(in));
  });
  check(got.size() == 2 && got[0] == big && got[1] == "bye", "two messages through asio::read/write");
  char last[2];
  boost::system::error_code ec;
  const std::size_t n = boost::asio::read(in, boost::asio::buffer(last), ec);  // one byte, then end of stream
  check(n == 1 && last[0] == '!' && ec == boost::asio::error::eof, "end of stream is asio::error::eof");
  // For Asio objects that need them: the runtime's executor, and the view as
  // its own lowest layer (asio::ssl::stream<sync_stream> asks for it).
  check(in.get_executor() == boost::asio::any_io_executor(b.socket().get_executor()), "get_executor");
  check(&in.lowest_layer().transport() == &b, "lowest_layer");
  a.aclose();
  b.aclose();
}

}  // namespace

int main() {
  char dir[] = "/tmp/weft-tour-net-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return 1;
  // A manual clock with autojump: when every task waits and no I/O is
  // ready, time jumps to the next deadline, so the 30 s receive timeout
  // takes no real time. A real program leaves options.clock unset.
  weft::run_options options;
  options.clock = std::make_shared<weft::testing::manual_clock>(weft::time_point{}, true);
  try {
    weft::run(options, [&] {
      names_and_addresses();
      stream_connections();
      factory_errors();
      unix_datagrams(dir);
      udp_socket_from_syscalls();
      auto [a, b] = stream_pair();
      receive_timeout(a, b);
      asio_algorithms(a, b);
    });
  } catch (const std::exception& e) {
    check(false, e.what());
  }
  std::filesystem::remove_all(dir);
  if (failures != 0) return 1;
  std::printf("tour_net: ok\n");
}

// Networking benchmarks: weft::net transports against plain Boost.Asio
// callbacks, measured side by side in one run. Loopback only; both sides
// carry identical traffic and check every reply against what they sent.
// Medians of BENCH_REPS measurements are reported; each measurement of the
// time benchmarks is made of 10 runs of each side, alternating weft and the
// peer (and which of them starts), each run on a fresh thread, runtime or
// io_context and fresh connections, so that a change of load on the machine
// weighs on both alike.
//
//   tcp_pingpong  one thread, client and server in one process: 32-byte
//                 messages, 100,000 timed round trips per measurement (10
//                 runs of 10,000, each after 1,000 untimed ones); TCP_NODELAY
//                 on both ends. weft: a server task (accept, recv_into until
//                 32 bytes, send_all) and a client task (send_all, recv_into
//                 until 32 bytes) in one weft::run. Peer: asio::async_read /
//                 async_write chains on one io_context. Per round trip; the
//                 line also gives the CPU time per round trip of the one
//                 thread (less disturbed by other load than wall time).
//   tcp_echo_100  100 connections, 1 KiB messages, 1,000 round trips per
//                 connection and measurement (10 runs of 100); the load comes
//                 from one Asio-callback client on its own thread, the same
//                 code for both servers. weft: create_tcp_listeners + serve
//                 with one handler task per connection echoing what it
//                 receives. Peer: an Asio-callback echo server
//                 (async_read_some + async_write). Client time per round
//                 trip; the line also gives the server thread's CPU time per
//                 round trip.
//   udp_pingpong  as tcp_pingpong over UDP (32-byte datagrams). weft: a
//                 server task on a datagram_listener (create_udp_listeners,
//                 recv_from_into + send_to) and a client task on a connected
//                 datagram_transport (create_udp_endpoint, send +
//                 recv_into). Peer: async_receive_from / async_send_to on
//                 the server socket, async_send / async_receive on a
//                 connected client socket. 64 KiB receive buffers on both.
//   conn_memory   RSS per idle TCP connection, 10,000 connections (fewer if
//                 RLIMIT_NOFILE is too low; the output says so), each side in
//                 its own forked child. In both children the same client
//                 code (a thread doing blocking connect()s) opens the
//                 connections while the server accepts; RSS is read before
//                 the client starts and once every connection is accepted
//                 and idle. weft: one task per connection (serve), 16 KiB
//                 stacks, parked in recv_into with a 64-byte buffer. Peer:
//                 one pending async_read_some per connection into a 64-byte
//                 buffer of its session.
//
// Usage: bench_net [name...]   (default: all)
#include "bench_util.hpp"

#include <weft/net.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>
#include <weft/weft.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using error_code = boost::system::error_code;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "bench_net: %s\n", what);
  std::fflush(stderr);
  std::_Exit(1);
}

const asio::ip::address_v4 loopback = asio::ip::make_address_v4("127.0.0.1");

// Writes the round number into the head of a message, so that every reply
// must be the echo of this round's message.
template <std::size_t N>
void stamp(std::array<char, N>& msg, int round) {
  static_assert(N >= sizeof(int));
  std::memcpy(msg.data(), &round, sizeof round);
}

template <std::size_t N>
std::array<char, N> pattern(int seed) {
  std::array<char, N> a{};
  for (std::size_t i = 0; i < N; ++i) a[i] = static_cast<char>('a' + (i + static_cast<std::size_t>(seed)) % 26);
  return a;
}

template <std::size_t N>
std::string_view view(const std::array<char, N>& a) {
  return {a.data(), a.size()};
}

/// Short runs, finely interleaved (bench::interleaved): a burst of load
/// elsewhere on the machine hits both sides alike.
constexpr int chunks = 10;

using bench::measured;
using bench::per_op_medians;
using bench::stopwatch;
using bench::thread_cpu_seconds;
using bench::timing;

/// Runs each side BENCH_REPS times (each in its own process, see
/// conn_memory), alternating which goes first; returns the medians.
template <class W, class P>
std::pair<double, double> side_by_side(W&& weft_side, P&& peer_side) {
  std::vector<double> w, p;
  for (int r = 0; r < bench::reps(); ++r) {
    if (r % 2 == 0) {
      w.push_back(weft_side());
      p.push_back(peer_side());
    } else {
      p.push_back(peer_side());
      w.push_back(weft_side());
    }
  }
  return {bench::median(w), bench::median(p)};
}

/// Reports a single-threaded ping-pong: wall time per round trip, with the
/// CPU time per round trip of both sides as extra information.
void report_pingpong(const char* name, const per_op_medians& w, const per_op_medians& p, const char* what) {
  char extra[240];
  std::snprintf(extra, sizeof extra, "cpu_weft=%.4gus cpu_asio_callbacks=%.4gus cpu_ratio=%.3f %s", w.cpu_us, p.cpu_us,
                p.cpu_us > 0 ? w.cpu_us / p.cpu_us : 0.0, what);
  bench::report(name, w.wall_us, "asio_callbacks", p.wall_us, "us", extra);
}

// --- tcp_pingpong -----------------------------------------------------------------

constexpr std::size_t ping_size = 32;
constexpr int ping_rounds = 100'000;  // per measurement, over `chunks` runs
constexpr int ping_run_rounds = ping_rounds / chunks;
constexpr int ping_warmup = 1'000;  // untimed, at the start of each run
using ping_msg = std::array<char, ping_size>;

/// recv_into until buf is full; false at end of stream.
bool recv_exactly(weft::net::stream_transport& t, char* p, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const std::size_t r = t.recv_into(std::span<char>(p + got, n - got));
    if (r == 0) return false;
    got += r;
  }
  return true;
}

timing weft_tcp_pingpong() {
  constexpr int rounds = ping_run_rounds;
  timing result;
  bench::on_thread([&] {
    result = weft::run([] {
      auto listeners = weft::net::create_tcp_listeners("127.0.0.1", 0);
      weft::net::stream_listener& listener = listeners.front();
      const std::uint16_t port = listener.local_address().port();
      stopwatch watch;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          weft::net::stream_transport t = listener.accept();
          t.set_nodelay(true);
          ping_msg buf{};
          while (recv_exactly(t, buf.data(), buf.size())) t.send_all(view(buf));
        });
        tg.start_soon([&] {
          weft::net::stream_transport t = weft::net::create_tcp_connection("127.0.0.1", port);
          t.set_nodelay(true);
          ping_msg out = pattern<ping_size>(0);
          ping_msg in{};
          auto round = [&](int i) {
            stamp(out, i);
            t.send_all(view(out));
            if (!recv_exactly(t, in.data(), in.size()) || in != out) fail("tcp_pingpong (weft): bad reply");
          };
          for (int i = 0; i < ping_warmup; ++i) round(i);
          watch.start();
          for (int i = 0; i < rounds; ++i) round(i);
          watch.stop();
          t.aclose();  // the server reads end of stream and returns
        });
      });
      return measured(watch, rounds);
    });
    return 0.0;
  });
  return result;
}

class asio_tcp_pingpong {
 public:
  timing run() {
    acceptor_.async_accept(server_, [this](error_code ec) {
      if (ec) fail("tcp_pingpong (asio): accept");
      server_.set_option(tcp::no_delay(true));
      server_read();
    });
    client_.async_connect(acceptor_.local_endpoint(), [this](error_code ec) {
      if (ec) fail("tcp_pingpong (asio): connect");
      client_.set_option(tcp::no_delay(true));
      client_round();
    });
    io_.run();
    return measured(watch_, ping_run_rounds);
  }

 private:
  void server_read() {
    asio::async_read(server_, asio::buffer(server_buf_), [this](error_code ec, std::size_t) {
      if (ec) return;  // end of stream: the client is done
      asio::async_write(server_, asio::buffer(server_buf_), [this](error_code ec2, std::size_t) {
        if (ec2) fail("tcp_pingpong (asio): server write");
        server_read();
      });
    });
  }

  void client_round() {
    if (round_ == ping_warmup) watch_.start();
    if (round_ == ping_warmup + ping_run_rounds) {
      watch_.stop();
      client_.close();
      return;
    }
    stamp(out_, round_ < ping_warmup ? round_ : round_ - ping_warmup);
    asio::async_write(client_, asio::buffer(out_), [this](error_code ec, std::size_t) {
      if (ec) fail("tcp_pingpong (asio): client write");
      asio::async_read(client_, asio::buffer(in_), [this](error_code ec2, std::size_t) {
        if (ec2 || in_ != out_) fail("tcp_pingpong (asio): bad reply");
        ++round_;
        client_round();
      });
    });
  }

  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_, tcp::endpoint(loopback, 0)};
  tcp::socket server_{io_};
  tcp::socket client_{io_};
  ping_msg server_buf_{};
  ping_msg out_ = pattern<ping_size>(0);
  ping_msg in_{};
  int round_ = 0;
  stopwatch watch_;
};

timing asio_tcp_pingpong_run() {
  timing result;
  bench::on_thread([&] {
    result = asio_tcp_pingpong().run();
    return 0.0;
  });
  return result;
}

void bench_tcp_pingpong() {
  auto [w, p] = bench::interleaved(chunks, weft_tcp_pingpong, asio_tcp_pingpong_run);
  report_pingpong("tcp_pingpong", w, p, "(per round trip, 32 B, 100k round trips, one thread)");
}

// --- tcp_echo_100 ------------------------------------------------------------------

constexpr int echo_conns = 100;
constexpr int echo_rounds = 1'000;  // per connection and measurement, over `chunks` runs
constexpr int echo_run_rounds = echo_rounds / chunks;
constexpr std::size_t echo_size = 1024;
constexpr std::size_t echo_buffer = 4096;  // the servers' receive buffer
using echo_msg = std::array<char, echo_size>;

/// The load generator: echo_conns connections, each doing echo_run_rounds
/// round trips of echo_size bytes (write, then read the echo back and check it).
/// Runs on the calling thread; returns the time from the first write to the
/// last reply.
class echo_client {
 public:
  double run(std::uint16_t port) {
    const tcp::endpoint server(loopback, port);
    for (int i = 0; i < echo_conns; ++i) {
      auto c = std::make_unique<conn>(io_, i);
      c->socket.connect(server);
      c->socket.set_option(tcp::no_delay(true));
      conns_.push_back(std::move(c));
    }
    active_ = echo_conns;
    start_ = bench::now_seconds();
    for (auto& c : conns_) round(*c);
    io_.run();
    return elapsed_;
  }

 private:
  struct conn {
    conn(asio::io_context& io, int seed) : socket(io), out(pattern<echo_size>(seed)) {}
    tcp::socket socket;
    echo_msg out;
    echo_msg in{};
    int done = 0;
  };

  void round(conn& c) {
    if (c.done == echo_run_rounds) {
      c.socket.close();  // the server reads end of stream
      if (--active_ == 0) elapsed_ = bench::now_seconds() - start_;
      return;
    }
    stamp(c.out, c.done);
    asio::async_write(c.socket, asio::buffer(c.out), [this, &c](error_code ec, std::size_t) {
      if (ec) fail("tcp_echo_100: client write");
      asio::async_read(c.socket, asio::buffer(c.in), [this, &c](error_code ec2, std::size_t) {
        if (ec2 || c.in != c.out) fail("tcp_echo_100: bad echo");
        ++c.done;
        round(c);
      });
    });
  }

  asio::io_context io_{1};
  std::vector<std::unique_ptr<conn>> conns_;
  int active_ = 0;
  double start_ = 0;
  double elapsed_ = 0;
};

/// Runs the server on one thread and the client on another. Returns the
/// client's time (wall) and the server thread's CPU time over its whole
/// life, setup and accepts included (cpu).
template <class Server>
timing run_echo(Server&& server) {
  std::promise<std::uint16_t> port;
  std::future<std::uint16_t> port_ready = port.get_future();
  double server_cpu = 0;
  std::thread server_thread([&] {
    ::pthread_setname_np(::pthread_self(), "echo-server");  // for profilers
    const double cpu = thread_cpu_seconds();
    server(port);
    server_cpu = thread_cpu_seconds() - cpu;
  });
  const std::uint16_t p = port_ready.get();
  double elapsed = 0;
  std::thread client_thread([&] {
    ::pthread_setname_np(::pthread_self(), "echo-client");
    elapsed = echo_client().run(p);
  });
  client_thread.join();
  server_thread.join();
  return {elapsed, server_cpu, static_cast<double>(echo_conns) * echo_run_rounds};
}

timing weft_echo() {
  return run_echo([](std::promise<std::uint16_t>& port) {
    weft::run([&] {
      auto listeners = weft::net::create_tcp_listeners("127.0.0.1", 0);
      weft::net::stream_listener& listener = listeners.front();
      port.set_value(listener.local_address().port());
      int closed = 0;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          listener.serve(
              [&](weft::net::stream_transport& t) {
                t.set_nodelay(true);
                std::array<char, echo_buffer> buf;
                for (;;) {
                  const std::size_t n = t.recv_into(std::span<char>(buf));
                  if (n == 0) break;
                  t.send_all(std::string_view(buf.data(), n));
                }
                if (++closed == echo_conns) tg.cancel();  // every client is done: stop serving
              },
              tg);
        });
      });
    });
  });
}

class asio_echo_server {
 public:
  explicit asio_echo_server(std::promise<std::uint16_t>& port) { port.set_value(acceptor_.local_endpoint().port()); }

  void run() {
    accept();
    io_.run();
  }

 private:
  struct session {
    session(asio_echo_server& s, tcp::socket sock) : server(s), socket(std::move(sock)) {}
    void read() {
      socket.async_read_some(asio::buffer(buf), [this](error_code ec, std::size_t n) {
        if (ec) return server.closed(*this);  // end of stream
        asio::async_write(socket, asio::buffer(buf.data(), n), [this](error_code ec2, std::size_t) {
          if (ec2) return server.closed(*this);
          read();
        });
      });
    }
    asio_echo_server& server;
    tcp::socket socket;
    std::array<char, echo_buffer> buf;
  };

  void accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec) return;  // the acceptor was closed
      socket.set_option(tcp::no_delay(true));
      sessions_.push_back(std::make_unique<session>(*this, std::move(socket)));
      sessions_.back()->read();
      accept();
    });
  }

  void closed(session& s) {
    s.socket.close();
    if (++closed_ == echo_conns) acceptor_.close();  // every client is done: stop serving
  }

  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_, tcp::endpoint(loopback, 0)};
  std::vector<std::unique_ptr<session>> sessions_;
  int closed_ = 0;
};

timing asio_echo() {
  return run_echo([](std::promise<std::uint16_t>& port) { asio_echo_server(port).run(); });
}

void bench_tcp_echo_100() {
  auto [w, p] = bench::interleaved(chunks, weft_echo, asio_echo);
  char extra[240];
  std::snprintf(extra, sizeof extra,
                "server_cpu_weft=%.4gus server_cpu_asio_callbacks=%.4gus cpu_ratio=%.3f (client time per round trip, "
                "%d connections x %d round trips of %zu B)",
                w.cpu_us, p.cpu_us, p.cpu_us > 0 ? w.cpu_us / p.cpu_us : 0.0, echo_conns, echo_rounds, echo_size);
  bench::report("tcp_echo_100", w.wall_us, "asio_callbacks", p.wall_us, "us", extra);
}

// --- udp_pingpong ------------------------------------------------------------------

constexpr std::size_t datagram_buffer = 65536;  // = weft::net::max_datagram_size

timing weft_udp_pingpong() {
  constexpr int rounds = ping_run_rounds;
  timing result;
  bench::on_thread([&] {
    result = weft::run([] {
      auto listeners = weft::net::create_udp_listeners("127.0.0.1", 0);
      weft::net::datagram_listener& server = listeners.front();
      const std::uint16_t port = server.local_address().port();
      stopwatch watch;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          std::vector<char> buf(datagram_buffer);  // as the peer's
          for (int i = 0; i < ping_warmup + rounds; ++i) {
            auto [n, from] = server.recv_from_into(std::span<char>(buf));
            server.send_to(std::string_view(buf.data(), n), from);
          }
        });
        tg.start_soon([&] {
          weft::net::datagram_transport t =
              weft::net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), port));
          ping_msg out = pattern<ping_size>(0);
          std::vector<char> in(datagram_buffer);
          auto round = [&](int i) {
            stamp(out, i);
            t.send(view(out));
            const std::size_t n = t.recv_into(std::span<char>(in));
            if (std::string_view(in.data(), n) != view(out)) fail("udp_pingpong (weft): bad reply");
          };
          for (int i = 0; i < ping_warmup; ++i) round(i);
          watch.start();
          for (int i = 0; i < rounds; ++i) round(i);
          watch.stop();
        });
      });
      return measured(watch, rounds);
    });
    return 0.0;
  });
  return result;
}

class asio_udp_pingpong {
 public:
  timing run() {
    client_.connect(server_.local_endpoint());
    server_receive();
    client_round();
    io_.run();
    return measured(watch_, ping_run_rounds);
  }

 private:
  void server_receive() {
    if (served_ == ping_warmup + ping_run_rounds) return;
    server_.async_receive_from(asio::buffer(server_buf_), from_, [this](error_code ec, std::size_t n) {
      if (ec) fail("udp_pingpong (asio): server receive");
      server_.async_send_to(asio::buffer(server_buf_.data(), n), from_, [this](error_code ec2, std::size_t) {
        if (ec2) fail("udp_pingpong (asio): server send");
        ++served_;
        server_receive();
      });
    });
  }

  void client_round() {
    if (round_ == ping_warmup) watch_.start();
    if (round_ == ping_warmup + ping_run_rounds) {
      watch_.stop();
      return;
    }
    stamp(out_, round_ < ping_warmup ? round_ : round_ - ping_warmup);
    client_.async_send(asio::buffer(out_), [this](error_code ec, std::size_t) {
      if (ec) fail("udp_pingpong (asio): client send");
      client_.async_receive(asio::buffer(client_buf_), [this](error_code ec2, std::size_t n) {
        if (ec2 || std::string_view(client_buf_.data(), n) != view(out_)) fail("udp_pingpong (asio): bad reply");
        ++round_;
        client_round();
      });
    });
  }

  asio::io_context io_{1};
  udp::socket server_{io_, udp::endpoint(loopback, 0)};
  udp::socket client_{io_, udp::endpoint(loopback, 0)};
  udp::endpoint from_;
  std::vector<char> server_buf_ = std::vector<char>(datagram_buffer);
  std::vector<char> client_buf_ = std::vector<char>(datagram_buffer);
  ping_msg out_ = pattern<ping_size>(0);
  int round_ = 0;
  int served_ = 0;
  stopwatch watch_;
};

timing asio_udp_pingpong_run() {
  timing result;
  bench::on_thread([&] {
    result = asio_udp_pingpong().run();
    return 0.0;
  });
  return result;
}

void bench_udp_pingpong() {
  auto [w, p] = bench::interleaved(chunks, weft_udp_pingpong, asio_udp_pingpong_run);
  report_pingpong("udp_pingpong", w, p, "(per round trip, 32 B, 100k round trips, one thread)");
}

// --- conn_memory -------------------------------------------------------------------

constexpr int memory_conns_wanted = 10'000;
constexpr std::size_t memory_stack = 16 * 1024;
constexpr std::size_t memory_buffer = 64;
constexpr int memory_backlog = 4096;
constexpr rlim_t spare_fds = 100;

/// Connections to open: two descriptors each (client and server side, in
/// one process), within the hard RLIMIT_NOFILE.
int memory_conns() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) fail("getrlimit");
  const rlim_t need = 2 * static_cast<rlim_t>(memory_conns_wanted) + spare_fds;
  if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) return memory_conns_wanted;
  if (rl.rlim_max < spare_fds + 200) fail("conn_memory: RLIMIT_NOFILE hard limit too low");
  return static_cast<int>((rl.rlim_max - spare_fds) / 2);
}

void raise_nofile_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) fail("getrlimit");
  rl.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) fail("setrlimit");
}

/// The client side of conn_memory, identical for both servers: a thread
/// that opens n blocking TCP connections to 127.0.0.1:port, one after the
/// other, while the server accepts them.
class client_sockets {
 public:
  explicit client_sockets(int n) : n_(n) { fds_.reserve(static_cast<std::size_t>(n)); }
  ~client_sockets() {
    if (thread_.joinable()) thread_.join();
    for (int fd : fds_) ::close(fd);
  }

  void start(std::uint16_t port) {
    thread_ = std::thread([this, port] {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(port);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      for (int i = 0; i < n_; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) fail("conn_memory: client socket()");
        int r;
        do r = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        while (r != 0 && errno == EINTR);
        if (r != 0) fail("conn_memory: client connect()");
        fds_.push_back(fd);
      }
    });
  }
  void join() { thread_.join(); }

 private:
  int n_;
  std::vector<int> fds_;
  std::thread thread_;
};

double weft_conn_memory_bytes(int n) {
  return bench::in_child([n] {
           raise_nofile_limit();
           weft::run_options options;
           options.stack_size = memory_stack;
           double per_conn = 0;
           weft::run(options, [&] {
             auto listeners = weft::net::create_tcp_listeners("127.0.0.1", 0, memory_backlog);
             weft::net::stream_listener& listener = listeners.front();
             client_sockets clients(n);
             int accepted = 0;
             weft::event all_accepted;
             weft::open_task_group([&](weft::task_group& tg) {
               const double before = bench::rss_bytes();
               clients.start(listener.local_address().port());
               tg.start_soon([&] {
                 listener.serve(
                     [&](weft::net::stream_transport& t) {
                       if (++accepted == n) all_accepted.set();
                       std::array<char, memory_buffer> buf;
                       while (t.recv_into(std::span<char>(buf)) > 0) {
                       }
                     },
                     tg);
               });
               all_accepted.wait();
               weft::testing::wait_all_tasks_blocked();  // every handler is parked in recv_into
               clients.join();
               per_conn = (bench::rss_bytes() - before) / n;
               tg.cancel();
             });
           });
           return std::vector<double>{per_conn};
         })
      .at(0);
}

class asio_idle_server {
 public:
  explicit asio_idle_server(int n) : n_(n), clients_(n) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(tcp::endpoint(loopback, 0));
    acceptor_.listen(memory_backlog);
  }

  double run() {
    before_ = bench::rss_bytes();
    clients_.start(acceptor_.local_endpoint().port());
    accept();
    io_.run();
    return per_conn_;
  }

 private:
  struct session {
    explicit session(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::array<char, memory_buffer> buf;
  };

  static void read(std::shared_ptr<session> s) {
    session& ref = *s;
    ref.socket.async_read_some(asio::buffer(ref.buf), [s = std::move(s)](error_code ec, std::size_t) mutable {
      if (!ec) read(std::move(s));
    });
  }

  void accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec) fail("conn_memory (asio): accept");
      read(std::make_shared<session>(std::move(socket)));
      if (++accepted_ < n_) return accept();
      // Every connection is accepted and has its read pending.
      clients_.join();
      per_conn_ = (bench::rss_bytes() - before_) / n_;
      acceptor_.close();
      io_.stop();
    });
  }

  int n_;
  client_sockets clients_;
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  int accepted_ = 0;
  double before_ = 0;
  double per_conn_ = 0;
};

double asio_conn_memory_bytes(int n) {
  return bench::in_child([n] {
           raise_nofile_limit();
           return std::vector<double>{asio_idle_server(n).run()};
         })
      .at(0);
}

void bench_conn_memory() {
  const int n = memory_conns();
  auto [w, p] = side_by_side([n] { return weft_conn_memory_bytes(n) / 1024.0; },
                             [n] { return asio_conn_memory_bytes(n) / 1024.0; });
  char extra[240];
  if (n < memory_conns_wanted) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    std::snprintf(extra, sizeof extra,
                  "(per idle connection, %d connections: scaled down from %d, the RLIMIT_NOFILE hard limit %llu "
                  "allows 2 fds per connection + %llu spare; weft: 16 KiB stacks, %s)",
                  n, memory_conns_wanted, static_cast<unsigned long long>(rl.rlim_max),
                  static_cast<unsigned long long>(spare_fds), w <= 16.0 ? "bar <= 16 KiB holds" : "bar <= 16 KiB MISSED");
  } else {
    std::snprintf(extra, sizeof extra, "(per idle connection, %d connections; weft: 16 KiB stacks, %s)", n,
                  w <= 16.0 ? "bar <= 16 KiB holds" : "bar <= 16 KiB MISSED");
  }
  bench::report("conn_memory", w, "asio_callbacks", p, "KiB", extra);
}

constexpr bench::entry benches[] = {
    {"tcp_pingpong", bench_tcp_pingpong},
    {"tcp_echo_100", bench_tcp_echo_100},
    {"udp_pingpong", bench_udp_pingpong},
    {"conn_memory", bench_conn_memory},
};

}  // namespace

int main(int argc, char** argv) { return bench::main_of("bench_net", benches, argc, argv); }

// HTTP benchmarks: weft serving HTTP/1.1 with Boost.Beast's synchronous
// algorithms against Boost.Beast on asio::awaitable coroutines, under load
// from the external generator wrk.
//
// Both servers run on one thread, in this process, on 127.0.0.1 (a free
// port), listen backlog 4096, TCP_NODELAY on accepted connections, and do
// the same work per request: Beast parses it into an
// http::request<http::string_body>, the answer is 200 OK with the headers
// Server, Content-Type: text/plain, Content-Length and the 16-byte body
// "hello from weft\n", keep-alive honoured (the same response code for both).
//   weft             as samples/http_server.cpp: a weft::net::stream_server
//                    on create_tcp_listeners inside weft::run on a thread of
//                    its own; one task per connection running http::read /
//                    http::write on a weft::net::sync_stream, a flat_buffer
//                    kept across the connection's requests. Stopped by
//                    shutdown(0s), posted from the main thread to the
//                    runtime's io_context.
//   beast_awaitable  an asio::io_context (concurrency hint 1) run on a thread
//                    of its own; an acceptor coroutine and one
//                    asio::awaitable<void> per connection (co_spawn,
//                    detached) looping co_await http::async_read /
//                    http::async_write. Stopped by closing the acceptor and
//                    the connections left, posted to its io_context.
//
//   http_keepalive_100   wrk -t1 -c100 -d<D>s --latency
//   http_keepalive_1000  wrk -t1 -c1000 -d<D>s --latency
//
// For each, BENCH_REPS repetitions (default 5), each a fresh server of each
// side, alternating which side runs first (weft, beast, beast, weft, ...).
// Reported: the time per request, 1e6 / (median requests/sec), in µs, and
// the medians of requests/sec and of the 99th latency percentile. D is 3
// seconds, HTTP_BENCH_SECONDS overrides. A run where wrk saw errors
// (socket errors, non-2xx responses) prints a warning; errors on more than
// 1% of the requests fail the program. Each run's figures go to stderr,
// with the CPU time the server's thread used per request (less disturbed by
// other load on the machine than the request rate).
//
// Usage: bench_http [name...]   (default: all)
#include "bench_util.hpp"

#include <weft/lowlevel/park.hpp>
#include <weft/net.hpp>
#include <weft/net/server.hpp>
#include <weft/net/sync_stream.hpp>
#include <weft/weft.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

extern char** environ;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using error_code = boost::system::error_code;
using namespace std::chrono_literals;

constexpr int listen_backlog = 4096;
constexpr auto stop_timeout = 10s;  // a server that has not stopped by then fails the program

[[noreturn]] void fail(const std::string& what) {
  std::printf("FAILED http_bench: %s\n", what.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "FAILED http_bench: %s\n", what.c_str());
  // Server threads may still run: leave without unwinding them.
  std::_Exit(1);
}

void raise_nofile_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) fail("getrlimit: " + std::string(std::strerror(errno)));
  rl.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) fail("setrlimit: " + std::string(std::strerror(errno)));
}

/// CPU time (user + system) thread t has used so far, in seconds.
double thread_cpu_seconds(std::thread& t) {
  clockid_t id{};
  timespec ts{};
  if (::pthread_getcpuclockid(t.native_handle(), &id) != 0 || ::clock_gettime(id, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int run_seconds() {
  const char* s = std::getenv("HTTP_BENCH_SECONDS");
  const int n = s ? std::atoi(s) : 3;
  return n > 0 ? n : 3;
}

// --- the handler work, the same for both servers --------------------------------------

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

response make_response(const request& req) {
  response res(http::status::ok, req.version());
  res.set(http::field::server, "weft");
  res.set(http::field::content_type, "text/plain");
  res.body() = "hello from weft\n";
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  return res;
}

// --- weft -----------------------------------------------------------------------------

void weft_connection(weft::net::stream_transport& conn) {
  weft::net::sync_stream stream(conn);
  beast::flat_buffer buffer;
  for (;;) {
    request req;
    error_code ec;
    http::read(stream, buffer, req, ec);
    if (ec) return;  // end of stream, or a connection error
    response res = make_response(req);
    http::write(stream, res, ec);
    if (ec || !res.keep_alive()) return;
  }
}

/// A weft HTTP server on a thread of its own, from construction to stop().
class weft_http_server {
 public:
  weft_http_server() {
    auto ready_future = ready_.get_future();
    done_ = done_promise_.get_future();
    thread_ = std::thread([this] {
      bool started = false;
      try {
        weft::run([&] {
          weft::net::stream_server server(weft::net::create_tcp_listeners("127.0.0.1", 0, listen_backlog));
          port_ = server.local_addresses().front().port();
          io_ = &weft::lowlevel::io_context();
          server_ = &server;
          started = true;
          ready_.set_value();
          server.serve(weft_connection);
          stats_ = server.stats();
        });
        done_promise_.set_value();
      } catch (...) {
        if (!started) ready_.set_exception(std::current_exception());
        done_promise_.set_exception(std::current_exception());
      }
    });
    try {
      ready_future.get();
    } catch (const std::exception& e) {
      thread_.join();
      fail(std::string("the weft server did not start: ") + e.what());
    }
  }
  weft_http_server(const weft_http_server&) = delete;
  weft_http_server& operator=(const weft_http_server&) = delete;

  std::uint16_t port() const { return port_; }
  /// CPU time (user + system) the server's thread has used so far, in seconds.
  double cpu_seconds() { return thread_cpu_seconds(thread_); }

  /// Shuts the server down (no grace) from this thread; fails the program
  /// if it does not stop in time or its runtime ends with an exception.
  void stop() {
    asio::post(*io_, [this] { server_->shutdown(0s); });
    if (done_.wait_for(stop_timeout) != std::future_status::ready) fail("the weft server did not stop within 10 s");
    thread_.join();
    try {
      done_.get();
    } catch (const std::exception& e) {
      fail(std::string("the weft server ended with an exception: ") + e.what());
    }
    if (stats_.active != 0) fail("the weft server stopped with handlers still running");
    if (stats_.handler_errors != 0)
      std::fprintf(stderr, "WARNING http_bench: the weft server counted %llu handler errors\n",
                   static_cast<unsigned long long>(stats_.handler_errors));
  }

 private:
  std::thread thread_;
  std::promise<void> ready_;
  std::promise<void> done_promise_;
  std::future<void> done_;
  std::uint16_t port_ = 0;
  asio::io_context* io_ = nullptr;
  weft::net::stream_server* server_ = nullptr;
  weft::net::server_stats stats_;
};

// --- Boost.Beast on asio::awaitable ---------------------------------------------------

/// A Beast HTTP server on asio::awaitable coroutines, one io_context on a
/// thread of its own, from construction to stop().
class beast_http_server {
 public:
  beast_http_server() {
    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(listen_backlog);
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    std::packaged_task<void()> run([this] { io_.run(); });
    done_ = run.get_future();
    thread_ = std::thread(std::move(run));
  }
  beast_http_server(const beast_http_server&) = delete;
  beast_http_server& operator=(const beast_http_server&) = delete;

  std::uint16_t port() const { return port_; }
  /// CPU time (user + system) the server's thread has used so far, in seconds.
  double cpu_seconds() { return thread_cpu_seconds(thread_); }

  /// Closes the acceptor and every connection left; io_context::run()
  /// returns once every coroutine has ended. Fails the program if that does
  /// not happen in time.
  void stop() {
    asio::post(io_, [this] {
      error_code ignored;
      acceptor_.close(ignored);
      for (tcp::socket* s : live_) s->close(ignored);
    });
    if (done_.wait_for(stop_timeout) != std::future_status::ready) fail("the beast server did not stop within 10 s");
    thread_.join();
    try {
      done_.get();
    } catch (const std::exception& e) {
      fail(std::string("the beast server ended with an exception: ") + e.what());
    }
    if (!live_.empty()) fail("the beast server stopped with connections still open");
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!acceptor_.is_open() || ec == asio::error::operation_aborted) co_return;
        std::fprintf(stderr, "WARNING http_bench: beast accept: %s\n", ec.message().c_str());
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    live_.insert(&socket);
    beast::flat_buffer buffer;
    try {
      for (;;) {
        request req;
        co_await http::async_read(socket, buffer, req, asio::use_awaitable);
        response res = make_response(req);
        co_await http::async_write(socket, res, asio::use_awaitable);
        if (!res.keep_alive()) break;
      }
    } catch (const boost::system::system_error&) {
      // end of stream, or a connection error: the connection ends
    }
    live_.erase(&socket);
  }

  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  std::unordered_set<tcp::socket*> live_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::future<void> done_;
};

// --- wrk ------------------------------------------------------------------------------

struct wrk_result {
  double requests_per_second = 0;
  double p99_ms = 0;
  double requests = 0;
  double non_2xx = 0;
  double socket_errors = 0;  // connect + read + write + timeout
  std::string socket_errors_line;
};

/// A wrk duration ("123.45us", "1.20ms", "2.00s", "1.00m") in milliseconds; < 0 if unparsable.
double to_ms(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str()) return -1;
  const std::string unit(end);
  if (unit == "us") return v / 1000;
  if (unit == "ms") return v;
  if (unit == "s") return v * 1000;
  if (unit == "m") return v * 60'000;
  if (unit == "h") return v * 3'600'000;
  return -1;
}

/// Runs wrk against port with c connections for `seconds`; returns what it reported.
wrk_result run_wrk(std::uint16_t port, int connections, int seconds) {
  const std::string c = "-c" + std::to_string(connections);
  const std::string d = "-d" + std::to_string(seconds) + "s";
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  const char* argv[] = {"wrk", "-t1", c.c_str(), d.c_str(), "--latency", url.c_str(), nullptr};

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe2: " + std::string(std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // dup2 clears FD_CLOEXEC on stdout
  // The servers' sockets (the listener above all) are not wrk's business.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, "/usr/bin/wrk", &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) fail("cannot start /usr/bin/wrk: " + std::string(std::strerror(rc)));

  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail("wrk failed (status " + std::to_string(status) + "), its output:\n" + out);

  wrk_result r;
  bool have_rps = false, have_p99 = false, have_requests = false;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first == "Requests/sec:") {
      have_rps = static_cast<bool>(words >> r.requests_per_second);
    } else if (first == "99%") {
      std::string value;
      words >> value;
      r.p99_ms = to_ms(value);
      have_p99 = r.p99_ms >= 0;
    } else if (line.find(" requests in ") != std::string::npos) {
      have_requests = static_cast<bool>(std::istringstream(first) >> r.requests);
    } else if (first == "Non-2xx") {
      // "Non-2xx or 3xx responses: N"
      const auto colon = line.find(':');
      if (colon != std::string::npos) r.non_2xx = std::atof(line.c_str() + colon + 1);
    } else if (first == "Socket") {
      // "Socket errors: connect N, read N, write N, timeout N"
      r.socket_errors_line = line.substr(line.find_first_not_of(' '));
      unsigned long long conn = 0, rd = 0, wr = 0, to = 0;
      if (std::sscanf(r.socket_errors_line.c_str(), "Socket errors: connect %llu, read %llu, write %llu, timeout %llu",
                      &conn, &rd, &wr, &to) == 4)
        r.socket_errors = static_cast<double>(conn + rd + wr + to);
    }
  }
  if (!have_rps || !have_p99 || !have_requests || r.requests <= 0)
    fail("cannot read wrk's output:\n" + out);
  return r;
}

// --- the comparison -------------------------------------------------------------------

/// One run: a fresh server of the given side under wrk, then stopped.
template <class Server>
wrk_result measure(const char* side, int connections, int seconds) {
  Server server;
  const double cpu_before = server.cpu_seconds();
  wrk_result r = run_wrk(server.port(), connections, seconds);
  const double cpu = server.cpu_seconds() - cpu_before;
  server.stop();
  std::fprintf(stderr,
               "http_bench: %-15s c=%-4d %9.0f req/s  p99 %8.3f ms  (%.0f requests; server thread CPU %.2f us/request, "
               "%.0f%% busy)\n",
               side, connections, r.requests_per_second, r.p99_ms, r.requests, cpu * 1e6 / r.requests,
               100 * cpu / seconds);
  const double errors = r.non_2xx + r.socket_errors;
  if (errors > 0) {
    std::printf("WARNING http_bench %s c=%d: wrk reported %.0f non-2xx/3xx responses%s%s (of %.0f requests)\n", side,
                connections, r.non_2xx, r.socket_errors_line.empty() ? "" : ", ",
                r.socket_errors_line.c_str(), r.requests);
    std::fflush(stdout);
  }
  if (errors > 0.01 * r.requests)
    fail(std::string(side) + " c=" + std::to_string(connections) + ": errors on more than 1% of the requests (" +
         std::to_string(static_cast<long long>(errors)) + " of " +
         std::to_string(static_cast<long long>(r.requests)) + ")");
  return r;
}

void bench_keepalive(const char* name, int connections) {
  const int seconds = run_seconds();
  const int n = bench::reps();
  std::vector<double> weft_rps, weft_p99, peer_rps, peer_p99;
  auto run_weft = [&] {
    const wrk_result r = measure<weft_http_server>("weft", connections, seconds);
    weft_rps.push_back(r.requests_per_second);
    weft_p99.push_back(r.p99_ms);
  };
  auto run_peer = [&] {
    const wrk_result r = measure<beast_http_server>("beast_awaitable", connections, seconds);
    peer_rps.push_back(r.requests_per_second);
    peer_p99.push_back(r.p99_ms);
  };
  for (int i = 0; i < n; ++i) {
    if (i % 2 == 0) {
      run_weft();
      run_peer();
    } else {
      run_peer();
      run_weft();
    }
  }
  const double w_rps = bench::median(weft_rps), p_rps = bench::median(peer_rps);
  char extra[256];
  std::snprintf(extra, sizeof extra,
                "(median of %d runs: weft %.0f req/s p99 %.3f ms, beast_awaitable %.0f req/s p99 %.3f ms)", n, w_rps,
                bench::median(weft_p99), p_rps, bench::median(peer_p99));
  bench::report(name, 1e6 / w_rps, "beast_awaitable", 1e6 / p_rps, "us", extra);
}

void bench_keepalive_100() { bench_keepalive("http_keepalive_100", 100); }
void bench_keepalive_1000() { bench_keepalive("http_keepalive_1000", 1000); }

constexpr bench::entry benches[] = {
    {"http_keepalive_100", bench_keepalive_100},
    {"http_keepalive_1000", bench_keepalive_1000},
};

}  // namespace

int main(int argc, char** argv) {
  raise_nofile_limit();
  return bench::main_of("bench_http", benches, argc, argv);
}

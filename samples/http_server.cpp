// An HTTP/1.1 server on weft with Boost.Beast; the handlers are plain
// synchronous functions.
//
//   http_server [--port N] [--body-limit BYTES] [--deadline SECONDS]
//               [--idle SECONDS] [--grace SECONDS]
//       serves on 127.0.0.1 until SIGINT/SIGTERM, then drains.
//   http_server --self-test
//       serves, runs a client against every route, then shuts down.
//
// Routes:
//   GET  /        "hello from weft"
//   POST /echo    the request's body
//   GET  /async   a value from an asynchronous service (an asio::awaitable
//                 coroutine), reached from the synchronous handler through
//                 greenback::await_
//   GET  /legacy  the result of a blocking legacy function, run on a worker
//                 thread through weft::run_in_thread
//   other         404
//
// Beast's synchronous http::read and http::write run on weft's transport
// through weft::net::sync_stream: one task per connection, straight-line
// code, no copy between the socket and Beast's buffers. Keep-alive; a body
// limit (413); a deadline on each request (408), counted from its first
// byte; a keep-alive connection idle between requests is closed after
// --idle seconds, and at once when shutdown starts; a request being served
// at shutdown finishes (within --grace) and its response says
// "Connection: close". Malformed requests get 400. Nothing a client sends
// can stop the server.
#include <weft/greenback/greenback.hpp>
#include <weft/net.hpp>
#include <weft/net/sync_stream.hpp>
#include <weft/threads/run_in_thread.hpp>
#include <weft/weft.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

struct config {
  int port = 0;
  std::uint64_t body_limit = 1 << 20;
  weft::duration deadline = std::chrono::seconds(10);
  weft::duration idle = std::chrono::seconds(5);
  weft::duration grace = std::chrono::seconds(10);
  bool self_test = false;
};

// --- the application: an async service, a legacy function, synchronous handlers -----

// A service whose API is coroutines (think: a database client).
asio::awaitable<std::string> fetch_quote(std::string symbol) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return symbol + " 42.00";
}

// A legacy function that blocks its thread (think: a C library call).
std::string legacy_report() {
  std::this_thread::sleep_for(5ms);
  return "report from a blocking call";
}

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

response reply(const request& req, http::status status, std::string body) {
  response res(status, req.version());
  res.set(http::field::server, "weft");
  res.set(http::field::content_type, "text/plain");
  res.body() = std::move(body);
  return res;
}

// The handler: ordinary synchronous code.
response handle(const request& req) {
  if (req.target() == "/" && req.method() == http::verb::get) return reply(req, http::status::ok, "hello from weft\n");
  if (req.target() == "/echo" && req.method() == http::verb::post) return reply(req, http::status::ok, req.body());
  if (req.target() == "/async" && req.method() == http::verb::get)
    return reply(req, http::status::ok, greenback::await_(fetch_quote("WEFT")) + "\n");
  if (req.target() == "/legacy" && req.method() == http::verb::get)
    return reply(req, http::status::ok, weft::run_in_thread(legacy_report) + "\n");
  return reply(req, http::status::not_found, "not found\n");
}

// --- the connection: HTTP/1.1 over a weft transport ------------------------------------

// Sends a response that ends the connection (an error status).
void send_final(weft::net::sync_stream& stream, http::status status, const char* body) {
  response res(status, 11);
  res.set(http::field::server, "weft");
  res.set(http::field::content_type, "text/plain");
  res.keep_alive(false);
  res.body() = body;
  res.prepare_payload();
  boost::system::error_code ignored;
  http::write(stream, res, ignored);
  stream.transport().send_eof();
}

void serve_connection(weft::net::stream_transport& conn, weft::net::stream_server& server, const config& cfg) {
  weft::net::sync_stream stream(conn);
  boost::beast::flat_buffer buffer;
  for (;;) {
    // Between requests: wait for the next one's first byte. The transport's
    // receive timeout (--idle) applies, and shutdown drops the wait.
    if (buffer.size() == 0) {
      boost::system::error_code ec;
      std::size_t n = 0;
      if (!server.until_shutdown([&] { n = stream.read_some(buffer.prepare(16384), ec); })) return;
      if (ec) return;  // the client closed (or reset, or stayed idle too long)
      buffer.commit(n);
    }
    http::request_parser<http::string_body> parser;
    parser.body_limit(cfg.body_limit);
    boost::system::error_code ec;
    auto deadline = weft::move_on_after(cfg.deadline);
    deadline.run([&] { http::read(stream, buffer, parser, ec); });
    if (deadline.cancelled_caught()) return send_final(stream, http::status::request_timeout, "request timeout\n");
    if (ec == http::error::body_limit) return send_final(stream, http::status::payload_too_large, "body too large\n");
    if (ec == http::error::end_of_stream || ec == boost::asio::error::eof) return;
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category())
      return send_final(stream, http::status::bad_request, "bad request\n");  // malformed
    if (ec) return;  // a connection error
    request req = parser.release();
    response res = handle(req);
    res.keep_alive(req.keep_alive() && !server.shutting_down());
    res.prepare_payload();
    http::write(stream, res);
    if (!res.keep_alive()) {
      conn.send_eof();
      return;
    }
  }
}

// --- a client for the self-test: Beast over a weft connection -----------------------

response get(weft::net::stream_transport& conn, http::verb verb, const char* target, std::string body = {}) {
  weft::net::sync_stream stream(conn);
  request req(verb, target, 11);
  req.set(http::field::host, "127.0.0.1");
  req.body() = std::move(body);
  req.prepare_payload();
  http::write(stream, req);
  boost::beast::flat_buffer buffer;
  response res;
  http::read(stream, buffer, res);
  return res;
}

bool self_test(std::uint16_t port) {
  bool ok = true;
  auto check = [&](bool good, const char* what) {
    std::printf("%s: %s\n", what, good ? "ok" : "WRONG");
    ok = ok && good;
  };
  auto conn = weft::net::create_tcp_connection("127.0.0.1", port);
  // Four requests on one keep-alive connection.
  check(get(conn, http::verb::get, "/").body() == "hello from weft\n", "GET /");
  check(get(conn, http::verb::post, "/echo", "some body").body() == "some body", "POST /echo");
  check(get(conn, http::verb::get, "/async").body() == "WEFT 42.00\n", "GET /async (greenback::await_)");
  check(get(conn, http::verb::get, "/legacy").body() == "report from a blocking call\n",
        "GET /legacy (run_in_thread)");
  check(get(conn, http::verb::get, "/nowhere").result() == http::status::not_found, "GET /nowhere is 404");
  conn.aclose();
  auto big = weft::net::create_tcp_connection("127.0.0.1", port);
  check(get(big, http::verb::post, "/echo", std::string(2 << 20, 'b')).result() == http::status::payload_too_large,
        "a 2 MiB body is 413");
  big.aclose();
  return ok;
}

double seconds_arg(const char* s, const char* name) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(v > 0)) {
    std::fprintf(stderr, "%s wants a positive number of seconds, not '%s'\n", name, s);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  for (int i = 1; i < argc; ++i) {
    const bool more = i + 1 < argc;
    if (!std::strcmp(argv[i], "--port") && more) cfg.port = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--body-limit") && more) cfg.body_limit = std::strtoull(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--deadline") && more) cfg.deadline = weft::duration(seconds_arg(argv[++i], "--deadline"));
    else if (!std::strcmp(argv[i], "--idle") && more) cfg.idle = weft::duration(seconds_arg(argv[++i], "--idle"));
    else if (!std::strcmp(argv[i], "--grace") && more) cfg.grace = weft::duration(seconds_arg(argv[++i], "--grace"));
    else if (!std::strcmp(argv[i], "--self-test")) cfg.self_test = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--port N] [--body-limit BYTES] [--deadline S] [--idle S] [--grace S] [--self-test]\n",
                   argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line reaches a pipe at once
  bool ok = true;
  weft::net::server_stats stats;
  try {
    weft::run([&] {
      weft::net::stream_server_options options;
      options.idle_timeout = cfg.idle;
      options.shutdown_signals = {SIGINT, SIGTERM};
      options.shutdown_grace = cfg.grace;
      weft::net::stream_server server(weft::net::create_tcp_listeners("127.0.0.1", cfg.port), options);
      const std::uint16_t port = server.local_addresses().front().port();
      std::printf("http server on http://127.0.0.1:%u/\n", unsigned{port});
      weft::open_task_group([&](weft::task_group& tasks) {
        if (cfg.self_test) {
          tasks.start_soon([&] {
            ok = self_test(port);
            server.shutdown(cfg.grace);
          });
        }
        server.serve([&](weft::net::stream_transport& conn) { serve_connection(conn, server, cfg); });
        stats = server.stats();
      });
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http server failed: %s\n", e.what());
    return 1;
  }
  std::printf("served %llu connections (%llu ended by their client, %llu by errors, %llu cut at shutdown); "
              "stopped cleanly\n",
              static_cast<unsigned long long>(stats.accepted), static_cast<unsigned long long>(stats.peer_errors),
              static_cast<unsigned long long>(stats.handler_errors), static_cast<unsigned long long>(stats.cancelled));
  return ok ? 0 : 1;
}

// A synchronous http_get over Boost.Beast, through greenback::await_.
//
// http_get() is what legacy code wants: a plain function that returns the
// body. Inside, it awaits a coroutine written against Beast's asynchronous
// API (asio::awaitable); greenback::await_ parks only the calling task while
// the coroutine runs on the runtime's io_context. So synchronous code — here
// a report generator that knows nothing of coroutines — fetches several
// pages concurrently, one task each, on one thread.
//
// The pages come from a small HTTP server in the same program (Beast's
// synchronous API on a weft::net::stream_server through sync_stream), so the
// sample runs anywhere; point http_get at any HTTP/1.1 server instead.
#include <weft/greenback/greenback.hpp>
#include <weft/net.hpp>
#include <weft/weft.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

namespace {

// --- the asynchronous client: Beast with asio::awaitable -----------------------------

asio::awaitable<std::string> fetch(std::string host, std::string port, std::string target) {
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(executor);
  beast::tcp_stream stream(executor);
  co_await stream.async_connect(co_await resolver.async_resolve(host, port, asio::use_awaitable), asio::use_awaitable);
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, host);
  co_await http::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  co_await http::async_read(stream, buffer, response, asio::use_awaitable);
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  if (response.result() != http::status::ok)
    throw std::runtime_error("GET " + target + ": " + std::to_string(response.result_int()));
  co_return response.body();
}

// --- the synchronous face ------------------------------------------------------------

/// GET http://host:port/target; returns the body. Blocks the calling task
/// only (a checkpoint: cancel scopes and deadlines interrupt it).
std::string http_get(const std::string& host, std::uint16_t port, const std::string& target) {
  return greenback::await_(fetch(host, std::to_string(port), target));
}

// --- legacy code: synchronous, knows nothing of coroutines ---------------------------

using getter = std::string (*)(const std::string& path, void* context);

std::string build_report(const std::vector<std::string>& paths, getter get, void* context) {
  std::string report;
  for (const auto& p : paths) report += p + ": " + get(p, context) + "\n";
  return report;
}

// --- a server to fetch from ----------------------------------------------------------

void serve_pages(weft::net::stream_transport& conn, const std::map<std::string, std::string>& pages) {
  weft::net::sync_stream stream(conn);
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::empty_body> request;
    beast::error_code ec;
    http::read(stream, buffer, request, ec);
    if (ec) return;
    const auto page = pages.find(std::string(request.target()));
    http::response<http::string_body> response(page != pages.end() ? http::status::ok : http::status::not_found, 11);
    response.body() = page != pages.end() ? page->second : "no such page";
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    http::write(stream, response, ec);
    if (ec || !response.keep_alive()) return;
  }
}

}  // namespace

int main() {
  const std::map<std::string, std::string> pages{{"/weather", "sunny"}, {"/news", "weft 1.0 released"}};
  std::string report;
  weft::run([&] {
    weft::net::stream_server server(weft::net::create_tcp_listeners("127.0.0.1", 0));
    const std::uint16_t port = server.local_addresses().front().port();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { server.serve([&](weft::net::stream_transport& conn) { serve_pages(conn, pages); }); });

      // Two reports built concurrently, each by synchronous code in a task of its own.
      std::string a, b;
      std::uint16_t p = port;  // outside the group's body: its tasks outlive the body's locals
      getter get = [](const std::string& path, void* context) {
        return http_get("127.0.0.1", *static_cast<std::uint16_t*>(context), path);
      };
      weft::open_task_group([&](weft::task_group& reports) {
        reports.start_soon([&] { a = build_report({"/weather", "/news"}, get, &p); });
        reports.start_soon([&] { b = build_report({"/news"}, get, &p); });
      });
      report = a + b;
      server.shutdown(1s);
    });
  });
  std::printf("%s", report.c_str());
  return report == "/weather: sunny\n/news: weft 1.0 released\n/news: weft 1.0 released\n" ? 0 : 1;
}

// weft::net::sync_stream: a stream_transport for Asio's and Beast's
// synchronous algorithms, with Asio's error conventions and weft's
// cancellation.
#include "net/net_support.hpp"

#include <weft/net/sync_stream.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <string>
#include <vector>

using namespace weft_net_test;
namespace asio = boost::asio;
namespace http = boost::beast::http;

TEST_CASE("sync_stream: asio::write and asio::read move exact byte counts; end of stream is asio::error::eof") {
  for (const stream_kind kind : all_stream_kinds) {
    CAPTURE(name_of(kind));
    run([&] {
      auto [a, b] = make_stream_pair(kind);
      net::sync_stream left(a), right(b);
      CHECK(left.get_executor() == asio::any_io_executor(weft::lowlevel::io_context().get_executor()));
      const std::string message(300000, 'q');
      std::string got(message.size(), '\0');
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          // Several buffers: one gathered write.
          const std::vector<asio::const_buffer> parts{asio::buffer(message.data(), 1000), asio::buffer(message.data(), 0),
                                                      asio::buffer(message.data() + 1000, message.size() - 1000)};
          CHECK(asio::write(left, parts) == message.size());
          a.send_eof();
        });
        CHECK(asio::read(right, asio::buffer(got)) == message.size());
      });
      CHECK(got == message);
      char byte;
      boost::system::error_code ec;
      CHECK(right.read_some(asio::buffer(&byte, 1), ec) == 0);
      CHECK(ec == asio::error::eof);
      try {
        right.read_some(asio::buffer(&byte, 1));
        FAIL("no eof");
      } catch (const boost::system::system_error& e) {
        CHECK(e.code() == asio::error::eof);
      }
      // Empty buffers: nothing read, no error, no wait.
      CHECK(right.read_some(asio::mutable_buffer(), ec) == 0);
      CHECK_FALSE(ec);
    });
  }
}

TEST_CASE("sync_stream: a reset and the receive timeout are error codes; cancellation and misuse stay exceptions") {
  run([&] {
    auto [a, b] = tcp_pair();
    net::sync_stream stream(b);
    char buf[16];
    boost::system::error_code ec;
    // The receive timeout: an error code, and the stream still works.
    b.set_recv_timeout(1s);
    CHECK(stream.read_some(asio::buffer(buf), ec) == 0);
    CHECK(ec == boost::system::errc::timed_out);
    b.set_recv_timeout(std::nullopt);
    // Cancelled: weft::cancelled, never an error code.
    auto scope = weft::move_on_after(1s);
    scope.run([&] { stream.read_some(asio::buffer(buf), ec); });
    CHECK(scope.cancelled_caught());
    // Two tasks reading at once: busy_resource_error is thrown.
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        boost::system::error_code first;
        CHECK(stream.read_some(asio::buffer(buf), first) == 1);
      });
      weft::testing::wait_all_tasks_blocked();
      boost::system::error_code second;
      CHECK_THROWS_AS(stream.read_some(asio::buffer(buf), second), weft::busy_resource_error);
      a.send_all("x");
    });
    // A reset.
    set_linger_zero(a.socket().native_handle());
    a.aclose();
    CHECK(stream.read_some(asio::buffer(buf), ec) == 0);
    CHECK(ec == asio::error::connection_reset);
    CHECK(stream.write_some(asio::buffer(buf, 1), ec) == 0);
    CHECK(ec);
  });
}

TEST_CASE("sync_stream: Beast's synchronous HTTP read and write run on weft's transport") {
  run([&] {
    auto [a, b] = tcp_pair();
    net::sync_stream client(a), server(b);
    const std::string body(512 * 1024, 'b');  // below the parser's default body limit (1 MiB)
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        for (int i = 0; i < 3; ++i) {  // keep-alive: three requests on one connection
          http::request<http::string_body> req(http::verb::post, "/upload", 11);
          req.set(http::field::host, "localhost");
          req.body() = body + std::to_string(i);
          req.prepare_payload();
          http::write(client, req);
          boost::beast::flat_buffer buffer;
          http::response<http::string_body> res;
          http::read(client, buffer, res);
          CHECK(res.result() == http::status::ok);
          CHECK(res.body() == std::to_string(body.size() + 1));
        }
        a.send_eof();
      });
      boost::beast::flat_buffer buffer;
      for (;;) {
        http::request<http::string_body> req;
        boost::system::error_code ec;
        http::read(server, buffer, req, ec);
        if (ec == http::error::end_of_stream) break;
        REQUIRE_FALSE(ec);
        http::response<http::string_body> res(http::status::ok, 11);
        res.body() = std::to_string(req.body().size());
        res.prepare_payload();
        http::write(server, res);
      }
    });
  });
}

TEST_CASE("Beast's asynchronous HTTP calls on a transport's socket with weft::use_fiber") {
  run([&] {
    auto [a, b] = tcp_pair();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        http::request<http::string_body> req(http::verb::get, "/thing", 11);
        req.set(http::field::host, "localhost");
        req.prepare_payload();
        http::async_write(a.socket(), req, weft::use_fiber);
        boost::beast::flat_buffer buffer;
        http::response<http::string_body> res;
        http::async_read(a.socket(), buffer, res, weft::use_fiber);
        CHECK(res.body() == "you asked for /thing");
      });
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::async_read(b.socket(), buffer, req, weft::use_fiber);
      http::response<http::string_body> res(http::status::ok, 11);
      res.body() = "you asked for " + std::string(req.target());
      res.prepare_payload();
      http::async_write(b.socket(), res, weft::use_fiber);
    });
    // A deadline ends a wait there too (Asio's cancellation reaches the operation).
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    auto deadline = weft::move_on_after(2s);
    deadline.run([&] { http::async_read(b.socket(), buffer, req, weft::use_fiber); });
    CHECK(deadline.cancelled_caught());
  });
}

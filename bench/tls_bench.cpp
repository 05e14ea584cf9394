// TLS benchmark: weft::net::tls_transport against Asio's ssl::stream with
// callbacks, measured side by side in one run (loopback only).
//
//   tls_echo  one thread, client and server in one process, TLS 1.3 with a
//             P-256 certificate from a private CA (made at start with the
//             openssl tool; the client verifies it); 1 KiB messages echoed,
//             20,000 timed round trips per measurement (10 runs of 2,000,
//             each on a fresh connection after its handshake and 200
//             untimed round trips), alternating weft and the peer. weft: a
//             server task (tls_transport::accept, recv_into until 1 KiB,
//             send_all) and a client task (create_tls_connection, send_all,
//             recv_into until 1 KiB). Peer: asio::ssl::stream<tcp::socket>,
//             async_handshake, async_read / async_write chains on one
//             io_context. Wall time per round trip (medians of BENCH_REPS
//             measurements), with each side's CPU time per round trip.
#include "bench_util.hpp"

#include <weft/net.hpp>
#include <weft/weft.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "FAILED: %s\n", what);
  std::exit(1);
}

// --- certificates ---------------------------------------------------------------------

struct certificates {
  std::string dir, ca, cert, key;
  certificates() {
    char tmpl[] = "/tmp/weft-tls-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) fail("mkdtemp");
    dir = tmpl;
    auto sh = [&](const std::string& cmd) {
      if (std::system((cmd + " > " + dir + "/log 2>&1").c_str()) != 0) fail(("openssl: " + cmd).c_str());
    };
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    sh("openssl req -x509" + ec + " -keyout " + dir + "/ca.key -out " + dir + "/ca.pem -days 2 -subj '/CN=bench CA'");
    sh("openssl req" + ec + " -keyout " + dir + "/key.pem -out " + dir + "/csr.pem -subj /CN=localhost");
    std::ofstream(dir + "/ext") << "subjectAltName=DNS:localhost\n";
    sh("openssl x509 -req -in " + dir + "/csr.pem -CA " + dir + "/ca.pem -CAkey " + dir + "/ca.key -CAcreateserial -out " +
       dir + "/cert.pem -days 2 -extfile " + dir + "/ext");
    ca = dir + "/ca.pem";
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
  }
  ~certificates() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

const certificates& certs() {
  static const certificates c;
  return c;
}

// --- timing ---------------------------------------------------------------------------

using bench::measured;
using bench::stopwatch;
using bench::timing;

constexpr std::size_t msg_size = 1024;
constexpr int chunks = 10;
constexpr int run_rounds = 2'000;
constexpr int warmup = 200;
using msg = std::array<char, msg_size>;

msg pattern() {
  msg m{};
  for (std::size_t i = 0; i < msg_size; ++i) m[i] = static_cast<char>('a' + i % 26);
  return m;
}
void stamp(msg& m, int round) { std::memcpy(m.data(), &round, sizeof round); }

// --- weft -----------------------------------------------------------------------------

bool recv_exactly(weft::net::tls_transport& t, char* p, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const std::size_t r = t.recv_into(std::span<char>(p + got, n - got));
    if (r == 0) return false;
    got += r;
  }
  return true;
}

timing weft_tls_echo() {
  timing result;
  bench::on_thread([&] {
    result = weft::run([] {
      const auto server_ctx = weft::net::tls_context::server(certs().cert, certs().key);
      auto client_ctx = weft::net::tls_context::client();
      client_ctx.load_verify_file(certs().ca);
      auto listeners = weft::net::create_tcp_listeners("127.0.0.1", 0);
      const std::uint16_t port = listeners.front().local_address().port();
      timing t;
      weft::open_task_group([&](weft::task_group& tg) {
        tg.start_soon([&] {
          auto conn = weft::net::tls_transport::accept(listeners.front().accept(), server_ctx);
          msg buf{};
          while (recv_exactly(conn, buf.data(), buf.size())) conn.send_all(std::string_view(buf.data(), buf.size()));
          conn.aclose();
        });
        tg.start_soon([&] {
          auto conn = weft::net::create_tls_connection("localhost", port, client_ctx);
          msg out = pattern(), in{};
          auto round = [&](int i) {
            stamp(out, i);
            conn.send_all(std::string_view(out.data(), out.size()));
            if (!recv_exactly(conn, in.data(), in.size()) || in != out) fail("tls_echo (weft): bad reply");
          };
          for (int i = 0; i < warmup; ++i) round(i);
          stopwatch w;
          w.start();
          for (int i = 0; i < run_rounds; ++i) round(i);
          w.stop();
          t = measured(w, run_rounds);
          conn.aclose();
        });
      });
      return t;
    });
    return 0.0;
  });
  return result;
}

// --- Asio ssl::stream with callbacks ----------------------------------------------------

class asio_tls_echo {
 public:
  asio_tls_echo() { SSL_set_tlsext_host_name(client_.native_handle(), "localhost"); }

  timing run() {
    acceptor_.async_accept(server_.next_layer(), [this](error_code ec) {
      if (ec) fail("tls_echo (asio): accept");
      server_.next_layer().set_option(tcp::no_delay(true));
      server_.async_handshake(ssl::stream_base::server, [this](error_code ec2) {
        if (ec2) fail(("tls_echo (asio): server handshake: " + ec2.message()).c_str());
        server_read();
      });
    });
    client_.next_layer().async_connect(acceptor_.local_endpoint(), [this](error_code ec) {
      if (ec) fail("tls_echo (asio): connect");
      client_.next_layer().set_option(tcp::no_delay(true));
      client_.async_handshake(ssl::stream_base::client, [this](error_code ec2) {
        if (ec2) fail(("tls_echo (asio): client handshake: " + ec2.message()).c_str());
        client_round();
      });
    });
    io_.run();
    return result_;
  }

 private:
  void server_read() {
    asio::async_read(server_, asio::buffer(server_buf_), [this](error_code ec, std::size_t) {
      if (ec) return;  // the client is done
      asio::async_write(server_, asio::buffer(server_buf_), [this](error_code ec2, std::size_t) {
        if (ec2) fail("tls_echo (asio): server write");
        server_read();
      });
    });
  }

  void client_round() {
    if (round_ == warmup) watch_.start();
    if (round_ == warmup + run_rounds) {
      watch_.stop();
      result_ = measured(watch_, run_rounds);
      error_code ignored;
      client_.next_layer().close(ignored);
      return;
    }
    stamp(out_, round_ < warmup ? round_ : round_ - warmup);
    asio::async_write(client_, asio::buffer(out_), [this](error_code ec, std::size_t) {
      if (ec) fail("tls_echo (asio): client write");
      asio::async_read(client_, asio::buffer(in_), [this](error_code ec2, std::size_t) {
        if (ec2 || in_ != out_) fail("tls_echo (asio): bad reply");
        ++round_;
        client_round();
      });
    });
  }

  asio::io_context io_{1};
  // Configured before the streams are made: an SSL takes its context's
  // certificate when it is created.
  static ssl::context server_context() {
    ssl::context c(ssl::context::tls_server);
    c.set_options(ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    c.use_certificate_chain_file(certs().cert);
    c.use_private_key_file(certs().key, ssl::context::pem);
    return c;
  }
  static ssl::context client_context() {
    ssl::context c(ssl::context::tls_client);
    c.load_verify_file(certs().ca);
    c.set_verify_mode(ssl::verify_peer);
    c.set_verify_callback(ssl::host_name_verification("localhost"));
    return c;
  }
  ssl::context server_ctx_ = server_context();
  ssl::context client_ctx_ = client_context();
  tcp::acceptor acceptor_{io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  ssl::stream<tcp::socket> server_{io_, server_ctx_};
  ssl::stream<tcp::socket> client_{io_, client_ctx_};
  msg server_buf_{};
  msg out_ = pattern();
  msg in_{};
  int round_ = 0;
  stopwatch watch_;
  timing result_;
};

timing asio_tls_echo_run() {
  timing result;
  bench::on_thread([&] {
    result = asio_tls_echo().run();
    return 0.0;
  });
  return result;
}

void bench_tls_echo() {
  (void)certs();
  auto [w, p] = bench::interleaved(chunks, weft_tls_echo, asio_tls_echo_run);
  const double wc = w.cpu_us, pc = p.cpu_us;
  char extra[240];
  std::snprintf(extra, sizeof extra,
                "cpu_weft=%.4gus cpu_asio_ssl_callbacks=%.4gus cpu_ratio=%.3f (per round trip, 1 KiB, TLS 1.3, "
                "20k round trips, one thread)",
                wc, pc, pc > 0 ? wc / pc : 0.0);
  bench::report("tls_echo", w.wall_us, "asio_ssl_callbacks", p.wall_us, "us", extra);
}

constexpr bench::entry benches[] = {
    {"tls_echo", bench_tls_echo},
};

}  // namespace

int main(int argc, char** argv) { return bench::main_of("bench_tls", benches, argc, argv); }

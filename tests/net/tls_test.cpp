// weft::net TLS: handshakes and data both ways, verification by default
// (a private CA, the host name, self-signed and untrusted certificates),
// SNI and ALPN, close_notify and truncation, deadlines on a silent peer,
// a broken stream after an interrupted send; interop with openssl s_server
// and s_client. Certificates are made at test time with the openssl tool.
#include "net/net_support.hpp"

#include <weft/net/server.hpp>
#include <weft/net/tls.hpp>

#include <spawn.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

using namespace weft_net_test;

namespace {

/// A private CA, a server certificate it signed (for localhost and
/// 127.0.0.1), and a self-signed one; made once per test program.
struct certificates {
  temp_dir dir;
  std::string ca, server_cert, server_key, self_signed_cert, self_signed_key;

  certificates() {
    const std::string d = dir.path();
    const std::string quiet = " > " + d + "/openssl.log 2>&1";
    auto sh = [&](const std::string& cmd) {
      if (std::system((cmd + quiet).c_str()) != 0) {
        std::ifstream log(d + "/openssl.log");
        throw std::runtime_error("openssl failed: " + cmd + "\n" +
                                 std::string(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>()));
      }
    };
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    sh("openssl req -x509" + ec + " -keyout " + d + "/ca.key -out " + d + "/ca.pem -days 2 -subj '/CN=weft test CA'");
    sh("openssl req" + ec + " -keyout " + d + "/server.key -out " + d + "/server.csr -subj /CN=localhost");
    std::ofstream(d + "/ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    sh("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -out " +
       d + "/server.pem -days 2 -extfile " + d + "/ext");
    sh("openssl req -x509" + ec + " -keyout " + d + "/self.key -out " + d + "/self.pem -days 2 -subj /CN=localhost");
    ca = d + "/ca.pem";
    server_cert = d + "/server.pem";
    server_key = d + "/server.key";
    self_signed_cert = d + "/self.pem";
    self_signed_key = d + "/self.key";
  }
};

const certificates& certs() {
  static const certificates c;
  return c;
}

net::tls_context trusting_client() {
  auto c = net::tls_context::client();
  c.load_verify_file(certs().ca);
  return c;
}

/// A TLS server on a loopback port: runs `handler` for one connection
/// after the server handshake, in a task of `tg`. Returns the port.
template <class F>
std::uint16_t one_tls_connection(weft::task_group& tg, const net::tls_context& server, F handler,
                                 std::vector<std::exception_ptr>* errors = nullptr) {
  auto ls = std::make_shared<std::vector<net::stream_listener>>(net::create_tcp_listeners("127.0.0.1", 0));
  const auto port = ls->front().local_address().port();
  tg.start_soon([ls, server, handler, errors]() mutable {
    auto plain = ls->front().accept();
    ls->front().aclose();
    try {
      auto tls = net::tls_transport::accept(std::move(plain), server);
      handler(tls);
    } catch (const std::system_error&) {
      if (errors == nullptr) throw;
      errors->push_back(std::current_exception());
    }
  });
  return port;
}

}  // namespace

TEST_CASE("TLS: a verified handshake, data both ways, SNI, ALPN, close_notify, half-close") {
  run_real([&] {
    auto server = net::tls_context::server(certs().server_cert, certs().server_key);
    server.set_alpn({"h2", "http/1.1"});
    auto client = trusting_client();
    client.set_alpn({"http/1.1", "spdy/1"});
    std::string sni, server_alpn;
    weft::open_task_group([&](weft::task_group& tg) {
      const auto port = one_tls_connection(tg, server, [&](net::tls_transport& t) {
        sni = t.requested_server_name();
        server_alpn = t.alpn_protocol();
        std::string got;
        for (std::string s; !(s = t.recv(65536)).empty();) got += s;  // until close_notify
        t.send_all("received " + std::to_string(got.size()) + " bytes");
        t.aclose();
      });
      auto conn = net::create_tls_connection("localhost", port, client);
      CHECK(conn.protocol_version() == "TLSv1.3");
      CHECK(conn.alpn_protocol() == "http/1.1");
      const std::string big(3 << 20, 'x');
      conn.send_all(big);
      conn.send_eof();  // close_notify; receiving still works
      CHECK(conn.recv(100) == "received 3145728 bytes");
      CHECK(conn.recv(100).empty());  // the server's close_notify
      CHECK(conn.recv(100).empty());
      CHECK_THROWS_AS(conn.send_all("more"), std::system_error);  // after send_eof
      conn.aclose();
      CHECK(conn.is_closing());
    });
    CHECK(sni == "localhost");
    CHECK(server_alpn == "http/1.1");
  });
}

TEST_CASE("TLS: certificates are verified by default; each failure says why and closes the connection") {
  run_real([&] {
    const auto server = net::tls_context::server(certs().server_cert, certs().server_key);
    const auto self_signed = net::tls_context::server(certs().self_signed_cert, certs().self_signed_key);
    struct attempt {
      const char* what;
      const net::tls_context* server;
      net::tls_context client;
      std::string name;
      const char* expected;
    };
    std::vector<attempt> attempts;
    attempts.push_back({"a CA the client does not trust", &server, net::tls_context::client(), "localhost",
                        "unable to get local issuer certificate"});
    attempts.push_back({"the wrong host name", &server, trusting_client(), "wrong.example", "mismatch"});
    attempts.push_back({"the wrong IP address", &server, trusting_client(), "127.0.0.2", "mismatch"});
    attempts.push_back({"a self-signed certificate", &self_signed, trusting_client(), "localhost", "self-signed"});
    for (auto& a : attempts) {
      CAPTURE(a.what);
      std::vector<std::exception_ptr> server_errors;
      const std::size_t fds = open_fd_count();
      weft::open_task_group([&](weft::task_group& tg) {
        const auto port = one_tls_connection(
            tg, *a.server, [](net::tls_transport&) { FAIL("the handshake succeeded"); }, &server_errors);
        try {
          net::tls_transport::connect(net::create_tcp_connection("127.0.0.1", port), a.client, a.name);
          FAIL("no error");
        } catch (const net::tls_error& e) {
          const std::string what = e.what();
          CAPTURE(what);
          CHECK(what.find("certificate verify failed") != std::string::npos);
          CHECK(what.find(a.expected) != std::string::npos);
          CHECK(e.code() == std::errc::protocol_error);
        }
      });
      REQUIRE(server_errors.size() == 1);  // the server heard the client's alert
      CHECK_THROWS_AS(std::rethrow_exception(server_errors.front()), net::tls_error);
      CHECK(open_fd_count() == fds);
    }
    // An IP address the certificate names verifies.
    weft::open_task_group([&](weft::task_group& tg) {
      const auto port = one_tls_connection(tg, server, [](net::tls_transport& t) { t.send_all("ok"); t.aclose(); });
      auto c = net::tls_transport::connect(net::create_tcp_connection("127.0.0.1", port), trusting_client(), "127.0.0.1");
      CHECK(c.recv(10) == "ok");
      c.aclose();
    });
    // Verification turned off, explicitly.
    weft::open_task_group([&](weft::task_group& tg) {
      const auto port = one_tls_connection(tg, self_signed, [](net::tls_transport& t) { t.send_all("ok"); t.aclose(); });
      auto lax = net::tls_context::client();
      lax.set_verify(false);
      auto c = net::create_tls_connection("127.0.0.1", port, lax);
      CHECK(c.recv(10) == "ok");
      c.aclose();
    });
  });
}

TEST_CASE("TLS: a silent peer during the handshake is ended by a deadline; a plain-text peer is a clear error") {
  run([&] {
    auto listeners = net::create_tcp_listeners("127.0.0.1", 0);
    const auto port = listeners.front().local_address().port();
    const std::size_t fds = open_fd_count();
    auto deadline = weft::move_on_after(5s);
    deadline.run([&] {
      net::create_tls_connection("127.0.0.1", port, trusting_client());  // accepted by the kernel, never answered
    });
    CHECK(deadline.cancelled_caught());
    CHECK(now_s() == doctest::Approx(5.0));
    auto pending = listeners.front().accept();  // the connection the client made
    CHECK(pending.recv(65536).size() > 0);      // its ClientHello...
    CHECK(error_of([&] { (void)pending.recv(1); }) == ECONNRESET);  // ...then a reset: closed when cancelled
    pending.aclose();
    CHECK(open_fd_count() == fds);
    // A peer that answers in plain text.
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        auto t = listeners.front().accept();
        (void)t.recv(65536);
        t.send_all("HTTP/1.1 400 Bad Request\r\n\r\n");
        t.aclose();
      });
      try {
        net::create_tls_connection("127.0.0.1", port, trusting_client());
        FAIL("no error");
      } catch (const net::tls_error& e) {
        CHECK(std::string(e.what()).find("weft::net::tls_transport::connect") != std::string::npos);
      }
    });
  });
}

TEST_CASE("TLS: a peer that closes without close_notify makes the receive fail as truncated") {
  run([&] {
    const auto server = net::tls_context::server(certs().server_cert, certs().server_key);
    weft::open_task_group([&](weft::task_group& tg) {
      const auto port = one_tls_connection(tg, server, [](net::tls_transport& t) {
        t.send_all("partial");
        t.transport().aclose();  // TCP close, no close_notify
      });
      auto c = net::create_tls_connection("localhost", port, trusting_client());
      CHECK(c.recv(100) == "partial");
      try {
        (void)c.recv(100);
        FAIL("no error");
      } catch (const net::tls_error& e) {
        CHECK(std::string(e.what()).find("without a TLS close_notify") != std::string::npos);
      }
      c.aclose();
    });
  });
}

TEST_CASE("TLS: a cancelled receive leaves the transport usable; a cancelled send breaks it") {
  run([&] {
    const auto server = net::tls_context::server(certs().server_cert, certs().server_key);
    weft::event read_now;
    weft::open_task_group([&](weft::task_group& tg) {
      const auto port = one_tls_connection(tg, server, [&](net::tls_transport& t) {
        t.send_all("first");
        read_now.wait();
        // The client's stream broke midway: it closes without close_notify.
        CHECK_THROWS_AS(
            [&] {
              for (std::string s; !(s = t.recv(65536)).empty();) {
              }
            }(),
            net::tls_error);
      });
      auto c = net::create_tls_connection("localhost", port, trusting_client());
      CHECK(c.recv(5) == "first");
      auto wait = weft::move_on_after(1s);
      wait.run([&] { (void)c.recv(5); });  // nothing comes
      CHECK(wait.cancelled_caught());
      // The server does not read: a big send fills the buffers and is cancelled midway.
      auto send = weft::move_on_after(1s);
      send.run([&] { c.send_all(std::string(64 << 20, 's')); });
      CHECK(send.cancelled_caught());
      try {
        c.send_all("more");
        FAIL("no error");
      } catch (const net::tls_error& e) {
        CHECK(std::string(e.what()).find("broken") != std::string::npos);
      }
      CHECK_THROWS_AS((void)c.recv(1), net::tls_error);
      c.aclose();  // closes all the same
      CHECK(c.is_closing());
      read_now.set();
    });
  });
}

TEST_CASE("TLS: bad arguments and files are clear errors") {
  run([&] {
    try {
      (void)net::tls_context::server("/nonexistent/chain.pem", certs().server_key);
      FAIL("no error");
    } catch (const net::tls_error& e) {
      CHECK(std::string(e.what()).find("/nonexistent/chain.pem") != std::string::npos);
    }
    try {
      (void)net::tls_context::server(certs().server_cert, certs().self_signed_key);
      FAIL("no error");
    } catch (const net::tls_error& e) {
      CHECK(std::string(e.what()).find(certs().self_signed_key) != std::string::npos);
    }
    auto c = net::tls_context::client();
    check_invalid_argument([&] { c.set_alpn({""}); }, {"set_alpn"});
    check_invalid_argument([&] { c.set_alpn({std::string(256, 'a')}); }, {"set_alpn"});
    CHECK_THROWS_AS(c.load_verify_file("/nonexistent/ca.pem"), net::tls_error);
  });
}

TEST_CASE("tls_handler: a client silent during the handshake is a peer error after the handshake timeout") {
  run([&] {
    const auto context = net::tls_context::server(certs().server_cert, certs().server_key);
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
    const auto port = server.local_addresses().front().port();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { server.serve(net::tls_handler(context, [](net::tls_transport&) {}, 3s)); });
      auto silent = net::create_tcp_connection("127.0.0.1", port);
      CHECK(error_of([&] { (void)silent.recv(16); }) == ECONNRESET);  // dropped by the server...
      CHECK(now_s() == doctest::Approx(3.0));  // ...when the handshake timed out
      silent.aclose();
      auto c = net::create_tls_connection("localhost", port, trusting_client());  // the next one is fine
      CHECK(c.recv(16).empty());  // the handler returned: close_notify
      c.aclose();
      server.shutdown(1s);
    });
    CHECK(server.stats().peer_errors == 1);
    CHECK(server.stats().completed == 1);
  });
  check_invalid_argument([] { (void)net::tls_handler(net::tls_context::client(), {}); }, {"tls_handler"});
  check_invalid_argument([] { (void)net::tls_handler(net::tls_context::client(), [](net::tls_transport&) {}, 0s); },
                         {"tls_handler"});
}

// --- interop with the openssl tool ---------------------------------------------------

namespace {

/// An openssl s_server or s_client whose stdin and stdout are a socket
/// this side reads and writes as a weft transport.
struct openssl_process {
  pid_t pid = -1;
  net::stream_transport io;

  static openssl_process start(std::vector<std::string> args) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);  // its chatter
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, "openssl", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    REQUIRE(rc == 0);
    return openssl_process{pid, net::wrap_stream_socket(fds[0])};
  }
  /// Reads until `text` has arrived (or end of stream); returns all read.
  std::string read_until(const std::string& text) {
    std::string got;
    while (got.find(text) == std::string::npos) {
      std::string s = io.recv(4096);
      if (s.empty()) break;
      got += s;
    }
    return got;
  }
  int wait() {
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) weft::sleep(10ms);
    pid = -1;
    return status;
  }
  ~openssl_process() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

std::uint16_t free_port() {
  auto ls = net::create_tcp_listeners("127.0.0.1", 0);
  return ls.front().local_address().port();
}

}  // namespace

TEST_CASE("TLS interop: weft's client against openssl s_server") {
  run_real([&] {
    const std::uint16_t port = free_port();
    auto server = openssl_process::start({"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert",
                                          certs().server_cert, "-key", certs().server_key, "-naccept", "1", "-quiet",
                                          "-alpn", "weft-test"});
    auto client = trusting_client();
    client.set_alpn({"weft-test"});
    std::optional<net::tls_transport> conn;
    for (int i = 0; !conn; ++i) {  // until s_server listens
      try {
        conn.emplace(net::create_tls_connection("localhost", port, client));
      } catch (const net::connect_error&) {
        REQUIRE(i < 500);
        weft::sleep(10ms);
      }
    }
    CHECK(conn->alpn_protocol() == "weft-test");
    conn->send_all("hello from weft\n");
    CHECK(server.read_until("hello from weft\n").find("hello from weft\n") != std::string::npos);
    server.io.send_all("hello from openssl\n");
    std::string got;
    while (got.find('\n') == std::string::npos) got += conn->recv(100);
    CHECK(got == "hello from openssl\n");
    conn->aclose();
    CHECK(WIFEXITED(server.wait()));
  });
}

TEST_CASE("TLS interop: openssl s_client against a weft stream_server with TLS") {
  run_real([&] {
    const auto context = net::tls_context::server(certs().server_cert, certs().server_key);
    net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
    const auto port = server.local_addresses().front().port();
    std::string sni;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        server.serve(net::tls_handler(context, [&](net::tls_transport& tls) {
          sni = tls.requested_server_name();
          for (std::string s; !(s = tls.recv(4096)).empty();) tls.send_all("echo: " + s);
        }));
      });
      auto client = openssl_process::start({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                                            "-CAfile", certs().ca, "-verify_return_error", "-servername", "localhost",
                                            "-quiet", "-no_ign_eof"});
      client.io.send_all("ping\n");
      CHECK(client.read_until("echo: ping\n").find("echo: ping\n") != std::string::npos);
      client.io.send_eof();  // s_client sends close_notify at the end of its input
      const int status = client.wait();
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
      while (server.stats().active > 0) weft::sleep(10ms);
      server.shutdown(1s);
    });
    CHECK(sni == "localhost");
    CHECK(server.stats().completed == 1);
    CHECK(server.stats().handler_errors == 0);
  });
}

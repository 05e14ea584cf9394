// A tour of weft's TLS (OpenSSL under weft's transports): a server and its
// clients on loopback with a certificate made at start-up, ALPN and SNI,
// the handshake by hand and under a server's tls_handler, verification
// failures as tls_error (a wrong host name, an untrusted certificate), and
// OpenSSL's own calls through the context's native handle.
//
// The certificate is made in-process with OpenSSL's C API, so the program
// ships no certificate: a self-signed one (its own CA) for localhost and
// 127.0.0.1, written with its key to temporary PEM files that go at exit.
// Clients trust it through load_verify_file.
#include <weft/weft.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
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

// --- A throwaway certificate, with OpenSSL's C API ------------------------------

struct openssl_free {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  void operator()(X509* cert) const { X509_free(cert); }
  void operator()(X509_EXTENSION* ext) const { X509_EXTENSION_free(ext); }
};

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("OpenSSL: ") + what);
}

struct identity {
  std::unique_ptr<EVP_PKEY, openssl_free> key;
  std::unique_ptr<X509, openssl_free> certificate;
};

void add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);  // self-signed: issuer = subject
  std::unique_ptr<X509_EXTENSION, openssl_free> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  require(ext && X509_add_ext(cert, ext.get(), -1) == 1, value);
}

// A fresh P-256 key and a self-signed certificate for localhost and
// 127.0.0.1, valid for a day.
identity make_identity(const char* common_name, long serial) {
  identity id;
  id.key.reset(EVP_EC_gen("P-256"));
  id.certificate.reset(X509_new());
  X509* cert = id.certificate.get();
  require(id.key && cert, "a key and a certificate");
  require(X509_set_version(cert, X509_VERSION_3) == 1 && ASN1_INTEGER_set(X509_get_serialNumber(cert), serial) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(cert), -60) && X509_gmtime_adj(X509_getm_notAfter(cert), 86400) &&
              X509_set_pubkey(cert, id.key.get()) == 1,
          "the certificate's fields");
  X509_NAME* name = X509_get_subject_name(cert);
  require(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name),
                                     -1, -1, 0) == 1 &&
              X509_set_issuer_name(cert, name) == 1,
          "the certificate's names");
  add_extension(cert, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  require(X509_sign(cert, id.key.get(), EVP_sha256()) > 0, "signing the certificate");
  return id;
}

// A PEM file under /tmp (mode 0600, as mkstemp makes it), removed with the object.
class pem_file {
 public:
  template <class Write>
  explicit pem_file(Write write) : path_("/tmp/weft-tour-tls-XXXXXX") {
    const int fd = ::mkstemp(path_.data());
    require(fd >= 0, "a temporary file");
    FILE* f = ::fdopen(fd, "w");
    bool ok = f != nullptr && write(f) == 1;
    if (f != nullptr)
      ok = std::fclose(f) == 0 && ok;  // closes fd too
    else
      ::close(fd);
    if (!ok) {
      ::unlink(path_.c_str());
      require(false, "writing a PEM file");
    }
  }
  ~pem_file() { ::unlink(path_.c_str()); }
  pem_file(const pem_file&) = delete;
  pem_file& operator=(const pem_file&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What the server's handler saw of one connection.
struct seen {
  std::string server_name, alpn, version;
};

// An echo: everything until the client's close_notify, sent back.
void echo(net::tls_transport& conn) {
  for (std::string s; !(s = conn.recv(4096)).empty();) conn.send_all(s);
}

// A client's exchange: sends `message`, half-closes, returns the echo.
std::string round_trip(net::tls_transport& conn, const std::string& message) {
  conn.send_all(message);
  conn.send_eof();  // close_notify: the server reads end of stream; receiving still works
  std::string back;
  for (std::string s; !(s = conn.recv(4096)).empty();) back += s;
  conn.aclose();
  return back;
}

// The tls_error a client's handshake fails with ("" if it succeeded).
template <class Connect>
std::string handshake_error(Connect connect) {
  try {
    net::tls_transport conn = connect();
    conn.aclose();
  } catch (const net::tls_error& e) {
    check(e.code() == std::errc::protocol_error, "tls_error is EPROTO");
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

void tour() {
  const identity id = make_identity("localhost", 1);
  const pem_file certificate([&](FILE* f) { return PEM_write_X509(f, id.certificate.get()); });
  const pem_file key(
      [&](FILE* f) { return PEM_write_PrivateKey(f, id.key.get(), nullptr, nullptr, 0, nullptr, nullptr); });

  // Contexts hold the settings many connections share. The server's: its
  // certificate and key (PEM files: the key's is readable by this user
  // only), and the ALPN protocols it accepts, its preference first.
  net::tls_context server_context = net::tls_context::server(certificate.path(), key.path());
  server_context.set_alpn({"h2", "http/1.1"});
  // The client's: verification on (the default), against the system's CAs
  // and our certificate; the protocols it offers.
  net::tls_context client = net::tls_context::client();
  client.load_verify_file(certificate.path());
  client.set_alpn({"http/1.1"});

  // 1. A server: tls_handler runs the handshake (under a timeout), then the
  // handler; a failed handshake is a peer error of the server, not a crash.
  std::vector<seen> served;
  net::stream_server server(net::create_tcp_listeners("127.0.0.1", 0));
  const int port = server.local_addresses().front().port();
  auto handler = [&](net::tls_transport& conn) {
    served.push_back({conn.requested_server_name(), conn.alpn_protocol(), conn.protocol_version()});
    echo(conn);
  };
  weft::open_task_group([&](weft::task_group& tg) {
    tg.start_soon([&] { server.serve(net::tls_handler(server_context, handler, 5s)); });

    // A client by name: create_tls_connection connects, checks the
    // certificate names "localhost", and sends it as SNI.
    net::tls_transport conn = net::create_tls_connection("localhost", port, client);
    const std::string version = conn.protocol_version(), alpn = conn.alpn_protocol();
    check(version == "TLSv1.3" && alpn == "http/1.1", "TLS 1.3, ALPN http/1.1");
    std::printf("connected to localhost:%d with %s, ALPN %s\n", port, version.c_str(), alpn.c_str());
    check(round_trip(conn, "hello over TLS") == "hello over TLS" && conn.is_closing(), "an echo over TLS");

    // By address, over a connection made first: the certificate must name
    // 127.0.0.1 (it does); no SNI is sent for an address.
    net::tls_transport by_ip =
        net::tls_transport::connect(net::create_tcp_connection("127.0.0.1", port), client, "127.0.0.1");
    check(round_trip(by_ip, std::string(20000, 'x')).size() == 20000, "20 kB echoed, verified by IP address");

    // A host name the certificate does not name: the handshake fails, and says why.
    const std::string wrong_name = handshake_error([&] {
      return net::tls_transport::connect(net::create_tcp_connection("127.0.0.1", port), client, "example.org");
    });
    check(contains(wrong_name, "certificate verify failed") && contains(wrong_name, "mismatch"), "a wrong host name");
    std::printf("tls_error: %s\n", wrong_name.c_str());

    server.shutdown(1s);  // stop accepting; handlers still running get 1 s
  });
  check(served.size() == 2 && served[0].server_name == "localhost" && served[0].alpn == "http/1.1" &&
            served[0].version == "TLSv1.3" && served[1].server_name.empty(),
        "the server saw SNI, ALPN and the version");
  check(server.stats().accepted == 3 && server.stats().peer_errors == 1, "the failed handshake: a peer error");

  // 2. The handshake by hand, on a second server whose certificate lives
  // only in memory: native_handle() reaches OpenSSL for what tls_context
  // has no call for, here replacing the certificate and key loaded from
  // files (handshakes after this present the new ones).
  const identity renewed = make_identity("localhost (renewed)", 2);
  net::tls_context memory_context = net::tls_context::server(certificate.path(), key.path());
  SSL_CTX* ctx = memory_context.native_handle();
  check(SSL_CTX_use_certificate(ctx, renewed.certificate.get()) == 1 &&  // takes a reference of its own
            SSL_CTX_use_PrivateKey(ctx, renewed.key.get()) == 1 && SSL_CTX_check_private_key(ctx) == 1,
        "an in-memory certificate and key");
  std::vector<net::stream_listener> listeners = net::create_tcp_listeners("127.0.0.1", 0);
  const int port2 = listeners.front().local_address().port();
  std::vector<std::string> server_errors;
  weft::open_task_group([&](weft::task_group& tg) {
    tg.start_soon([&] {
      for (int i = 0; i < 2; ++i) {
        net::stream_transport plain = listeners.front().accept();
        try {
          net::tls_transport conn = net::tls_transport::accept(std::move(plain), memory_context);  // a checkpoint
          check(conn.alpn_protocol().empty(), "no ALPN on this server");
          echo(conn);
          conn.aclose();
        } catch (const net::tls_error& e) {  // the client's alert: it refused the certificate
          server_errors.push_back(e.what());
        }
      }
    });

    // Our client trusts the first certificate only: the renewed one is untrusted.
    const std::string untrusted =
        handshake_error([&] { return net::create_tls_connection("localhost", port2, client); });
    check(contains(untrusted, "certificate verify failed") && contains(untrusted, "self-signed"),
          "an untrusted certificate");
    std::printf("tls_error: %s\n", untrusted.c_str());

    // Verification off, explicitly: encrypted, but the server is not
    // authenticated (for tests, or a peer authenticated some other way).
    net::tls_context lax = net::tls_context::client();
    lax.set_verify(false);
    net::tls_transport conn = net::create_tls_connection("localhost", port2, lax);
    check(round_trip(conn, "unverified") == "unverified", "an unverified connection");
  });
  check(server_errors.size() == 1, "the server's handshake failed too");
  listeners.front().aclose();
}

}  // namespace

int main() {
  try {
    weft::run([] { tour(); });
  } catch (const std::exception& e) {
    check(false, e.what());
  }
  if (failures != 0) return 1;
  std::printf("tour_tls: ok\n");
}

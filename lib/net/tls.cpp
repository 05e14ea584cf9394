// TLS over weft's stream transports: OpenSSL driven through memory BIOs.
//
// OpenSSL never touches the socket. What it wants to send it writes into
// `out`, which flush() hands to the transport's send_all; what the transport
// receives goes into `in` (fill()). So every wait is a weft wait on the
// transport: a checkpoint, cancellable, parking only the calling task.

#include "net/io.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/net/connect.hpp>
#include <weft/net/tls.hpp>
#include <weft/sync/lock.hpp>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace weft::net {

namespace {

constexpr std::size_t io_buffer_size = 64 * 1024;  // per direction: four full TLS records
constexpr std::size_t max_plaintext_per_write = 64 * 1024;

/// OpenSSL's error queue as text ("; "-separated), emptied.
std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

[[noreturn]] void throw_tls(const std::string& what) {
  const std::string detail = openssl_errors();
  throw tls_error(detail.empty() ? what : what + ": " + detail);
}

bool is_ip_address(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 || ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in, unsigned in_len,
                void* arg);

}  // namespace

// --- tls_context ---------------------------------------------------------------------

struct tls_context::state {
  SSL_CTX* ctx = nullptr;
  bool server = false;
  std::string alpn;  // wire format: length-prefixed names
  ~state() { SSL_CTX_free(ctx); }
};

namespace {

std::shared_ptr<tls_context::state> new_context(bool server) {
  ERR_clear_error();
  auto s = std::make_shared<tls_context::state>();
  s->server = server;
  s->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (s->ctx == nullptr) throw_tls("weft::net::tls_context: cannot create an OpenSSL context");
  SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(s->ctx, SSL_OP_NO_RENEGOTIATION);
  return s;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in, unsigned in_len,
                void* arg) {
  const auto* s = static_cast<const tls_context::state*>(arg);
  unsigned char* chosen = nullptr;
  unsigned char chosen_len = 0;
  if (SSL_select_next_proto(&chosen, &chosen_len, reinterpret_cast<const unsigned char*>(s->alpn.data()),
                            static_cast<unsigned>(s->alpn.size()), in, in_len) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  *out_len = chosen_len;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

tls_context tls_context::client() {
  auto s = new_context(false);
  SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_set_default_verify_paths(s->ctx) != 1)
    throw_tls("weft::net::tls_context::client: cannot load the system's trusted certificates");
  return tls_context(std::move(s));
}

tls_context tls_context::server(const std::string& certificate_chain_file, const std::string& private_key_file) {
  auto s = new_context(true);
  if (SSL_CTX_use_certificate_chain_file(s->ctx, certificate_chain_file.c_str()) != 1)
    throw_tls("weft::net::tls_context::server: cannot load the certificate chain \"" + certificate_chain_file + "\"");
  if (SSL_CTX_use_PrivateKey_file(s->ctx, private_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    throw_tls("weft::net::tls_context::server: cannot load the private key \"" + private_key_file + "\"");
  if (SSL_CTX_check_private_key(s->ctx) != 1)
    throw_tls("weft::net::tls_context::server: the private key \"" + private_key_file +
              "\" does not match the certificate \"" + certificate_chain_file + "\"");
  return tls_context(std::move(s));
}

void tls_context::load_verify_file(const std::string& ca_file) {
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(state_->ctx, ca_file.c_str(), nullptr) != 1)
    throw_tls("weft::net::tls_context::load_verify_file: cannot load \"" + ca_file + "\"");
}

void tls_context::set_verify(bool on) {
  const int mode = !on ? SSL_VERIFY_NONE
                       : state_->server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER;
  SSL_CTX_set_verify(state_->ctx, mode, nullptr);
}

void tls_context::set_alpn(std::vector<std::string> protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255)
      throw std::invalid_argument("weft::net::tls_context::set_alpn: a protocol name must be 1 to 255 bytes, not \"" +
                                  p + "\"");
    wire += static_cast<char>(p.size());
    wire += p;
  }
  state_->alpn = std::move(wire);
  if (state_->server) {
    SSL_CTX_set_alpn_select_cb(state_->ctx, state_->alpn.empty() ? nullptr : &select_alpn, state_.get());
  } else if (SSL_CTX_set_alpn_protos(state_->ctx, reinterpret_cast<const unsigned char*>(state_->alpn.data()),
                                     static_cast<unsigned>(state_->alpn.size())) != 0) {
    throw_tls("weft::net::tls_context::set_alpn");
  }
}

ssl_ctx_st* tls_context::native_handle() const noexcept { return state_->ctx; }

// --- tls_transport -------------------------------------------------------------------

struct tls_transport::state {
  state(stream_transport t, std::shared_ptr<tls_context::state> c) : transport(std::move(t)), context(std::move(c)) {}
  ~state() { SSL_free(ssl); }  // frees the BIOs too

  stream_transport transport;
  std::shared_ptr<tls_context::state> context;  // its ALPN callback's argument lives as long as we do
  SSL* ssl = nullptr;
  BIO* in = nullptr;   // network -> OpenSSL
  BIO* out = nullptr;  // OpenSSL -> network
  weft::lock send_lock;  // one task at a time moves `out` to the socket
  std::unique_ptr<char[]> in_buffer{new char[io_buffer_size]};
  std::unique_ptr<char[]> out_buffer{new char[io_buffer_size]};
  bool broken = false;             // a record may be half sent: nothing more can be trusted
  bool peer_closed = false;        // close_notify received
  bool close_notify_sent = false;
  bool receiving = false;
  bool sending = false;

  void check_usable(const char* what) const {
    if (transport.is_closing()) detail::throw_closed(what);  // closed, or moved from
    if (broken)
      throw tls_error(std::string(what) + ": the TLS stream is broken (an earlier send or handshake was interrupted)");
  }

  /// Sends what OpenSSL has written for the peer. Checkpoint.
  void flush() {
    if (BIO_ctrl_pending(out) == 0) return;
    weft::lock_guard hold(send_lock);
    for (;;) {
      const int n = BIO_read(out, out_buffer.get(), static_cast<int>(io_buffer_size));
      if (n <= 0) return;
      try {
        transport.send_all(std::string_view(out_buffer.get(), static_cast<std::size_t>(n)));
      } catch (...) {
        broken = true;  // part of a record may have gone out
        throw;
      }
    }
  }

  /// Receives more bytes for OpenSSL; false at the transport's end of stream. Checkpoint.
  bool fill() {
    const std::size_t n = transport.recv_into(std::span<char>(in_buffer.get(), io_buffer_size));
    if (n == 0) return false;
    if (BIO_write(in, in_buffer.get(), static_cast<int>(n)) != static_cast<int>(n)) throw_tls("weft::net::tls_transport");
    return true;
  }

  [[noreturn]] void fail(const char* what, int ssl_error) {
    std::string message = what;
    if (ssl_error == SSL_ERROR_SSL || ssl_error == SSL_ERROR_SYSCALL) {
      const long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        message += ": certificate verify failed: ";
        message += X509_verify_cert_error_string(verify);
        ERR_clear_error();
        throw tls_error(message);
      }
    }
    throw_tls(message);
  }

  void handshake(const char* what) {
    for (;;) {
      ERR_clear_error();
      const int r = SSL_do_handshake(ssl);
      const int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
      flush();  // our flight (or an alert saying why we fail)
      if (r == 1) return;
      if (e == SSL_ERROR_WANT_READ) {
        if (!fill()) throw tls_error(std::string(what) + ": the peer closed the connection during the TLS handshake");
        continue;
      }
      if (e == SSL_ERROR_WANT_WRITE) continue;
      fail(what, e);
    }
  }
};

namespace {

std::unique_ptr<tls_transport::state> start(stream_transport transport, const std::shared_ptr<tls_context::state>& ctx,
                                            const char* what) {
  lowlevel::raise_if_cancelled();
  ERR_clear_error();
  auto s = std::make_unique<tls_transport::state>(std::move(transport), ctx);
  s->ssl = SSL_new(ctx->ctx);
  if (s->ssl == nullptr) throw_tls(what);
  s->in = BIO_new(BIO_s_mem());
  s->out = BIO_new(BIO_s_mem());
  if (s->in == nullptr || s->out == nullptr) {
    BIO_free(s->in);
    BIO_free(s->out);
    throw_tls(what);
  }
  SSL_set_bio(s->ssl, s->in, s->out);  // the SSL owns them now
  return s;
}

}  // namespace

namespace {
// Flushes what a send has handed to OpenSSL: interrupted, the stream no
// longer says what the caller was told (the data went, or went in part).
void flush_accepted(tls_transport::state& s) {
  try {
    s.flush();
  } catch (...) {
    s.broken = true;
    throw;
  }
}
}  // namespace

tls_transport::tls_transport(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}
tls_transport::tls_transport(tls_transport&&) noexcept = default;
tls_transport& tls_transport::operator=(tls_transport&&) noexcept = default;
tls_transport::~tls_transport() = default;

tls_transport tls_transport::connect(stream_transport transport, const tls_context& context,
                                     std::string_view server_name) {
  const char* what = "weft::net::tls_transport::connect";
  auto s = start(std::move(transport), context.state_, what);
  SSL_set_connect_state(s->ssl);
  const std::string name(server_name);
  if (!name.empty()) {
    if (is_ip_address(name)) {
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), name.c_str()) != 1) throw_tls(what);
    } else {
      if (SSL_set_tlsext_host_name(s->ssl, name.c_str()) != 1 || SSL_set1_host(s->ssl, name.c_str()) != 1)
        throw_tls(what);
    }
  }
  s->handshake(what);  // on any exception s goes, and closes the transport
  return tls_transport(std::move(s));
}

tls_transport tls_transport::accept(stream_transport transport, const tls_context& context) {
  const char* what = "weft::net::tls_transport::accept";
  auto s = start(std::move(transport), context.state_, what);
  SSL_set_accept_state(s->ssl);
  s->handshake(what);
  return tls_transport(std::move(s));
}

std::string tls_transport::recv(std::size_t n) {
  usable("weft::net::tls_transport::recv");
  lowlevel::raise_if_cancelled();
  if (n == 0) return {};
  std::string out(std::min(n, max_recv_size), '\0');
  out.resize(recv_into(std::span<char>(out.data(), out.size())));
  return out;
}

std::size_t tls_transport::recv_into(std::span<std::byte> buf) {
  const char* what = "weft::net::tls_transport::recv_into";
  state& s = usable(what);
  lowlevel::raise_if_cancelled();
  if (buf.empty()) return 0;
  detail::busy_guard busy(s.receiving, "weft::net::tls_transport: another task is already receiving on this transport");
  if (s.peer_closed) return 0;
  for (;;) {
    ERR_clear_error();
    std::size_t n = 0;
    const int r = SSL_read_ex(s.ssl, buf.data(), buf.size(), &n);
    if (r == 1) {
      if (BIO_ctrl_pending(s.out) != 0) s.flush();  // a reply OpenSSL owes the peer (key update)
      return n;
    }
    const int e = SSL_get_error(s.ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN) {  // close_notify
      s.peer_closed = true;
      return 0;
    }
    if (e == SSL_ERROR_WANT_READ) {
      if (BIO_ctrl_pending(s.out) != 0) s.flush();
      if (!s.fill())
        throw tls_error(std::string(what) +
                        ": the peer closed the connection without a TLS close_notify (the stream may be truncated)");
      continue;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      s.flush();
      continue;
    }
    s.fail(what, e);
  }
}

void tls_transport::send_all(std::span<const std::byte> data) {
  const char* what = "weft::net::tls_transport::send_all";
  state& s = usable(what);
  lowlevel::raise_if_cancelled();
  detail::busy_guard busy(s.sending, "weft::net::tls_transport: another task is already sending on this transport");
  if (s.close_notify_sent) detail::throw_closed(what);
  std::size_t done = 0;
  while (done < data.size()) {
    ERR_clear_error();
    std::size_t n = 0;
    const int r = SSL_write_ex(s.ssl, data.data() + done, std::min(data.size() - done, max_plaintext_per_write), &n);
    if (r != 1) {
      const int e = SSL_get_error(s.ssl, r);
      if (e == SSL_ERROR_WANT_WRITE) {
        s.flush();
        continue;
      }
      s.broken = true;
      s.fail(what, e);
    }
    done += n;
    flush_accepted(s);
  }
}

void tls_transport::send_eof() {
  const char* what = "weft::net::tls_transport::send_eof";
  state& s = usable(what);
  lowlevel::raise_if_cancelled();
  if (s.close_notify_sent) return;
  detail::busy_guard busy(s.sending, "weft::net::tls_transport: another task is already sending on this transport");
  ERR_clear_error();
  if (SSL_shutdown(s.ssl) < 0) throw_tls(what);  // 0: sent, the peer's not yet received; 1: both done
  s.close_notify_sent = true;
  flush_accepted(s);
}

void tls_transport::aclose() {
  state* s = state_.get();
  if (s == nullptr || s->transport.is_closing()) {
    lowlevel::raise_if_cancelled();
    return;
  }
  // close_notify, if it can go out at once: closing never waits for the
  // peer (nor for room in the socket buffer).
  if (!s->broken && !s->close_notify_sent && !s->sending && !lowlevel::cancellation_pending()) {
    ERR_clear_error();
    if (SSL_shutdown(s->ssl) >= 0) {
      s->close_notify_sent = true;
      char buf[256];
      const int n = BIO_read(s->out, buf, sizeof buf);
      if (n > 0) (void)::send(s->transport.socket().native_handle(), buf, static_cast<std::size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    ERR_clear_error();
  }
  s->transport.aclose();  // a checkpoint after closing
}

bool tls_transport::is_closing() const noexcept { return state_ == nullptr || state_->transport.is_closing(); }

std::string tls_transport::alpn_protocol() const {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(state_->ssl, &p, &len);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), len);
}

std::string tls_transport::protocol_version() const { return SSL_get_version(state_->ssl); }

std::string tls_transport::requested_server_name() const {
  const char* name = SSL_get_servername(state_->ssl, TLSEXT_NAMETYPE_host_name);
  return name == nullptr ? std::string() : std::string(name);
}

stream_transport& tls_transport::transport() noexcept { return state_->transport; }

tls_transport::state& tls_transport::usable(const char* what) const {
  if (state_ == nullptr) detail::throw_closed(what);  // moved from
  state_->check_usable(what);
  return *state_;
}

std::function<void(stream_transport&)> tls_handler(tls_context context, std::function<void(tls_transport&)> handler,
                                                   duration handshake_timeout) {
  if (!handler) throw std::invalid_argument("weft::net::tls_handler: the handler is empty");
  if (!(handshake_timeout.count() > 0))
    throw std::invalid_argument("weft::net::tls_handler: the handshake timeout must be positive");
  return [context = std::move(context), handler = std::move(handler), handshake_timeout](stream_transport& plain) {
    std::optional<tls_transport> tls;
    cancel_scope limit(weft::current_time() + handshake_timeout);
    limit.run([&] { tls.emplace(tls_transport::accept(std::move(plain), context)); });
    if (!tls)
      throw std::system_error(std::make_error_code(std::errc::timed_out),
                              "weft::net::tls_handler: the TLS handshake took longer than its timeout");
    handler(*tls);
    tls->aclose();
  };
}

tls_transport create_tls_connection(std::string_view host, int port, const tls_context& context) {
  return tls_transport::connect(create_tcp_connection(host, port), context, host);
}

}  // namespace weft::net

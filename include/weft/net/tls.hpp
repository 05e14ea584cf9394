// weft::net TLS: stream transports encrypted with OpenSSL.
//
//   weft::net::tls_context client = weft::net::tls_context::client();      // verifies, by default
//   auto conn = weft::net::create_tls_connection("example.org", 443, client);
//   conn.send_all("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n");
//
//   weft::net::tls_context server = weft::net::tls_context::server("chain.pem", "key.pem");
//   auto tls = weft::net::tls_transport::accept(std::move(plain), server);  // handshake: a checkpoint
//
// tls_transport has the calls of stream_transport (recv, recv_into,
// send_all, send_eof, aclose), with TLS underneath: send_eof sends TLS
// close_notify (the peer reads end of stream; receiving still works),
// aclose sends close_notify and closes. Every call that can block is a
// checkpoint, parks only the calling task, and is interrupted by cancel
// scopes and deadlines; the handshake too (put a deadline on it: a silent
// peer would otherwise hold it forever).
//
// Security defaults: TLS 1.2 or later; a client verifies the server's
// certificate against the system's trusted CAs and checks that it names the
// host it connected to (a DNS name or an IP address), and sends that name
// as SNI. Turning verification off is explicit (set_verify(false)).
//
// Errors: std::system_error. A failed handshake or a TLS protocol error is
// weft::net::tls_error (a std::system_error, code EPROTO) whose what() says
// why: the certificate verification result ("certificate has expired",
// "Hostname mismatch", "self-signed certificate", ...) or OpenSSL's reason.
// A peer that closes the connection without close_notify makes a receive
// fail with tls_error "the peer closed the connection without a TLS
// close_notify (the stream may be truncated)", not a silent end of stream.
//
// Concurrency: one task may receive while another sends (as with
// stream_transport). A receive interrupted by a cancellation leaves the
// transport usable; a send or a handshake interrupted midway leaves it
// broken (a TLS record may be half written): every later call throws
// tls_error, and aclose() closes it.
#pragma once

#include <weft/net/stream.hpp>
#include <weft/time.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace weft::net {

/// A TLS failure: the handshake (certificate verification, no common
/// protocol version or cipher, ...), a protocol error, a truncated stream.
/// code() is EPROTO (std::errc::protocol_error).
class tls_error : public std::system_error {
 public:
  explicit tls_error(const std::string& what) : std::system_error(std::make_error_code(std::errc::protocol_error), what) {}
};

/// TLS settings shared by many connections (an OpenSSL SSL_CTX). Cheap to
/// copy (shared). Configure before use; connections made keep what they
/// were made with.
class tls_context {
 public:
  /// For clients: TLS 1.2+, peer verification on against the system's
  /// default trusted CAs. @throws tls_error.
  static tls_context client();
  /// For servers: TLS 1.2+, with this certificate chain and private key
  /// (PEM files); clients are not asked for certificates.
  /// @throws tls_error naming the file that could not be loaded, or a key
  /// that does not match the certificate.
  static tls_context server(const std::string& certificate_chain_file, const std::string& private_key_file);

  /// Trusts the CA certificates in this PEM file too (e.g. a private CA).
  /// @throws tls_error naming the file.
  void load_verify_file(const std::string& ca_file);
  /// Peer verification: on by default for clients, off for servers (on:
  /// a server then requires a client certificate).
  void set_verify(bool on);
  /// ALPN: for a client the protocols it offers, in preference order; for a
  /// server the ones it accepts, in its preference order (no overlap: the
  /// handshake goes on without ALPN). @throws std::invalid_argument for an
  /// empty or too long (> 255 bytes) name.
  void set_alpn(std::vector<std::string> protocols);

  /// The OpenSSL SSL_CTX, for settings not offered here.
  ssl_ctx_st* native_handle() const noexcept;

  struct state;

 private:
  explicit tls_context(std::shared_ptr<state> s) : state_(std::move(s)) {}
  friend class tls_transport;
  std::shared_ptr<state> state_;
};

class tls_transport {
 public:
  /// Runs the client handshake over `transport` (ownership passes), for
  /// `server_name`: the name (or IP address) the certificate must match and
  /// the SNI sent (for a DNS name). Checkpoint.
  /// @throws tls_error (the handshake failed: the transport is closed);
  /// std::system_error; weft::cancelled (the transport is closed).
  static tls_transport connect(stream_transport transport, const tls_context& context, std::string_view server_name);
  /// Runs the server handshake over `transport`. Checkpoint.
  /// @throws as connect().
  static tls_transport accept(stream_transport transport, const tls_context& context);

  tls_transport(tls_transport&&) noexcept;
  tls_transport& operator=(tls_transport&&) noexcept;
  /// Closes abortively if still open (as stream_transport's destructor).
  ~tls_transport();

  /// Receives up to min(n, max_recv_size) decrypted bytes; empty at end of
  /// stream (the peer's close_notify). Checkpoint.
  /// @throws tls_error (also for a truncated stream); std::system_error;
  /// weft::cancelled; busy_resource_error.
  std::string recv(std::size_t n);
  std::size_t recv_into(std::span<std::byte> buf);
  std::size_t recv_into(std::span<char> buf) { return recv_into(std::as_writable_bytes(buf)); }
  /// Encrypts and sends every byte. Checkpoint.
  void send_all(std::span<const std::byte> data);
  void send_all(std::string_view data) { send_all(std::as_bytes(std::span<const char>(data.data(), data.size()))); }
  /// Sends close_notify: the peer reads end of stream. Receiving still
  /// works. Checkpoint (it may have to wait for room in the socket buffer).
  void send_eof();
  /// Sends close_notify (unless cancelled, or already sent) and closes.
  /// Checkpoint after closing, as stream_transport::aclose.
  void aclose();
  bool is_closing() const noexcept;

  /// The protocol ALPN chose (empty: none).
  std::string alpn_protocol() const;
  /// The TLS version in use ("TLSv1.3").
  std::string protocol_version() const;
  /// Server side: the name the client sent as SNI (empty: none).
  std::string requested_server_name() const;
  /// The underlying transport (addresses, socket options).
  stream_transport& transport() noexcept;

  struct state;

 private:
  explicit tls_transport(std::unique_ptr<state> s) noexcept;
  state& usable(const char* what) const;
  std::unique_ptr<state> state_;
};

/// A stream_server (or stream_listener::serve) handler serving TLS: runs
/// the server handshake, limited to `handshake_timeout` (a handshake that
/// takes longer fails with std::errc::timed_out, which a stream_server
/// counts as a peer error), then handler(tls); when the handler returns,
/// sends close_notify and closes.
///
///   server.serve(weft::net::tls_handler(context, [](weft::net::tls_transport& conn) { ... }));
///
/// @throws std::invalid_argument (from the call that makes it) for an
/// empty handler or a timeout that is not positive.
std::function<void(stream_transport&)> tls_handler(tls_context context, std::function<void(tls_transport&)> handler,
                                                   duration handshake_timeout = std::chrono::seconds(10));

/// create_tcp_connection(host, port) followed by the client handshake for
/// host (see tls_transport::connect). Checkpoint.
/// @throws connect_error, tls_error, std::system_error, weft::cancelled.
tls_transport create_tls_connection(std::string_view host, int port, const tls_context& context);

}  // namespace weft::net

// weft::net servers: listeners plus what a server that must survive its
// clients needs.
//
//   weft::net::stream_server_options options;
//   options.idle_timeout = 30s;
//   options.shutdown_signals = {SIGINT, SIGTERM};
//   weft::net::stream_server server(weft::net::create_tcp_listeners("", 8080), options);
//   server.serve([](weft::net::stream_transport& conn) { ... });  // until SIGINT/SIGTERM, drained
//
// stream_listener::serve and datagram_listener::serve keep the structured
// semantics of a task group: an exception escaping one handler cancels the
// group, and so the whole server. The servers here isolate their handlers
// instead:
//  - **Errors.** A handler's exception ends its own connection (or datagram)
//    and nothing else. An error that says the peer went away (connection
//    reset, broken pipe, connection aborted, not connected, the idle
//    timeout; a TLS handshake that failed or a TLS stream cut short,
//    std::errc::protocol_error; from Asio or Beast code also end of stream,
//    asio::error::eof, in the middle of an exchange) is ordinary client
//    behaviour: it is counted in stats().peer_errors and
//    not reported. Any other exception is counted in stats().handler_errors
//    and handed once to weft::report_error, naming the peer. weft::cancelled
//    is never swallowed: it ends the handler, as everywhere.
//  - **Graceful shutdown.** shutdown(grace) stops accepting (the listeners
//    close), lets the running handlers finish for up to `grace`, then
//    cancels those still running; serve() returns once every handler has
//    ended. Handlers see it coming with shutting_down() and wait_shutdown(),
//    and can mark what may be dropped at once with until_shutdown().
//    With shutdown_signals set, serve() does that itself on the first of
//    those signals.
//  - **Limits.** At most max_connections connections are served at once
//    (more wait in the listen backlog, which defaults to the system maximum;
//    see create_tcp_listeners); a datagram server runs at most max_in_flight
//    handlers and stops reading while that many run, so a flood fills the
//    socket's receive buffer (the kernel drops the excess and dropped()
//    counts it) rather than memory.
//  - **Idle timeout.** With idle_timeout set, every receive on a connection
//    that has to wait for data fails with std::errc::timed_out once no byte
//    came for that long (stream_transport::set_recv_timeout): the clock
//    starts when the handler reads, not at accept. A limit on a whole
//    request is weft::timeout(d, fn) around the code that reads it.
//
// Cancelling the task that runs serve() is the abrupt stop: every handler is
// cancelled at once (their transports close abortively) and serve() throws
// weft::cancelled.
//
// A server belongs to the runtime of its listeners; call its functions from
// that runtime's tasks (shutdown() also from its Asio handlers).
#pragma once

#include <weft/function_ref.hpp>
#include <weft/net/listener.hpp>
#include <weft/sync/event.hpp>
#include <weft/time.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace weft {
class cancel_scope;
}

namespace weft::net {

/// Counters of a server, for monitoring and tests.
struct server_stats {
  std::uint64_t accepted = 0;        ///< connections accepted (stream) or datagrams received (datagram)
  std::size_t active = 0;            ///< handlers running now
  std::uint64_t completed = 0;       ///< handlers that returned normally
  std::uint64_t peer_errors = 0;     ///< handlers ended because the peer went away (not reported)
  std::uint64_t handler_errors = 0;  ///< handlers ended by any other exception (each reported)
  std::uint64_t cancelled = 0;       ///< handlers ended by a cancellation (the grace ran out, serve() cancelled)
};

struct stream_server_options {
  /// Connections served at once; 0 means no limit (beyond the process's
  /// descriptor limit: on EMFILE the server pauses accepting and retries).
  std::size_t max_connections = 0;
  /// Set on every accepted connection as its receive timeout (see
  /// stream_transport::set_recv_timeout); none by default.
  std::optional<duration> idle_timeout;
  /// Signals (e.g. SIGINT, SIGTERM) on the first of which serve() calls
  /// shutdown(shutdown_grace). Empty by default: the program decides.
  std::vector<int> shutdown_signals;
  /// The grace a signal gives (see shutdown()).
  duration shutdown_grace = std::chrono::seconds(10);
};

struct datagram_server_options {
  /// Handlers running at once; reading pauses while that many run. At least 1.
  std::size_t max_in_flight = 1024;
  std::vector<int> shutdown_signals;  ///< as for stream_server_options
  duration shutdown_grace = std::chrono::seconds(10);
};

namespace detail {

/// What both servers share: the handler count, shutdown and its grace, the
/// signal wait, and running one handler with its error isolation.
class server_core {
 public:
  server_core(const char* kind, std::vector<int> shutdown_signals, duration shutdown_grace);

  void shutdown(duration grace);
  bool shutting_down() const noexcept { return shutdown_started_.is_set(); }
  void wait_shutdown() { shutdown_started_.wait(); }
  bool until_shutdown(function_ref<void()> fn);
  const server_stats& stats() const noexcept { return stats_; }

  /// Marks the server as serving (once only). @throws std::logic_error.
  void start_serving(bool handler_empty);
  /// The body of serve(): runs start_workers(workers, handlers) in a nested
  /// group, waits for shutdown (or a signal), cancels the workers, calls
  /// stop_workers(), lets the handlers run out their grace, then cancels them.
  void run(function_ref<void(task_group& workers, task_group& handlers)> start_workers,
           function_ref<void()> stop_workers);
  /// A handler's task was started / has ended (ran or never ran).
  void handler_started() noexcept;
  void handler_ended() noexcept;
  /// Runs one handler, isolating its errors (see the header comment);
  /// `peer` names the peer in a report.
  void run_handler(function_ref<void()> handler, const endpoint& peer);

 private:
  /// In a catch block: counts the exception, and reports it unless it says
  /// the peer went away.
  void count_or_report(bool peer_error, const endpoint& peer) noexcept;

  const char* kind_;
  std::vector<int> signals_;
  duration signal_grace_;
  server_stats stats_;
  weft::event shutdown_started_;
  weft::event drained_;  // set when no handler runs after shutdown started
  time_point grace_end_ = inf_time;
  cancel_scope* grace_scope_ = nullptr;  // while serve() waits out the grace
  struct interruptible {                 // an until_shutdown() call running (on its task's stack)
    cancel_scope* scope;
    interruptible* prev;
    interruptible* next;
  };
  interruptible* interruptible_ = nullptr;  // the list of them
  bool served_ = false;
};

}  // namespace detail

/// A TCP or Unix stream server: one task per connection (see the header comment).
class stream_server {
 public:
  using handler = std::function<void(stream_transport&)>;

  /// Serves on `listeners` (at least one, all open). Not a checkpoint.
  /// @throws std::invalid_argument for no listener or a closed one.
  explicit stream_server(std::vector<stream_listener> listeners, stream_server_options options = {});
  explicit stream_server(stream_listener listener, stream_server_options options = {});
  stream_server(const stream_server&) = delete;
  stream_server& operator=(const stream_server&) = delete;
  ~stream_server();

  /// Accepts connections on every listener and runs handler(transport) in a
  /// task of its own for each; the transport is closed when the handler
  /// returns (TCP connections have TCP_NODELAY set). Blocks until shutdown()
  /// has run its course: returns once the listeners are closed and every
  /// handler has ended. A server serves once. Checkpoint.
  /// @throws weft::cancelled (handlers cancelled, listeners closed);
  /// std::invalid_argument if handler is empty; std::logic_error if this
  /// server has served already or serves now; std::system_error if a
  /// listener fails for good (after the handlers were cancelled).
  void serve(handler handler);

  /// Starts a graceful shutdown: no new connection is accepted (the
  /// listeners close, which resets connections still in their backlog),
  /// handlers running now get `grace` to finish, then those still running
  /// are cancelled. Called again, it can only shorten the grace. Before
  /// serve(), serve() returns at once. Not a checkpoint; never blocks.
  /// @throws std::invalid_argument for a negative grace.
  void shutdown(duration grace) { core_.shutdown(grace); }
  bool shutting_down() const noexcept { return core_.shutting_down(); }
  /// Blocks until shutdown starts (for handlers that should finish early).
  /// Checkpoint. @throws weft::cancelled.
  void wait_shutdown() { core_.wait_shutdown(); }
  /// Runs fn, cancelled if shutdown starts meanwhile: returns true if fn
  /// returned, false if the shutdown cancelled it (or had started before:
  /// fn does not run then). For the part of a handler that may be dropped
  /// at once when the server stops, such as waiting for the next request of
  /// a keep-alive connection; the rest of the handler keeps its grace.
  /// Checkpoint. @throws what fn throws; weft::cancelled for any other cancellation.
  bool until_shutdown(function_ref<void()> fn) { return core_.until_shutdown(fn); }

  const server_stats& stats() const noexcept { return core_.stats(); }
  /// The listeners' addresses (empty once they are closed).
  std::vector<endpoint> local_addresses() const;

 private:
  std::vector<stream_listener> listeners_;
  stream_server_options options_;
  detail::server_core core_;
};

/// A UDP or Unix datagram server: one task per datagram (see the header comment).
class datagram_server {
 public:
  using handler = datagram_listener::handler;

  /// Serves on `listeners` (at least one, all open). Not a checkpoint.
  /// @throws std::invalid_argument for no listener, a closed one, or max_in_flight 0.
  explicit datagram_server(std::vector<datagram_listener> listeners, datagram_server_options options = {});
  explicit datagram_server(datagram_listener listener, datagram_server_options options = {});
  datagram_server(const datagram_server&) = delete;
  datagram_server& operator=(const datagram_server&) = delete;
  ~datagram_server();

  /// Receives datagrams on every listener and runs handler(datagram, sender,
  /// listener) in a task of its own for each, at most max_in_flight at
  /// once. Blocks until shutdown() has run its course. Checkpoint.
  /// @throws as stream_server::serve.
  void serve(handler handler);

  /// As stream_server::shutdown: stops reading, waits up to `grace` for the
  /// handlers running, then cancels them.
  void shutdown(duration grace) { core_.shutdown(grace); }
  bool shutting_down() const noexcept { return core_.shutting_down(); }
  void wait_shutdown() { core_.wait_shutdown(); }
  bool until_shutdown(function_ref<void()> fn) { return core_.until_shutdown(fn); }

  const server_stats& stats() const noexcept { return core_.stats(); }
  /// Datagrams the kernel dropped on the listeners' sockets since they were
  /// opened (receive buffer full: the server reads no faster than its
  /// handlers finish), from SO_MEMINFO, still counted after serve() closed
  /// them; 0 where the system does not say.
  std::uint64_t dropped() const;
  std::vector<endpoint> local_addresses() const;

 private:
  std::vector<datagram_listener> listeners_;
  datagram_server_options options_;
  detail::server_core core_;
  std::uint64_t dropped_when_closed_ = 0;
};

}  // namespace weft::net

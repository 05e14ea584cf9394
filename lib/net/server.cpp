// weft::net::stream_server and datagram_server: error isolation, graceful
// shutdown, limits.

#include "net/io.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/net/server.hpp>
#include <weft/report_error.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/task_group.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/system/system_error.hpp>

#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace weft::net {

namespace detail {

namespace {

/// True for the errors that say the peer went away (or spoke the protocol
/// wrong: a failed TLS handshake, a truncated TLS stream), which a server
/// meets in the ordinary course of things: counted, not reported.
bool is_peer_error(const std::system_error& e) noexcept {
  const std::error_code& c = e.code();
  return c == std::errc::connection_reset || c == std::errc::broken_pipe || c == std::errc::connection_aborted ||
         c == std::errc::not_connected || c == std::errc::timed_out || c == std::errc::protocol_error;
}

/// "<kind>: the handler for <peer> failed", for the report.
std::string report_context(const char* kind, const endpoint& peer) {
  std::string s(kind);
  s += ": the handler for ";
  const std::string name = peer.is_ip() || peer.is_unix() ? peer.to_string() : std::string();
  s += name.empty() ? std::string("an unnamed peer") : name;
  s += " failed";
  return s;
}

/// The same for the errors of Asio and Beast code in a handler (end of
/// stream included: the peer left in the middle of an exchange).
bool is_peer_error(const boost::system::system_error& e) noexcept {
  namespace error = boost::asio::error;
  const boost::system::error_code& c = e.code();
  return c == error::connection_reset || c == error::broken_pipe || c == error::connection_aborted ||
         c == error::not_connected || c == error::timed_out || c == error::eof;
}

}  // namespace

server_core::server_core(const char* kind, std::vector<int> shutdown_signals, duration shutdown_grace)
    : kind_(kind), signals_(std::move(shutdown_signals)), signal_grace_(shutdown_grace) {
  if (!(shutdown_grace.count() >= 0))
    throw std::invalid_argument(std::string(kind) + ": shutdown_grace must not be negative or NaN");
  for (int s : signals_)
    if (s <= 0 || s >= NSIG)
      throw std::invalid_argument(std::string(kind) + ": " + std::to_string(s) + " is not a signal number");
}

void server_core::shutdown(duration grace) {
  if (!(grace.count() >= 0))
    throw std::invalid_argument(std::string(kind_) + "::shutdown: the grace must not be negative or NaN");
  const time_point end = weft::current_time() + grace;
  if (end < grace_end_) {
    grace_end_ = end;
    if (grace_scope_ != nullptr) grace_scope_->reschedule(end);
  }
  if (!shutdown_started_.is_set()) {
    shutdown_started_.set();
    for (interruptible* i = interruptible_; i != nullptr; i = i->next) i->scope->cancel();
    if (stats_.active == 0) drained_.set();
  }
}

bool server_core::until_shutdown(function_ref<void()> fn) {
  weft::lowlevel::raise_if_cancelled();
  if (shutting_down()) return false;
  cancel_scope scope;
  interruptible me{&scope, nullptr, interruptible_};
  if (interruptible_ != nullptr) interruptible_->prev = &me;
  interruptible_ = &me;
  struct unlink {
    interruptible*& head;
    interruptible& me;
    ~unlink() {
      if (me.prev != nullptr) me.prev->next = me.next;
      else head = me.next;
      if (me.next != nullptr) me.next->prev = me.prev;
    }
  } remove{interruptible_, me};
  scope.run(fn);
  return !scope.cancelled_caught();
}

void server_core::start_serving(bool handler_empty) {
  if (handler_empty) throw std::invalid_argument(std::string(kind_) + "::serve: the handler is empty");
  if (served_) throw std::logic_error(std::string(kind_) + "::serve: this server has served already (a server serves once)");
  served_ = true;
}

void server_core::run(function_ref<void(task_group&, task_group&)> start_workers, function_ref<void()> stop_workers) {
  weft::open_task_group([&](task_group& handlers) {
    weft::open_task_group([&](task_group& workers) {
      start_workers(workers, handlers);
      if (!signals_.empty()) {
        workers.start_soon(task_options{std::string(kind_) + ": shutdown on a signal"}, [this] {
          boost::asio::signal_set set(lowlevel::io_context());
          for (int s : signals_) set.add(s);
          set.async_wait(weft::use_fiber);
          shutdown(signal_grace_);
        });
      }
      shutdown_started_.wait();
      workers.cancel();
    });
    stop_workers();
    // The handlers running now get their grace; shutdown() may shorten it.
    cancel_scope grace(grace_end_);
    grace_scope_ = &grace;
    struct forget {
      cancel_scope*& scope;
      ~forget() { scope = nullptr; }
    } forget_scope{grace_scope_};
    grace.run([&] { drained_.wait(); });
    handlers.cancel();
  });
}

void server_core::handler_started() noexcept {
  ++stats_.accepted;
  ++stats_.active;
}

void server_core::handler_ended() noexcept {
  if (--stats_.active == 0 && shutdown_started_.is_set()) drained_.set();
}

void server_core::count_or_report(bool peer_error, const endpoint& peer) noexcept {
  if (peer_error) {
    ++stats_.peer_errors;
  } else {
    ++stats_.handler_errors;
    std::string context;
    try {
      context = report_context(kind_, peer);
    } catch (const std::bad_alloc&) {  // report without the peer
    }
    report_error(std::current_exception(), context.empty() ? std::string_view(kind_) : std::string_view(context));
  }
}

void server_core::run_handler(function_ref<void()> handler, const endpoint& peer) {
  try {
    handler();
    ++stats_.completed;
  } catch (const weft::cancelled&) {
    ++stats_.cancelled;
    throw;
  } catch (const std::system_error& e) {
    count_or_report(is_peer_error(e), peer);
  } catch (const boost::system::system_error& e) {
    count_or_report(is_peer_error(e), peer);
  } catch (...) {
    count_or_report(false, peer);
  }
}

}  // namespace detail

namespace {

template <class Listener>
std::vector<Listener> one(Listener l) {
  std::vector<Listener> v;
  v.push_back(std::move(l));
  return v;
}

template <class Listener>
void check_listeners(const std::vector<Listener>& listeners, const char* what) {
  if (listeners.empty()) throw std::invalid_argument(std::string(what) + ": no listener to serve on");
  for (const auto& l : listeners)
    if (l.is_closing()) throw std::invalid_argument(std::string(what) + ": a listener is closed");
}

template <class Listener>
std::vector<endpoint> addresses(const std::vector<Listener>& listeners) {
  std::vector<endpoint> out;
  for (const auto& l : listeners)
    if (!l.is_closing()) out.push_back(l.local_address());
  return out;
}

/// One handler's place: counted from the moment its task is started until
/// that task's function is destroyed (it ran, or it never got to run), and
/// its unit of the server's limit, if it has one.
class handler_ticket {
 public:
  handler_ticket(detail::server_core& core, semaphore* limit) noexcept : core_(&core), limit_(limit) {
    core.handler_started();
  }
  handler_ticket(handler_ticket&& o) noexcept
      : core_(std::exchange(o.core_, nullptr)), limit_(std::exchange(o.limit_, nullptr)) {}
  handler_ticket& operator=(handler_ticket&&) = delete;
  ~handler_ticket() {
    if (core_ == nullptr) return;
    core_->handler_ended();
    if (limit_ != nullptr) limit_->release();
  }

 private:
  detail::server_core* core_;
  semaphore* limit_;
};

}  // namespace

// --- stream_server -------------------------------------------------------------------

stream_server::stream_server(std::vector<stream_listener> listeners, stream_server_options options)
    : listeners_(std::move(listeners)),
      options_(std::move(options)),
      core_("weft::net::stream_server", options_.shutdown_signals, options_.shutdown_grace) {
  check_listeners(listeners_, "weft::net::stream_server");
  if (options_.idle_timeout && !(options_.idle_timeout->count() > 0))
    throw std::invalid_argument("weft::net::stream_server: idle_timeout must be positive");
}
stream_server::stream_server(stream_listener listener, stream_server_options options)
    : stream_server(one(std::move(listener)), std::move(options)) {}
stream_server::~stream_server() = default;

std::vector<endpoint> stream_server::local_addresses() const { return addresses(listeners_); }

void stream_server::serve(handler h) {
  weft::lowlevel::raise_if_cancelled();
  core_.start_serving(!h);
  auto shared = std::make_shared<handler>(std::move(h));
  // Without a limit the accept loop takes no unit per connection.
  std::optional<semaphore> limit;
  if (options_.max_connections != 0) limit.emplace(options_.max_connections);
  semaphore* const places = limit ? &*limit : nullptr;
  core_.run(
      [&](task_group& workers, task_group& handlers) {
        for (auto& l : listeners_) {
          workers.start_soon(task_options{"weft::net::stream_server: accept"}, [&, shared] {
            l.accept_loop(
                [&](stream_transport transport) {
                  handlers.start_soon(task_options{"weft::net::stream_server: connection"},
                                      [this, shared, ticket = handler_ticket(core_, places),
                                       transport = std::move(transport)]() mutable {
                    struct closer {
                      stream_transport& t;
                      ~closer() { t.close_now(); }  // gracefully, or abortively once cancelled
                    } close_on_exit{transport};
                    if (options_.idle_timeout) transport.set_recv_timeout(options_.idle_timeout);
                    endpoint peer;
                    try {
                      peer = transport.peer_address();
                    } catch (const std::system_error&) {  // gone already: the handler finds out
                    }
                    core_.run_handler([&] { (*shared)(transport); }, peer);
                  });
                },
                places);
          });
        }
      },
      [&] {
        for (auto& l : listeners_) l.aclose();
      });
}

// --- datagram_server -----------------------------------------------------------------

datagram_server::datagram_server(std::vector<datagram_listener> listeners, datagram_server_options options)
    : listeners_(std::move(listeners)),
      options_(std::move(options)),
      core_("weft::net::datagram_server", options_.shutdown_signals, options_.shutdown_grace) {
  check_listeners(listeners_, "weft::net::datagram_server");
  if (options_.max_in_flight == 0)
    throw std::invalid_argument("weft::net::datagram_server: max_in_flight must be at least 1");
}
datagram_server::datagram_server(datagram_listener listener, datagram_server_options options)
    : datagram_server(one(std::move(listener)), std::move(options)) {}
datagram_server::~datagram_server() = default;

std::vector<endpoint> datagram_server::local_addresses() const { return addresses(listeners_); }

namespace {
// SK_MEMINFO_DROPS of a datagram socket: what the kernel dropped on it
// (receive buffer full); 0 where SO_MEMINFO is not known.
std::uint64_t drops_of(int fd) noexcept {
  std::uint32_t info[SK_MEMINFO_VARS] = {};
  socklen_t size = sizeof info;
  if (::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &size) == 0 &&
      size >= sizeof(std::uint32_t) * (SK_MEMINFO_DROPS + 1))
    return info[SK_MEMINFO_DROPS];
  return 0;
}
}  // namespace

std::uint64_t datagram_server::dropped() const {
  std::uint64_t total = dropped_when_closed_;
  for (auto& l : listeners_)
    if (!l.is_closing()) total += drops_of(const_cast<datagram_listener&>(l).socket().native_handle());
  return total;
}

void datagram_server::serve(handler h) {
  weft::lowlevel::raise_if_cancelled();
  core_.start_serving(!h);
  auto shared = std::make_shared<handler>(std::move(h));
  semaphore limit(options_.max_in_flight);
  core_.run(
      [&](task_group& workers, task_group& handlers) {
        for (auto& l : listeners_) {
          workers.start_soon(task_options{"weft::net::datagram_server: receive"}, [&, shared] {
            for (;;) {
              limit.acquire();  // reading pauses while max_in_flight handlers run
              struct unit {
                semaphore* limit;
                ~unit() {
                  if (limit) limit->release();
                }
              } held{&limit};
              auto [datagram, from] = l.recv_from();  // a checkpoint
              held.limit = nullptr;  // from here the handler's ticket owns the unit
              handlers.start_soon(task_options{"weft::net::datagram_server: datagram"},
                                  [this, shared, &l, ticket = handler_ticket(core_, &limit),
                                   datagram = std::move(datagram), from = std::move(from)]() mutable {
                core_.run_handler([&] { (*shared)(std::move(datagram), from, l); }, from);
              });
            }
          });
        }
      },
      [] {});  // the sockets stay open: handlers in their grace still reply
  for (auto& l : listeners_) {
    if (l.is_closing()) continue;
    dropped_when_closed_ += drops_of(l.socket().native_handle());
    l.aclose();
  }
}

}  // namespace weft::net

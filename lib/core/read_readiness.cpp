// lowlevel::read_may_find_data, note_read_drained, note_short_read and
// read_wait (see lowlevel/read_readiness.hpp): the epoll reactor's
// per-socket "try a read at once" flag, reached through the socket's
// implementation, and a reactor operation that waits for readability.

#include "core/boost_pin.hpp"

#include <weft/detail/core.hpp>
#include <weft/lowlevel/read_readiness.hpp>

#if !defined(WEFT_PORTABLE_ASIO) && (!defined(BOOST_ASIO_HAS_EPOLL) || defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT))
#define WEFT_PORTABLE_READ_READINESS 1  // another reactor than the one checked
#endif

#if !defined(WEFT_PORTABLE_ASIO) && !defined(WEFT_PORTABLE_READ_READINESS)
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/reactive_socket_service.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>

#include <sys/epoll.h>
#include <sys/socket.h>
#else
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#endif

#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace weft::lowlevel {

using stream_socket = boost::asio::generic::stream_protocol::socket;
using datagram_socket = boost::asio::generic::datagram_protocol::socket;

struct read_wait_access {
  static unsigned char* storage(read_wait& w) noexcept { return w.storage_; }
  static constexpr std::size_t storage_size = read_wait::storage_size;
  static void begin(read_wait& w, void* reactor_data, int descriptor, read_wait::callback cb, void* context) noexcept {
    w.reactor_data_ = reactor_data;
    w.descriptor_ = descriptor;
    w.cb_ = cb;
    w.context_ = context;
    w.pending_ = true;
  }
  static bool pending(const read_wait& w) noexcept { return w.pending_; }
  static void* reactor_data(const read_wait& w) noexcept { return w.reactor_data_; }
  static int descriptor(const read_wait& w) noexcept { return w.descriptor_; }
  // After the wait's own state is gone: the callback may end w's life.
  static void complete(read_wait& w, const boost::system::error_code& ec, bool abandoned) noexcept {
    w.pending_ = false;
    w.cb_(w.context_, ec, abandoned);
  }
};

#if defined(WEFT_PORTABLE_ASIO) || defined(WEFT_PORTABLE_READ_READINESS)

bool read_may_find_data(stream_socket&) noexcept { return true; }
bool read_may_find_data(datagram_socket&) noexcept { return true; }
void note_read_drained(stream_socket&) noexcept {}
void note_read_drained(datagram_socket&) noexcept {}
void note_short_read(stream_socket&) noexcept {}

namespace {
using signal = boost::asio::cancellation_signal;
static_assert(sizeof(signal) <= read_wait_access::storage_size);

signal& signal_of(read_wait& w) noexcept {
  return *std::launder(reinterpret_cast<signal*>(read_wait_access::storage(w)));
}

// Called, or destroyed uncalled when the io_context goes.
class wait_handler {
 public:
  explicit wait_handler(read_wait& w) noexcept : w_(&w) {}
  wait_handler(wait_handler&& o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
  wait_handler& operator=(wait_handler&&) = delete;
  ~wait_handler() {
    if (w_ != nullptr) finish(*w_, {}, true);
  }
  void operator()(const boost::system::error_code& ec) { finish(*std::exchange(w_, nullptr), ec, false); }

 private:
  static void finish(read_wait& w, const boost::system::error_code& ec, bool abandoned) noexcept {
    signal_of(w).~signal();
    read_wait_access::complete(w, ec, abandoned);
  }
  read_wait* w_;
};

template <class Socket>
void start_wait(read_wait& w, Socket& s, read_wait::callback cb, void* context) noexcept {
  read_wait_access::begin(w, nullptr, -1, cb, context);
  signal* sig = ::new (static_cast<void*>(read_wait_access::storage(w))) signal();
  s.async_wait(Socket::wait_read, boost::asio::bind_cancellation_slot(sig->slot(), wait_handler(w)));
}
}  // namespace

WEFT_HOT void read_wait::start(stream_socket& s, callback cb, void* context) noexcept { start_wait(*this, s, cb, context); }
WEFT_HOT void read_wait::start(datagram_socket& s, callback cb, void* context) noexcept { start_wait(*this, s, cb, context); }

void read_wait::cancel() noexcept {
  if (pending_) signal_of(*this).emit(boost::asio::cancellation_type::terminal);
}

#else

namespace {
namespace ad = boost::asio::detail;
using state = ad::epoll_reactor::descriptor_state;
using reactor_data = ad::epoll_reactor::per_descriptor_data;  // state*, null once the socket is closed

template <class Protocol>
using socket_base_of = boost::asio::basic_socket<Protocol, boost::asio::any_io_executor>;
template <class Protocol>
using socket_impl = ad::io_object_impl<ad::reactive_socket_service<Protocol>, boost::asio::any_io_executor>;

// Private members, named through explicit instantiation (access is not
// checked there, [temp.spec.general]).
struct stream_impl_member {
  using type = socket_impl<boost::asio::generic::stream_protocol> socket_base_of<boost::asio::generic::stream_protocol>::*;
  friend type member_of(stream_impl_member) noexcept;
};
struct datagram_impl_member {
  using type =
      socket_impl<boost::asio::generic::datagram_protocol> socket_base_of<boost::asio::generic::datagram_protocol>::*;
  friend type member_of(datagram_impl_member) noexcept;
};
template <class Protocol>
using impl_member =
    std::conditional_t<std::is_same_v<Protocol, boost::asio::generic::stream_protocol>, stream_impl_member,
                       datagram_impl_member>;
struct mutex_member {
  using type = ad::conditionally_enabled_mutex state::*;
  friend type member_of(mutex_member) noexcept;
};
struct reactor_member {
  using type = ad::epoll_reactor* state::*;
  friend type member_of(reactor_member) noexcept;
};
struct registered_events_member {
  using type = std::uint32_t state::*;
  friend type member_of(registered_events_member) noexcept;
};
struct task_result_member {  // the events of the socket's last readiness report
  using type = unsigned int ad::scheduler_operation::*;
  friend type member_of(task_result_member) noexcept;
};
struct epoll_fd_member {
  using type = int ad::epoll_reactor::*;
  friend type member_of(epoll_fd_member) noexcept;
};
struct try_speculative_member {
  using type = bool (state::*)[ad::epoll_reactor::max_ops];
  friend type member_of(try_speculative_member) noexcept;
};
template <class Name, typename Name::type Member>
struct grant {
  friend typename Name::type member_of(Name) noexcept { return Member; }
};
template struct grant<stream_impl_member, &socket_base_of<boost::asio::generic::stream_protocol>::impl_>;
template struct grant<datagram_impl_member, &socket_base_of<boost::asio::generic::datagram_protocol>::impl_>;
template struct grant<mutex_member, &state::mutex_>;
template struct grant<try_speculative_member, &state::try_speculative_>;
template struct grant<reactor_member, &state::reactor_>;
template struct grant<registered_events_member, &state::registered_events_>;
template struct grant<task_result_member, &ad::scheduler_operation::task_result_>;
template struct grant<epoll_fd_member, &ad::epoll_reactor::epoll_fd_>;

template <class Protocol>
auto& implementation_of(socket_base_of<Protocol>& s) noexcept {
  return (s.*member_of(impl_member<Protocol>{})).get_implementation();
}

template <class Protocol>
reactor_data& data_of(socket_base_of<Protocol>& s) noexcept {
  return implementation_of(s).reactor_data_;
}

bool& try_read_at_once(state* st) noexcept {
  return (st->*member_of(try_speculative_member{}))[ad::epoll_reactor::read_op];
}

// descriptor_state is a scheduler_operation through a private base; a
// C-style cast may name it ([expr.cast]).
unsigned int last_reported_events(state* st) noexcept {
  return ((ad::scheduler_operation*)st)->*member_of(task_result_member{});  // NOLINT(google-readability-casting)
}

template <class Protocol>
bool may_find_data(socket_base_of<Protocol>& s) noexcept {
  state* st = data_of(s);
  if (st == nullptr) return true;  // closed: let the read report it
  ad::conditionally_enabled_mutex::scoped_lock lock(st->*member_of(mutex_member{}));
  return try_read_at_once(st);
}

template <class Protocol>
void drained(socket_base_of<Protocol>& s) noexcept {
  state* st = data_of(s);
  if (st == nullptr) return;
  ad::conditionally_enabled_mutex::scoped_lock lock(st->*member_of(mutex_member{}));
  try_read_at_once(st) = false;
}

// A reactor operation that is done as soon as it is performed: queued behind
// the socket's readiness, it completes at the next readable edge.
class readable_op : public ad::reactor_op {
 public:
  explicit readable_op(read_wait& w) noexcept
      : reactor_op(boost::system::error_code(), &do_perform, &do_complete), wait_(&w) {
    cancellation_key_ = &w;
  }

 private:
  static status do_perform(ad::reactor_op*) noexcept { return done; }
  // owner is null when the io_context destroys the operation uncompleted.
  static void do_complete(void* owner, ad::operation* base, const boost::system::error_code&, std::size_t) {
    auto* op = static_cast<readable_op*>(base);
    read_wait& w = *op->wait_;
    const boost::system::error_code ec = op->ec_;
    op->~readable_op();
    read_wait_access::complete(w, ec, owner == nullptr);
  }
  read_wait* wait_;
};
static_assert(sizeof(readable_op) <= read_wait_access::storage_size &&
              alignof(readable_op) <= alignof(std::max_align_t));

template <class Protocol>
void start_wait(read_wait& w, socket_base_of<Protocol>& s, read_wait::callback cb, void* context) noexcept {
  reactor_data& data = data_of(s);
  read_wait_access::begin(w, &data, s.native_handle(), cb, context);
  auto* op = ::new (static_cast<void*>(read_wait_access::storage(w))) readable_op(w);
  if (data == nullptr) {  // closed: as Asio reports a read on a closed socket
    op->ec_ = boost::asio::error::bad_descriptor;
    auto& reactor = boost::asio::use_service<ad::epoll_reactor>(
        boost::asio::query(s.get_executor(), boost::asio::execution::context));
    reactor.post_immediate_completion(op, false);
    return;
  }
  // Done at once (readable) if the reactor may have data for the socket;
  // otherwise queued for the next readable edge, without a system call.
  (data->*member_of(reactor_member{}))
      ->start_op(ad::epoll_reactor::read_op, s.native_handle(), data, op, false, /*allow_speculative=*/true);
}
}  // namespace

WEFT_HOT bool read_may_find_data(stream_socket& s) noexcept { return may_find_data(s); }
WEFT_HOT bool read_may_find_data(datagram_socket& s) noexcept { return may_find_data(s); }
WEFT_HOT void note_read_drained(stream_socket& s) noexcept { drained(s); }
WEFT_HOT void note_read_drained(datagram_socket& s) noexcept { drained(s); }

WEFT_HOT void note_short_read(stream_socket& s) noexcept {
  state* st = data_of(s);
  if (st == nullptr) return;
  const int family = implementation_of(s).protocol_.family();
  if (family != AF_INET && family != AF_INET6) return;  // a Unix socket's read may end at a change of sender
  ad::conditionally_enabled_mutex::scoped_lock lock(st->*member_of(mutex_member{}));
  // An end of stream or error already reported may be what the short read
  // left behind: the next read must try at once.
  if (last_reported_events(st) & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) return;
  std::uint32_t& registered = st->*member_of(registered_events_member{});
  if ((registered & EPOLLRDHUP) == 0) {
    // From now on every report shows an end of stream that has arrived.
    // Re-arming reports at once whatever is there already (an end of
    // stream that came before), as a new edge.
    epoll_event ev{};
    ev.events = registered | EPOLLRDHUP;
    ev.data.ptr = st;
    ad::epoll_reactor& reactor = *(st->*member_of(reactor_member{}));
    if (::epoll_ctl(reactor.*member_of(epoll_fd_member{}), EPOLL_CTL_MOD, s.native_handle(), &ev) != 0) return;
    registered |= EPOLLRDHUP;
  }
  try_read_at_once(st) = false;
}

WEFT_HOT void read_wait::start(stream_socket& s, callback cb, void* context) noexcept { start_wait(*this, s, cb, context); }
WEFT_HOT void read_wait::start(datagram_socket& s, callback cb, void* context) noexcept { start_wait(*this, s, cb, context); }

void read_wait::cancel() noexcept {
  if (!pending_) return;
  reactor_data& data = *static_cast<reactor_data*>(reactor_data_);
  if (data == nullptr) return;  // closed: the close ended the wait
  (data->*member_of(reactor_member{}))->cancel_ops_by_key(descriptor_, data, ad::epoll_reactor::read_op, this);
}

#endif

}  // namespace weft::lowlevel

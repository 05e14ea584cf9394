// lowlevel::read_may_find_data and note_read_drained (see
// lowlevel/read_readiness.hpp): the epoll reactor's per-socket "try a read
// at once" flag, reached through the socket's implementation.

#include "core/boost_pin.hpp"

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
#else
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#endif

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstdint>
#include <new>
#include <utility>

namespace weft::lowlevel {

struct read_wait_access {
  static unsigned char* storage(read_wait& w) noexcept { return w.storage_; }
  static constexpr std::size_t storage_size = read_wait::storage_size;
  static void begin(read_wait& w, boost::asio::generic::stream_protocol::socket& s, read_wait::callback cb,
                    void* context) noexcept {
    w.socket_ = &s;
    w.cb_ = cb;
    w.context_ = context;
    w.pending_ = true;
  }
  static bool pending(const read_wait& w) noexcept { return w.pending_; }
  static boost::asio::generic::stream_protocol::socket& socket(const read_wait& w) noexcept { return *w.socket_; }
  // After the wait's own state is gone: the callback may end w's life.
  static void complete(read_wait& w, const boost::system::error_code& ec, bool abandoned) noexcept {
    w.pending_ = false;
    w.cb_(w.context_, ec, abandoned);
  }
};

#if defined(WEFT_PORTABLE_ASIO) || defined(WEFT_PORTABLE_READ_READINESS)

bool read_may_find_data(boost::asio::generic::stream_protocol::socket&) noexcept { return true; }
void note_read_drained(boost::asio::generic::stream_protocol::socket&) noexcept {}
void note_short_read(boost::asio::generic::stream_protocol::socket&) noexcept {}

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
}  // namespace

void read_wait::start(boost::asio::generic::stream_protocol::socket& s, callback cb, void* context) noexcept {
  read_wait_access::begin(*this, s, cb, context);
  signal* sig = ::new (static_cast<void*>(storage_)) signal();
  s.async_wait(boost::asio::socket_base::wait_read, boost::asio::bind_cancellation_slot(sig->slot(), wait_handler(*this)));
}

void read_wait::cancel() noexcept {
  if (pending_) signal_of(*this).emit(boost::asio::cancellation_type::terminal);
}

#else

namespace {
namespace ad = boost::asio::detail;
using stream_socket = boost::asio::generic::stream_protocol::socket;
using socket_base_of = boost::asio::basic_socket<boost::asio::generic::stream_protocol, boost::asio::any_io_executor>;
using socket_impl = ad::io_object_impl<ad::reactive_socket_service<boost::asio::generic::stream_protocol>,
                                       boost::asio::any_io_executor>;
using state = ad::epoll_reactor::descriptor_state;

// Private members, named through explicit instantiation (access is not
// checked there, [temp.spec.general]).
struct impl_member {
  using type = socket_impl socket_base_of::*;
  friend type member_of(impl_member) noexcept;
};
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
template struct grant<impl_member, &socket_base_of::impl_>;
template struct grant<mutex_member, &state::mutex_>;
template struct grant<try_speculative_member, &state::try_speculative_>;
template struct grant<reactor_member, &state::reactor_>;
template struct grant<registered_events_member, &state::registered_events_>;
template struct grant<task_result_member, &ad::scheduler_operation::task_result_>;
template struct grant<epoll_fd_member, &ad::epoll_reactor::epoll_fd_>;

auto& implementation_of(stream_socket& s) noexcept {
  socket_base_of& base = s;
  return (base.*member_of(impl_member{})).get_implementation();
}

// The reactor's data of the socket: null once it is closed.
ad::epoll_reactor::per_descriptor_data& state_of(stream_socket& s) noexcept {
  return implementation_of(s).reactor_data_;
}

// descriptor_state is a scheduler_operation through a private base; a
// C-style cast may name it ([expr.cast]).
unsigned int last_reported_events(state* st) noexcept {
  return ((ad::scheduler_operation*)st)->*member_of(task_result_member{});  // NOLINT(google-readability-casting)
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
}  // namespace

void note_short_read(stream_socket& s) noexcept {
  state* st = state_of(s);
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
  (st->*member_of(try_speculative_member{}))[ad::epoll_reactor::read_op] = false;
}

void read_wait::start(stream_socket& s, callback cb, void* context) noexcept {
  read_wait_access::begin(*this, s, cb, context);
  auto* op = ::new (static_cast<void*>(storage_)) readable_op(*this);
  ad::epoll_reactor::per_descriptor_data& data = state_of(s);
  if (data == nullptr) {  // closed: as Asio reports a read on a closed socket
    op->ec_ = boost::asio::error::bad_descriptor;
    auto& reactor = boost::asio::use_service<ad::epoll_reactor>(
        boost::asio::query(s.get_executor(), boost::asio::execution::context));
    reactor.post_immediate_completion(op, false);
    return;
  }
  // Tried at once (done: readable) only if the reactor may have data for
  // the socket; otherwise queued for the next readable edge, without a
  // system call.
  (data->*member_of(reactor_member{}))
      ->start_op(ad::epoll_reactor::read_op, s.native_handle(), data, op, false, /*allow_speculative=*/true);
}

void read_wait::cancel() noexcept {
  if (!pending_) return;
  ad::epoll_reactor::per_descriptor_data& data = state_of(*socket_);
  if (data == nullptr) return;  // closed: the close ended the wait
  (data->*member_of(reactor_member{}))
      ->cancel_ops_by_key(socket_->native_handle(), data, ad::epoll_reactor::read_op, this);
}

bool read_may_find_data(stream_socket& s) noexcept {
  state* st = state_of(s);
  if (st == nullptr) return true;  // closed: let the read report it
  ad::conditionally_enabled_mutex::scoped_lock lock(st->*member_of(mutex_member{}));
  return (st->*member_of(try_speculative_member{}))[ad::epoll_reactor::read_op];
}

void note_read_drained(stream_socket& s) noexcept {
  state* st = state_of(s);
  if (st == nullptr) return;
  ad::conditionally_enabled_mutex::scoped_lock lock(st->*member_of(mutex_member{}));
  (st->*member_of(try_speculative_member{}))[ad::epoll_reactor::read_op] = false;
}

#endif

}  // namespace weft::lowlevel

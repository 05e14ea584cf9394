// A tour of weft's extension interface, for code that builds its own
// blocking primitives: a one-shot value on park / reschedule, a plain
// thread's result waited through a completion, an asio::awaitable waited
// from the parts use_fiber is made of, a non-blocking socket read loop on
// the reactor's read readiness, system tasks, soon calls and recycled
// memory; with weft::function_ref and weft::use_fiber. Every result is checked.
#include <weft/lowlevel/asio.hpp>
#include <weft/lowlevel/completion.hpp>
#include <weft/lowlevel/dump.hpp>
#include <weft/lowlevel/frame_pool.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/lowlevel/read_readiness.hpp>
#include <weft/lowlevel/system_task.hpp>
#include <weft/testing/manual_clock.hpp>
#include <weft/testing/wait_all_tasks_blocked.hpp>
#include <weft/weft.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

using namespace std::chrono_literals;
namespace ll = weft::lowlevel;

namespace {

bool failed = false;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    failed = true;
  }
}

// --- a blocking primitive on park / reschedule -----------------------------------------------

// A value handed to one waiting task, once. The park contract: register the
// task, park; whoever sets the value reschedules it exactly once, and a
// cancellation calls abort, which here withdraws the registration.
template <class T>
class oneshot {
 public:
  /// Blocks until set() has run. A checkpoint. @throws weft::cancelled.
  T take() {
    if (value_) {
      ll::raise_if_cancelled();  // a checkpoint even when it would not block
    } else {
      waiter_ = ll::current_task();
      ll::describe_wait("a oneshot value");  // what dump_tasks shows meanwhile
      ll::park([this]() noexcept {
        waiter_ = {};  // withdrawn: set() finds nobody to wake, park throws cancelled
        return ll::abort_result::succeeded;
      });
    }
    return std::move(*value_);
  }
  /// Never blocks; on the runtime's thread (in a task or outside any).
  void set(T v) {
    value_.emplace(std::move(v));
    if (waiter_) ll::reschedule(std::exchange(waiter_, {}));
  }
  bool waiting() const noexcept { return static_cast<bool>(waiter_); }

 private:
  std::optional<T> value_;
  ll::task_ref waiter_;
};

// A set() queued to run at the next pass of the loop, outside any task
// (where nothing may block), without a trip through the io_context.
struct deferred_set final : ll::soon_call {
  oneshot<int>* target = nullptr;
  int value = 0;
  bool ran_in_task = true;
};

void primitives() {
  oneshot<int> answer;
  deferred_set later;
  weft::open_task_group([&](weft::task_group& tg) {
    tg.start_soon(weft::task_options{"consumer"}, [&] { check(answer.take() == 42, "the value reaches the waiter"); });
    weft::testing::wait_all_tasks_blocked();
    std::ostringstream dump;
    ll::dump_tasks(dump);
    check(answer.waiting() && dump.str().find("parked: a oneshot value") != std::string::npos,
          "describe_wait names the wait in dumps");
    later.target = &answer;
    later.value = 42;
    later.fn = [](ll::soon_call* call) noexcept {
      auto& self = *static_cast<deferred_set*>(call);
      self.ran_in_task = ll::in_task();
      self.target->set(self.value);
    };
    ll::call_soon(later);  // `later` must stay alive until it has run
  });
  check(!later.ran_in_task, "the soon call ran outside any task");

  // Cancelled while parked: abort withdraws the wait and park throws.
  oneshot<int> never;
  auto deadline = weft::move_on_after(2s);
  deadline.run([&] { never.take(); });
  check(deadline.cancelled_caught() && !never.waiting(), "abort withdrew the cancelled wait");
  weft::cancel_scope scope;
  bool pending = false;
  scope.cancel();
  scope.run([&] {
    pending = ll::cancellation_pending();  // asks without throwing: not a checkpoint
    never.take();                          // already cancelled: abort runs inside park
  });
  check(pending && scope.cancelled_caught(), "cancellation_pending, then park in a cancelled task");
}

// --- completion: waiting for a plain thread --------------------------------------------------

// Runs work(stop) on a plain std::thread while the task parks. The work
// cannot be withdrawn: a cancellation only sets `stop` and waits for it.
long on_plain_thread(weft::function_ref<long(const std::atomic<bool>&)> work, bool& saw_stop) {
  ll::completion done;
  check(done.task() == ll::current_task(), "a completion belongs to the task that made it");
  std::atomic<bool> stop{false};
  long result = 0;
  done.hold();  // the thread writes `saw_stop` after complete(): wait() must wait for that too
  std::thread worker([&] {
    result = work(stop);
    done.complete();  // from any thread: the wake is handed to the task's runtime
    saw_stop = stop;
    done.release();
  });
  done.wait(
      [&]() noexcept {
        stop = true;
        return ll::abort_result::failed;  // the task waits on; the cancellation comes afterwards
      },
      "a plain thread");
  worker.join();  // it has nothing left to do but return
  ll::raise_if_cancelled();  // a cancelled wait does not pass off a partial result
  return result;
}

void completions() {
  bool saw_stop = true;
  auto compute = [](const std::atomic<bool>&) { return 6L * 7; };
  check(on_plain_thread(compute, saw_stop) == 42 && !saw_stop, "a plain thread's result");

  auto until_stopped = [](const std::atomic<bool>& stop) {
    while (!stop) std::this_thread::yield();
    return -1L;
  };
  auto deadline = weft::move_on_after(5s);  // manual clock: jumps there once everything waits
  deadline.run([&] { on_plain_thread(until_stopped, saw_stop); });
  check(deadline.cancelled_caught() && saw_stop, "a cancellation stops the thread's work");
}

// --- an Asio operation, from the parts of use_fiber -------------------------------------------

struct awaitable_state {
  std::exception_ptr error;
  int value = 0;
  ll::completion done;
  std::atomic<bool> finished{false};  // read by a forwarded cancellation
  bool abandoned = false;
};

// co_spawn's completion handler. Destroyed uncalled, the coroutine was
// destroyed unfinished: the wait ends as abandoned instead of hanging.
struct awaitable_handler {
  awaitable_state* s;
  explicit awaitable_handler(awaitable_state* state) noexcept : s(state) {}
  awaitable_handler(awaitable_handler&& o) noexcept : s(std::exchange(o.s, nullptr)) {}
  ~awaitable_handler() {
    if (s != nullptr) {
      s->abandoned = true;
      s->done.complete();
    }
  }
  void operator()(std::exception_ptr e, int v) noexcept {
    awaitable_state* state = std::exchange(s, nullptr);
    state->error = e;
    state->value = v;
    state->finished.store(true, std::memory_order_release);
    state->done.complete();  // last: the task may resume at once
  }
  using allocator_type = ll::recycling_allocator<void>;  // operation memory recycled per thread
  allocator_type get_allocator() const noexcept { return {}; }
};

// Waits for an asio::awaitable<int>. A checkpoint. @throws its exception;
// weft::cancelled; weft::abandoned_error.
int wait_for(boost::asio::awaitable<int> aw) {
  ll::raise_if_cancelled();
  awaitable_state s;
  ll::operation_signal signal;  // outlives the coroutine: we wait for its end
  auto& io = ll::io_context();
  ll::run_as_asio_handler(io, [&] {  // co_spawn dispatches: its first steps run here, at once
    auto handler = boost::asio::bind_cancellation_slot(signal->slot(), awaitable_handler(&s));
    boost::asio::co_spawn(io, std::move(aw), std::move(handler));
  });
  bool cancel_requested = false;
  auto abort = [&]() noexcept {
    if (!cancel_requested) {  // once: the emit runs on the operation's executor, holding `done`
      cancel_requested = true;
      ll::forward_cancellation(io.get_executor(), s.done, signal.get(), s.finished);
    }
    return ll::abort_result::failed;  // the coroutine ends (aborted) and completes us
  };
  s.done.wait(abort, "an asio::awaitable");
  if (s.abandoned) ll::throw_abandoned("wait_for");
  if (s.error) {
    if (cancel_requested) ll::raise_if_cancelled();
    std::rethrow_exception(s.error);
  }
  return s.value;
}

boost::asio::awaitable<int> answer_after(std::chrono::milliseconds d, bool& in_task, bool& aborted) {
  in_task = ll::in_task();
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, d);
  try {
    co_await timer.async_wait(boost::asio::use_awaitable);
  } catch (const boost::system::system_error& e) {
    aborted = e.code() == boost::asio::error::operation_aborted;
    throw;
  }
  co_return 42;
}

void asio_operations() {
  bool in_task = true, aborted = false;
  check(wait_for(answer_after(1ms, in_task, aborted)) == 42 && !in_task, "the awaitable ran as an Asio handler");
  auto deadline = weft::move_on_after(5s);  // manual clock: jumps there once everything waits
  deadline.run([&] { wait_for(answer_after(1h, in_task, aborted)); });
  check(deadline.cancelled_caught() && aborted, "the cancellation reached the Asio timer");
}

// --- a read loop on the reactor's read readiness ---------------------------------------------

using generic_socket = boost::asio::generic::stream_protocol::socket;

// Parks until the reactor reports `s` readable. Cancelling the task cancels
// the wait, whose callback still runs: it alone reschedules the task.
void wait_readable(generic_socket& s) {
  struct waiter {
    ll::read_wait wait;
    ll::task_ref parked;
    boost::system::error_code ec;
    bool done = false;
  } w;
  auto on_ready = [](void* context, const boost::system::error_code& ec, bool /*abandoned*/) noexcept {
    auto& self = *static_cast<waiter*>(context);
    self.ec = ec;
    self.done = true;
    if (self.parked) ll::reschedule(std::exchange(self.parked, {}));
  };
  w.wait.start(s, on_ready, &w);  // costs no system call
  while (!w.done) {
    w.parked = ll::current_task();
    ll::park([&]() noexcept {
      w.wait.cancel();
      return ll::abort_result::failed;
    });
  }
  if (w.ec == boost::asio::error::operation_aborted) ll::raise_if_cancelled();
  if (w.ec) throw boost::system::system_error(w.ec);
}

// Reads `s` to its end with recv(2), handing every chunk to `sink`. It
// tries first while a read may find data, and tells the reactor when a read
// drained the socket, so that the next one waits for an edge instead.
void read_to_end(generic_socket& s, weft::function_ref<void(std::string_view)> sink) {
  char buf[64];
  for (;;) {
    if (!ll::read_may_find_data(s)) {
      wait_readable(s);
      continue;
    }
    ll::raise_if_cancelled();
    const ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      ll::note_read_drained(s);  // at once: no turn of the reactor in between
      continue;
    }
    if (n < 0) throw std::system_error(errno, std::generic_category(), "recv");
    if (n == 0) return;  // end of stream
    if (static_cast<std::size_t>(n) < sizeof buf) ll::note_short_read(s);  // never after a full read
    sink(std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

void read_loop() {
  auto& io = ll::io_context();
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::address_v4::loopback(), 0});
  boost::asio::ip::tcp::socket client(io);
  generic_socket server(io);
  weft::open_task_group([&](weft::task_group& tg) {  // use_fiber on sockets: connect and accept
    tg.start_soon([&] { client.async_connect(acceptor.local_endpoint(), weft::use_fiber); });
    acceptor.async_accept(server, weft::use_fiber);
  });

  std::string received;
  bool drained_after_short_read = false;
  weft::event first_chunk;
  weft::open_task_group([&](weft::task_group& tg) {
    tg.start_soon([&] {
      read_to_end(server, [&](std::string_view chunk) {
        if (received.empty()) drained_after_short_read = !ll::read_may_find_data(server);
        received += chunk;
        first_chunk.set();
      });
      server.close();
    });
    weft::testing::wait_all_tasks_blocked();
    check(!ll::read_may_find_data(server), "the first recv found nothing: noted as drained");
    boost::asio::async_write(client, boost::asio::buffer("hello", 5), weft::use_fiber);
    first_chunk.wait();
    boost::asio::async_write(client, boost::asio::buffer("world", 5), weft::use_fiber);
    client.shutdown(boost::asio::ip::tcp::socket::shutdown_send);
  });
  check(received == "helloworld" && drained_after_short_read, "the read loop got everything, in order");

  boost::system::error_code ec;
  const weft::use_fiber_t into_ec = weft::use_fiber[ec];  // errors as values instead of exceptions
  char byte = 0;
  client.async_read_some(boost::asio::buffer(&byte, 1), into_ec);
  check(ec == boost::asio::error::eof, "the client sees the server's close");
}

// --- recycled memory ---------------------------------------------------------------------------

// Per-thread free lists for short-lived blocks up to 2 KiB: coroutine frames,
// Asio handler memory (awaitable_handler's allocator), per-call state.
void frame_memory() {
  void* frame = ll::frame_allocate(200);
  ll::frame_deallocate(frame, 200);
  ll::recycling_allocator<std::uint64_t> alloc;  // the same, as a standard allocator
  std::uint64_t* block = alloc.allocate(25);     // 200 bytes: the block just freed
  check(block == frame, "freed memory is reused by the next block of its size");
  alloc.deallocate(block, 25);
}

}  // namespace

int main() {
  bool shutdown_seen = false;
  weft::run_options options;
  options.clock = std::make_shared<weft::testing::manual_clock>(weft::time_point{}, true);  // autojump
  weft::run(options, [&] {
    // A service of the runtime: cancelled (reason shutdown) once the root task ends.
    ll::spawn_system_task([&] {
      try {
        weft::sleep_forever();
      } catch (const weft::cancelled& c) {
        shutdown_seen = c.reason() == weft::cancel_reason::shutdown;
        throw;
      }
    });
    primitives();
    completions();
    asio_operations();
    read_loop();
    frame_memory();
  });
  check(shutdown_seen, "weft::run waited for its system task");
  if (failed) return 1;
  std::printf("tour_lowlevel: ok\n");
  return 0;
}

// asio_thread: the runtime thread's standing inside its io_context, as
// io_context::run would give it.
//
// Asio keeps per-thread recycled memory (for handlers, coroutine frames and
// cancellation handlers) in the thread_info it pushes while it runs a
// handler. io_context::run pushes one for the whole run; poll_one() makes
// a new, empty one per call and frees what it cached on return, so a loop
// that runs handlers one poll_one() at a time would allocate and free that
// memory for every handler. asio_thread keeps one thread_info for the
// runtime's lifetime and runs handlers with it; it also lends it to Asio's
// memory recycling outside handlers (in tasks), so that an operation or
// coroutine frame made in a task and freed in a handler, or the other way
// round, is recycled too. Construct and destroy it on the runtime's thread. Built on Asio internals
// checked against the pinned Boost version (lib/core/boost_pin.hpp); with
// WEFT_PORTABLE_ASIO it calls io_context::poll_one() (same behaviour,
// without the reuse).
#pragma once

#include <weft/function_ref.hpp>

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <memory>

namespace weft::detail {

class asio_thread {
 public:
  /// @throws std::bad_alloc.
  explicit asio_thread(boost::asio::io_context& io);
  ~asio_thread();
  asio_thread(const asio_thread&) = delete;
  asio_thread& operator=(const asio_thread&) = delete;

  /// io.poll_one(): runs at most one ready handler. The reactor is polled
  /// when its turn in the queue comes, except that handlers queued behind
  /// its turn go first, up to 64 in a row (see asio_handler.cpp). Returns
  /// how many ran. Call it on the runtime's thread, never from inside a
  /// handler of io.
  std::size_t poll_one();
  /// When the last poll_one() polled the reactor and ran the first handler
  /// that poll queued: runs at most `max` more of them (those ahead of the
  /// reactor's next turn in io's queue), without polling again. Asio's own
  /// rhythm (one epoll_wait per turn of its queue), where poll_one() after
  /// poll_one() would poll the reactor again as soon as the queue empties,
  /// each time finding a little more. Returns how many ran. With
  /// WEFT_PORTABLE_ASIO, which cannot see the queue, it runs nothing.
  std::size_t run_rest_of_turn(std::size_t max);
  /// One turn of I/O: the queued handlers, one reactor poll, and the
  /// handlers that poll queued. Returns how many handlers ran.
  std::size_t poll_turn();
  /// io.run_one(): runs one handler, blocking until one is ready.
  std::size_t run_one();

  /// lowlevel::run_as_asio_handler(io, fn) (see lowlevel/asio.hpp).
  void run_as_handler(function_ref<void()> fn);

  boost::asio::io_context& io() noexcept { return io_; }

 private:
  struct state;
  boost::asio::io_context& io_;
  std::unique_ptr<state> state_;
};

}  // namespace weft::detail

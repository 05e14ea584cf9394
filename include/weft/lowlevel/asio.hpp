// Building blocks for waiting on Asio operations from a task: what
// weft::use_fiber and greenback::await_ are made of, for code that waits on
// Asio in some other way.
//
// Contracts:
//  - run_as_asio_handler(io, fn) calls fn as if from inside one of io's
//    completion handlers, on the runtime's thread: dispatches to io run
//    inline, posts and deferred completions are queued and reach io's queue
//    when fn returns, and no task is current meanwhile (code run inside sees
//    no portal, as anywhere on the io_context). An exception from fn
//    propagates; one escaping a handler run inline ends the program, as it
//    does for any handler of the runtime's io_context. Not a checkpoint.
//    Built on Asio internals checked against the Boost version weft pins
//    (see docs/internals.md); built with WEFT_PORTABLE_ASIO it uses only
//    Asio's public API, with the same observable behaviour.
//  - operation_signal lends a cancellation signal from a per-thread pool;
//    give it back (destroy it) only once the operation has completed.
//  - forward_cancellation(ex, done, signal, finished) emits terminal
//    cancellation on `signal` from the operation's executor `ex`, unless
//    `finished` is set by then, holding `done` until the emit has run.
//  - throw_abandoned(what) throws weft::abandoned_error for an operation
//    destroyed without completing.
#pragma once

#include <weft/function_ref.hpp>
#include <weft/lowlevel/completion.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <exception>
#include <utility>

namespace weft::detail {
boost::asio::cancellation_signal* acquire_op_signal();
void release_op_signal(boost::asio::cancellation_signal* s) noexcept;
}  // namespace weft::detail

namespace weft::lowlevel {

/// See the header comment. @throws what fn throws.
void run_as_asio_handler(boost::asio::io_context& io, function_ref<void()> fn);

/// A cancellation signal for one operation, lent from a per-thread pool:
/// the handler memory an operation installs in it is reused by the next
/// operation. Destroy it only once the operation has completed.
class operation_signal {
 public:
  /// @throws std::bad_alloc.
  operation_signal() : s_(weft::detail::acquire_op_signal()) {}
  ~operation_signal() { weft::detail::release_op_signal(s_); }
  operation_signal(const operation_signal&) = delete;
  operation_signal& operator=(const operation_signal&) = delete;
  boost::asio::cancellation_signal* operator->() const noexcept { return s_; }
  boost::asio::cancellation_signal& get() const noexcept { return *s_; }

 private:
  boost::asio::cancellation_signal* s_;
};

/// Throws weft::abandoned_error naming `what`.
[[noreturn]] void throw_abandoned(const char* what);

}  // namespace weft::lowlevel

namespace weft::detail {
/// Emits terminal cancellation on `signal` unless `finished` is set (the
/// operation's completion handler sets it: a finished operation's
/// cancellation handler may refer to what is gone), then releases `done`.
/// Dropped unrun (a shut-down executor), it only releases `done`.
class cancellation_emit {
 public:
  cancellation_emit(lowlevel::completion& done, boost::asio::cancellation_signal& signal,
                    const std::atomic<bool>& finished) noexcept
      : done_(&done), signal_(&signal), finished_(&finished) {}
  cancellation_emit(cancellation_emit&& o) noexcept
      : done_(std::exchange(o.done_, nullptr)), signal_(o.signal_), finished_(o.finished_) {}
  cancellation_emit(const cancellation_emit&) = delete;
  cancellation_emit& operator=(const cancellation_emit&) = delete;
  ~cancellation_emit() {
    if (done_ != nullptr) done_->release();
  }
  void operator()() noexcept {
    if (!finished_->load(std::memory_order_acquire)) signal_->emit(boost::asio::cancellation_type::terminal);
    std::exchange(done_, nullptr)->release();  // last: the task may resume at once
  }

 private:
  lowlevel::completion* done_;
  boost::asio::cancellation_signal* signal_;
  const std::atomic<bool>* finished_;
};
}  // namespace weft::detail

namespace weft::lowlevel {

/// Forwards a cancellation to an operation running on `ex` (an Asio
/// operation's cancellation handler may only run where the operation runs):
/// posts the emit there, holding `done` until it has run. If the post
/// fails (no memory), emits here. Never throws.
template <class Executor>
void forward_cancellation(const Executor& ex, completion& done, boost::asio::cancellation_signal& signal,
                          const std::atomic<bool>& finished) noexcept {
  done.hold();
  try {
    boost::asio::post(ex, weft::detail::cancellation_emit(done, signal, finished));
  } catch (const std::exception&) {  // no memory for the post (its emit object released the hold);
                                     // a post never throws weft::cancelled
    if (!finished.load(std::memory_order_acquire)) signal.emit(boost::asio::cancellation_type::terminal);
  }
}

}  // namespace weft::lowlevel

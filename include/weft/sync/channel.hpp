// weft::channel<T>: a bounded FIFO channel between tasks.
//
// Single-runtime by design: no locks on the hot path. Use it from the tasks
// (and Asio handlers) of one runtime. A call from another thread (or from a
// task of another runtime) that would wake or join its waiters is refused,
// never a silent corruption of the runtime: send and receive throw
// std::logic_error naming the rule; close(), which cannot throw, ends the
// program with a message. Other threads hand work to the runtime with
// weft::use_fiber / greenback::await_ (operations on any executor),
// weft::lowlevel::completion, or asio::post to its io_context.
#pragma once

#include <weft/detail/core.hpp>
#include <weft/lowlevel/park.hpp>

#include <cstddef>
#include <deque>
#include <optional>
#include <stdexcept>
#include <utility>

namespace weft {

/// Thrown by send() on a closed channel, and by receive() on a closed
/// channel that has been drained.
class channel_closed : public std::runtime_error {
 public:
  channel_closed() : std::runtime_error("weft::channel: the channel is closed") {}
};

/// A bounded multi-producer multi-consumer FIFO for the tasks of one runtime.
/// Capacity 0 makes every send a rendezvous with a receive. Values are never
/// lost: a value handed to a receiver is returned by its receive() even if
/// the receiver is cancelled at the same moment; a send that throws has not
/// delivered its value.
template <class T>
class channel {
 public:
  explicit channel(std::size_t capacity) : capacity_(capacity) {}
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  /// Sends `value`, blocking while the channel is full. Checkpoint: checks
  /// for cancellation first, blocks only when full.
  /// @throws weft::cancelled, weft::channel_closed.
  void send(T value) {
    lowlevel::raise_if_cancelled();
    if (try_send_impl(value)) return;
    send_slot slot{&value};
    detail::lot_entry entry;
    entry.data = &slot;
    senders_.park(entry, "channel send");
    if (slot.closed) throw channel_closed();
  }

  /// Sends without blocking; false (value untouched) if the channel is full.
  /// @throws weft::channel_closed.
  bool try_send(T& value) { return try_send_impl(value); }

  /// Receives the next value, blocking while the channel is empty.
  /// Checkpoint: checks for cancellation first, blocks only when empty.
  /// @throws weft::cancelled; weft::channel_closed once closed and drained.
  T receive() {
    lowlevel::raise_if_cancelled();
    if (auto v = try_receive()) return std::move(*v);
    if (closed_) throw channel_closed();
    recv_slot slot;
    detail::lot_entry entry;
    entry.data = &slot;
    receivers_.park(entry, "channel receive");
    if (!slot.value) throw channel_closed();
    return std::move(*slot.value);
  }

  /// Receives without blocking; empty if no value is available.
  std::optional<T> try_receive() {
    senders_.check_waker("weft::channel::receive");
    if (!buffer_.empty()) {
      std::optional<T> v(std::move(buffer_.front()));
      buffer_.pop_front();
      // Room freed: the first blocked sender's value moves into the buffer.
      if (!senders_.empty()) {
        auto* slot = static_cast<send_slot*>(senders_.front().data);
        buffer_.push_back(std::move(*slot->value));
        senders_.unpark_one();
      }
      return v;
    }
    if (!senders_.empty()) {  // capacity 0: take straight from a sender
      auto* slot = static_cast<send_slot*>(senders_.front().data);
      std::optional<T> v(std::move(*slot->value));
      senders_.unpark_one();
      return v;
    }
    return std::nullopt;
  }

  /// Closes the channel: blocked and future senders get channel_closed;
  /// receivers get the buffered values, then channel_closed. Idempotent.
  void close() noexcept {
    if (closed_) return;
    closed_ = true;
    while (!senders_.empty()) {
      static_cast<send_slot*>(senders_.front().data)->closed = true;
      senders_.unpark_one();
    }
    receivers_.unpark_all();  // their slots stay empty: closed
  }

  bool closed() const noexcept { return closed_; }
  std::size_t size() const noexcept { return buffer_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  struct send_slot {
    T* value;
    bool closed = false;
  };
  struct recv_slot {
    std::optional<T> value;
  };

  bool try_send_impl(T& value) {
    if (closed_) throw channel_closed();
    receivers_.check_waker("weft::channel::send");
    if (!receivers_.empty()) {
      static_cast<recv_slot*>(receivers_.front().data)->value.emplace(std::move(value));
      receivers_.unpark_one();
      return true;
    }
    if (buffer_.size() < capacity_) {
      buffer_.push_back(std::move(value));
      return true;
    }
    return false;
  }

  std::size_t capacity_;
  std::deque<T> buffer_;
  detail::parking_lot senders_;
  detail::parking_lot receivers_;
  bool closed_ = false;
};

}  // namespace weft

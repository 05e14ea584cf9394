// Private: socket_op, the wait of weft's transports and listeners for one
// Asio operation on their socket.
//
// weft's transports and listeners wait for their Asio operations with
// socket_op rather than use_fiber. use_fiber serves any executor on any
// thread; these sockets belong to the calling task's runtime (their
// constructors take only sockets of its io_context, and every blocking call
// checks the runtime), so their operations complete on this thread, inside
// the runtime's loop. That allows the short path: the handler reschedules the
// task directly, a cancellation is emitted at once from the abort callback
// (this thread is the operation's), and everything the operation needs
// lives in the socket_op, on the waiting task's stack: the operation's
// memory and its cancellation slot. No allocation, no thread-local pool,
// no lock per operation. The semantics are use_fiber[ec]'s.
#pragma once

#include <weft/detail/core.hpp>
#include <weft/lowlevel/park.hpp>

#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace weft::net::detail {

/// The memory of one Asio operation: a buffer in the waiting frame, which
/// the socket operations of weft's transports fit; anything larger (or a
/// second allocation at once) gets the heap.
class op_memory {
 public:
  op_memory() noexcept {}  // bytes_ left uninitialized on purpose
  op_memory(const op_memory&) = delete;
  op_memory& operator=(const op_memory&) = delete;

  void* allocate(std::size_t size, std::size_t align) {
    if (!used_ && size <= capacity && align <= alignof(std::max_align_t)) [[likely]] {
      used_ = true;
      return bytes_;
    }
    return ::operator new(size, std::align_val_t(align));
  }
  void deallocate(void* p, std::size_t size, std::size_t align) noexcept {
    if (p == bytes_) [[likely]] {
      used_ = false;
      return;
    }
    ::operator delete(p, size, std::align_val_t(align));
  }

 private:
  static constexpr std::size_t capacity = 256;  // an Asio socket operation is 136 to 184 bytes
  alignas(std::max_align_t) unsigned char bytes_[capacity];
  bool used_ = false;
};

/// The allocator a socket_op's handler gives Asio for the operation.
template <class T>
class op_allocator {
 public:
  using value_type = T;
  explicit op_allocator(op_memory& m) noexcept : m_(&m) {}
  template <class U>
  op_allocator(const op_allocator<U>& o) noexcept : m_(o.memory()) {}
  T* allocate(std::size_t n) { return static_cast<T*>(m_->allocate(n * sizeof(T), alignof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { m_->deallocate(p, n * sizeof(T), alignof(T)); }
  op_memory* memory() const noexcept { return m_; }
  template <class U>
  friend bool operator==(const op_allocator& a, const op_allocator<U>& b) noexcept {
    return a.m_ == b.memory();
  }

 private:
  op_memory* m_;
};

/// The cancellation handler an Asio operation installs for itself (its
/// reactor's "cancel this operation"), held in place: an Asio
/// cancellation_signal would allocate it, and free it with the signal.
class op_cancellation {
 public:
  op_cancellation() noexcept {}  // storage_ left uninitialized on purpose
  op_cancellation(const op_cancellation&) = delete;
  op_cancellation& operator=(const op_cancellation&) = delete;
  ~op_cancellation() { clear(); }

  template <class Handler, class... Args>
  Handler& emplace(Args&&... args) {
    clear();
    Handler* h;
    if constexpr (sizeof(Handler) <= sizeof(storage_) && alignof(Handler) <= alignof(std::max_align_t)) {
      h = ::new (static_cast<void*>(storage_)) Handler(std::forward<Args>(args)...);
      destroy_ = [](void* p) noexcept { static_cast<Handler*>(p)->~Handler(); };
    } else {
      h = new Handler(std::forward<Args>(args)...);
      destroy_ = [](void* p) noexcept { delete static_cast<Handler*>(p); };
    }
    handler_ = h;
    call_ = [](void* p, boost::asio::cancellation_type_t type) { (*static_cast<Handler*>(p))(type); };
    return *h;
  }
  void clear() noexcept {
    if (handler_ == nullptr) return;
    destroy_(handler_);
    handler_ = nullptr;
  }
  bool has_handler() const noexcept { return handler_ != nullptr; }
  /// Asks the operation to end now (it completes with operation_aborted,
  /// unless it has completed already).
  void emit(boost::asio::cancellation_type_t type) {
    if (handler_ != nullptr) call_(handler_, type);
  }

 private:
  alignas(std::max_align_t) unsigned char storage_[48];  // Asio's reactor cancellation is 24 bytes
  void* handler_ = nullptr;
  void (*destroy_)(void*) noexcept = nullptr;
  void (*call_)(void*, boost::asio::cancellation_type_t) = nullptr;
};

/// A slot (Asio's CancellationSlot requirements) onto an op_cancellation.
class op_cancellation_slot {
 public:
  op_cancellation_slot() noexcept = default;
  explicit op_cancellation_slot(op_cancellation& c) noexcept : c_(&c) {}
  template <class Handler, class... Args>
  Handler& emplace(Args&&... args) {
    return c_->emplace<Handler>(std::forward<Args>(args)...);
  }
  template <class Handler>
  std::decay_t<Handler>& assign(Handler&& h) {
    return c_->emplace<std::decay_t<Handler>>(std::forward<Handler>(h));
  }
  void clear() noexcept {
    if (c_ != nullptr) c_->clear();
  }
  bool is_connected() const noexcept { return c_ != nullptr; }
  bool has_handler() const noexcept { return c_ != nullptr && c_->has_handler(); }
  friend bool operator==(const op_cancellation_slot&, const op_cancellation_slot&) noexcept = default;

 private:
  op_cancellation* c_ = nullptr;
};

[[noreturn]] void throw_op_abandoned();

/// The waiting half of an operation the calling task waits for on its own
/// runtime's thread (a socket_op, a read_wait): its completion calls
/// finish(), which wakes the task.
class op_waiter {
 public:
  /// The operation ended (abandoned: destroyed without completing).
  void finish(bool abandoned = false) noexcept {
    abandoned_ = abandoned;
    done_ = true;
    if (parked_) lowlevel::reschedule(std::exchange(parked_, lowlevel::task_ref()));
  }

  /// Parks the calling task until finish(). If the task is cancelled
  /// meanwhile, cancel() runs (once, on this thread) and must make the
  /// operation end; when it then ends with operation_aborted (`result`, as
  /// the completion set it), weft::cancelled is thrown. If it completes
  /// anyway, its result stands and the cancellation comes at the next
  /// checkpoint. The caller made the checkpoint before starting it.
  /// @throws weft::cancelled; weft::abandoned_error if the operation was
  /// destroyed without completing.
  template <class Cancel>
  void wait(Cancel&& cancel, const boost::system::error_code& result) {
    bool cancel_requested = false;
    auto abort = [&]() noexcept {
      if (!cancel_requested) {
        cancel_requested = true;
        cancel();
      }
      return lowlevel::abort_result::failed;
    };
    while (!done_) {
      parked_ = lowlevel::task_ref(weft::detail::current_task());  // the caller is a task (checkpoint_at_entry)
      lowlevel::park(abort);
    }
    if (abandoned_) [[unlikely]]
      throw_op_abandoned();
    if (cancel_requested && result == boost::asio::error::operation_aborted) lowlevel::raise_if_cancelled();
  }

 private:
  lowlevel::task_ref parked_;  // the task, while it waits
  bool done_ = false;
  bool abandoned_ = false;
};

/// One wait of the calling task for one Asio operation on a socket of its
/// own runtime, completing with (error_code) or (error_code, Value):
///
///   socket_op<std::size_t> op;
///   socket_.async_receive(buffer, op.handler());
///   op.wait();           // the task parks; a checkpoint (see wait())
///   op.error(), op.value()
///
/// The socket_op must outlive the operation: wait() returns only once it
/// has completed.
template <class Value>
class socket_op {
 public:
  class handler_type {
   public:
    explicit handler_type(socket_op& op) noexcept : op_(&op), memory_(&op.memory_) {}
    handler_type(handler_type&& o) noexcept : op_(std::exchange(o.op_, nullptr)), memory_(o.memory_) {}
    handler_type(const handler_type&) = delete;
    handler_type& operator=(const handler_type&) = delete;
    ~handler_type() {
      if (op_ != nullptr) op_->abandon();  // destroyed without being called
    }

    using cancellation_slot_type = op_cancellation_slot;
    cancellation_slot_type get_cancellation_slot() const noexcept {
      return op_ != nullptr ? op_cancellation_slot(op_->cancellation_) : op_cancellation_slot();
    }
    using allocator_type = op_allocator<void>;
    allocator_type get_allocator() const noexcept { return allocator_type(*memory_); }

    void operator()(const boost::system::error_code& ec) { std::exchange(op_, nullptr)->complete(ec); }
    template <class V>
    void operator()(const boost::system::error_code& ec, V&& value) {
      socket_op* op = std::exchange(op_, nullptr);
      op->value_ = std::forward<V>(value);
      op->complete(ec);
    }

   private:
    socket_op* op_;
    op_memory* memory_;  // kept by a moved-from handler too: Asio frees the operation through either
  };

  socket_op() noexcept = default;
  socket_op(const socket_op&) = delete;
  socket_op& operator=(const socket_op&) = delete;

  /// The handler to start the operation with (once).
  handler_type handler() noexcept { return handler_type(*this); }

  /// Parks the calling task until the operation has completed. The caller
  /// made the checkpoint before starting it. If the task is cancelled
  /// meanwhile, the operation is cancelled; when it then ends with
  /// operation_aborted, weft::cancelled is thrown. If it completes anyway,
  /// its result stands and the cancellation comes at the next checkpoint.
  /// @throws weft::cancelled; weft::abandoned_error if the operation was
  /// destroyed without completing.
  void wait() {
    // On this thread, the operation's: cancel it here and now. It completes
    // (aborted) and wakes us through the handler.
    waiter_.wait([this]() noexcept { cancellation_.emit(boost::asio::cancellation_type::terminal); }, ec_);
  }

  const boost::system::error_code& error() const noexcept { return ec_; }
  Value& value() noexcept { return value_; }

 private:
  void complete(const boost::system::error_code& ec) noexcept {
    ec_ = ec;
    waiter_.finish();
  }
  void abandon() noexcept { waiter_.finish(/*abandoned=*/true); }

  op_memory memory_;
  op_cancellation cancellation_;
  boost::system::error_code ec_;
  Value value_{};
  op_waiter waiter_;
};

}  // namespace weft::net::detail

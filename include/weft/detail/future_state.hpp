// Internal: the shared state behind weft::future and weft::promise, and the
// waiter and callback records it links. See docs/internals.md, "Futures".
#pragma once

#include <weft/detail/core.hpp>
#include <weft/threads/errors.hpp>
#include <weft/time.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace weft {

class cancel_scope;

/// How a blocking wait on a weft::future waits.
struct wait_options {
  /// Give up after this long (runtime-clock time in a task, steady-clock
  /// time on a plain thread) with weft::timeout_error; infinite: never.
  duration timeout{std::numeric_limits<double>::infinity()};
  /// True: neither the waiter's cancellation nor its timeout cancels the
  /// future, and the waiter's cancellation does not interrupt the wait.
  bool shield = false;
};

/// Identifies a done-callback (future::add_done_callback).
using callback_id = std::uint64_t;

/// For job runners whose running job can be cancelled (a task of a portal
/// or a caller): promise::set_running(&hook) makes cancel() of a running
/// future succeed, and `fn(&hook)` is then called once, from the thread
/// that cancels, while the future's lock is held. It must be quick, must
/// not block and must not use the future (typically: hand the
/// cancellation to the job's runtime through its inbox). The hook must
/// stay alive until the promise is set (a set after the cancellation is
/// dropped).
struct future_cancel_hook {
  void (*fn)(future_cancel_hook* self) noexcept = nullptr;
};

}  // namespace weft

namespace weft::detail {

class inbox;
class future_state_base;
struct future_waiter_tag;

/// A waiter parked on a future (a task; it lives on the task's stack).
/// `wake` is called once, by the thread that completes or cancels the
/// future, after it has taken the waiter out of the list: from then on the
/// waiter's withdraw fails and it waits for the wake.
struct future_waiter : list_hook<future_waiter_tag> {
  void (*wake)(future_waiter* self) noexcept = nullptr;
  future_waiter* wake_next = nullptr;
};

/// A done-callback (heap-allocated, owned by the state until it has run).
struct future_callback {
  virtual ~future_callback() = default;
  virtual void invoke(future_state_base& s) = 0;
  struct call : remote_call {
    future_callback* owner = nullptr;
  };
  future_callback* next = nullptr;
  future_state_base* state = nullptr;
  callback_id id = 0;
  call single;  // when added to a future that is done already
};

/// The state: phase, outcome, waiters, callbacks. Reference-counted; every
/// member function is thread-safe.
class future_state_base {
 public:
  /// pending -> running -> value | exception; pending | running -> cancelled.
  enum class phase : std::uint8_t { pending, running, cancelled, value, exception };

  /// A state whose home is the calling thread's runtime (none on a thread
  /// without one). @throws std::bad_alloc.
  future_state_base();
  /// A state with the given home inbox (null: none); takes a reference to it.
  explicit future_state_base(inbox* home) noexcept;
  future_state_base(const future_state_base&) = delete;
  future_state_base& operator=(const future_state_base&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  void add_promise() noexcept { promises_.fetch_add(1, std::memory_order_relaxed); }
  /// The last promise gone before the outcome was set: the future fails
  /// with weft::abandoned_error, so that nobody waits forever.
  void release_promise() noexcept;

  phase current() const noexcept { return phase_.load(std::memory_order_acquire); }
  bool done() const noexcept { return current() >= phase::cancelled; }

  /// See future::cancel. @throws std::bad_alloc (the reason is copied).
  bool cancel(std::string_view reason);
  /// See promise::set_running.
  bool set_running(future_cancel_hook* hook);
  /// See promise::set_exception.
  bool set_exception(std::exception_ptr e);

  /// Blocks until done (see future::wait).
  void wait(const wait_options& options);
  /// Throws what result() throws when the phase is not `value`: the
  /// exception, future_cancelled_error, or invalid_state_error. With
  /// `after_wait`, in a task whose cancellation is pending a cancelled
  /// future throws weft::cancelled instead (the task's cancellation wins).
  [[noreturn]] void throw_failure(const char* what, bool after_wait) const;
  /// See future::exception.
  std::exception_ptr exception() const;
  /// The cancel reasons, joined by '\n'. @throws std::bad_alloc.
  std::string reasons() const;

  /// Takes ownership of `cb` (deleted if this throws). See future::add_done_callback.
  callback_id add_callback(future_callback* cb);
  std::size_t remove_callback(callback_id id) noexcept;

 protected:
  virtual ~future_state_base();
  /// For set_value: with `lock` held, true if the value may be stored;
  /// false if the future was cancelled (the value is dropped).
  /// @throws invalid_state_error if the outcome is set already.
  bool may_set(const char* what) const;
  /// With `lock` held: sets the phase, wakes every waiter, schedules the
  /// callbacks; releases the lock.
  void publish(std::unique_lock<std::mutex>& lock, phase p) noexcept;

  mutable std::mutex mutex_;

 private:
  void append_reason(std::string_view reason);
  bool enlist(future_waiter& w);
  bool withdraw(future_waiter& w) noexcept;
  void wait_in_task(task_base& me, const wait_options& options);
  void wait_withdrawable(const cancel_scope* scope, bool may_cancel);
  void wait_shielded();
  void wait_on_thread(const wait_options& options);
  void run_callbacks(bool open) noexcept;
  static void on_callbacks(remote_call* c, bool open) noexcept;
  static void on_single_callback(remote_call* c, bool open) noexcept;

  std::atomic<phase> phase_{phase::pending};
  std::atomic<std::uint32_t> refs_{1};
  std::atomic<std::uint32_t> promises_{0};
  /// What plain threads block on: bit 0 set once done, bit 1 while some
  /// thread sleeps on it (so a completion makes a futex call only then).
  std::atomic<std::uint32_t> thread_word_{0};
  inbox* home_ = nullptr;  // the home runtime's inbox, referenced; null: no home
  intrusive_list<future_waiter, future_waiter_tag> waiters_;
  future_callback* callbacks_ = nullptr;  // newest first: the order they run in
  callback_id last_callback_id_ = 0;
  future_cancel_hook* hook_ = nullptr;
  std::exception_ptr error_;
  std::string reasons_;
  struct state_call : remote_call {
    future_state_base* owner = nullptr;
  } callbacks_call_;
};

template <class T>
class future_state final : public future_state_base {
 public:
  using future_state_base::future_state_base;
  template <class... A>
  bool set_value(A&&... a) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!may_set("weft::promise::set_value")) return false;
    value_.emplace(std::forward<A>(a)...);  // if this throws, nothing changed
    publish(lock, phase::value);
    return true;
  }
  const T& value(const char* what, bool after_wait) const {
    if (current() != phase::value) throw_failure(what, after_wait);
    return *value_;
  }

 private:
  std::optional<T> value_;
};

template <>
class future_state<void> final : public future_state_base {
 public:
  using future_state_base::future_state_base;
  bool set_value() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!may_set("weft::promise::set_value")) return false;
    publish(lock, phase::value);
    return true;
  }
  void value(const char* what, bool after_wait) const {
    if (current() != phase::value) throw_failure(what, after_wait);
  }
};

/// future_state objects alive in the process (testing::live_future_states).
std::size_t future_states_alive() noexcept;

}  // namespace weft::detail

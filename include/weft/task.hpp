// Task handles and task introspection.
#pragma once

#include <weft/detail/core.hpp>

#include <cstdint>
#include <functional>
#include <new>
#include <tuple>
#include <typeinfo>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace weft {

/// Identity of a task: equality by id.
struct task_info {
  std::uint64_t id = 0;
  std::string name;
  friend bool operator==(const task_info& a, const task_info& b) noexcept { return a.id == b.id; }
};

/// The running task's id and name. Not a checkpoint; never blocks.
/// @throws std::logic_error outside a weft task; std::bad_alloc (the name
/// is built on each call: a demangled type or symbol name).
task_info get_current_task();

namespace detail {
template <class T>
class task_state : public task_base {
 public:
  std::optional<T> value_;
};
template <>
class task_state<void> : public task_base {};

// The task object: the function and its arguments, destroyed as soon as the
// function returns so that captured resources are released promptly.
template <class T, class F, class... Args>
class task_impl final : public task_state<T> {
 public:
  template <class G, class... A>
  explicit task_impl(G&& fn, A&&... args) {
    call_.emplace(std::forward<G>(fn), std::forward<A>(args)...);
    this->fn_type_ = &typeid(F);
    if constexpr (std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>)
      this->fn_ptr_ = reinterpret_cast<void*>(std::get<0>(*call_));
  }
  void invoke() override {
    struct reset {
      std::optional<std::tuple<F, Args...>>& c;
      ~reset() { c.reset(); }
    } guard{call_};
    if constexpr (std::is_void_v<T>)
      std::apply([](auto&& fn, auto&&... a) { std::invoke(std::move(fn), std::move(a)...); }, std::move(*call_));
    else
      this->value_.emplace(
          std::apply([](auto&& fn, auto&&... a) -> T { return std::invoke(std::move(fn), std::move(a)...); },
                     std::move(*call_)));
  }

 private:
  std::optional<std::tuple<F, Args...>> call_;
};

template <class F, class... Args>
using task_result_t = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;

template <class F, class... Args>
using task_impl_t = task_impl<task_result_t<F, Args...>, std::decay_t<F>, std::decay_t<Args>...>;

template <class F, class... Args>
auto make_task(F&& fn, Args&&... args) {
  return new task_impl_t<F, Args...>(std::forward<F>(fn), std::forward<Args>(args)...);
}

/// Starts fn(args...) in `group` as a task without a handle: in its own
/// stack when the task object is small enough, else on the heap.
template <class F, class... Args>
void spawn_detached(task_group& group, task_options&& options, F&& fn, Args&&... args) {
  using impl = task_impl_t<F, Args...>;
  if constexpr (sizeof(impl) <= in_stack_task_max_size && alignof(impl) <= in_stack_task_max_align) {
    auto refs = std::forward_as_tuple(std::forward<F>(fn), std::forward<Args>(args)...);
    using refs_t = decltype(refs);
    spawn_in_stack(group, std::move(options), sizeof(impl),
                   [](void* mem, void* a) -> task_base* {
                     return std::apply([mem](auto&&... x) { return ::new (mem) impl(std::forward<decltype(x)>(x)...); },
                                       std::move(*static_cast<refs_t*>(a)));
                   },
                   &refs);
  } else {
    spawn(group, make_task(std::forward<F>(fn), std::forward<Args>(args)...), std::move(options));
  }
}
}  // namespace detail

/// A handle to a task started with task_group::start (weft::run keeps one
/// to its root task). Copies share the task. Every member but operator
/// bool and backend() needs a non-empty handle. Handles are used on the
/// task's runtime's thread, with one exception: a task of another runtime
/// may wait() for it and join() it through a handle it borrows (by
/// reference: copying or destroying a handle stays on the task's own
/// thread); that wait goes through the task's runtime, so it also works
/// while that runtime's thread is busy. cancel() from another thread ends
/// the program with a message (so does join_or_cancel() when it must
/// cancel).
template <class T>
class task {
 public:
  task() noexcept = default;
  explicit task(detail::task_state<T>* s) noexcept : s_(s) {
    if (s_) s_->add_ref();
  }
  task(const task& o) noexcept : task(o.s_) {}
  task(task&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  task& operator=(task o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~task() {
    if (s_) s_->release();
  }
  explicit operator bool() const noexcept { return s_ != nullptr; }

  /// Id and name. Not a checkpoint.
  /// @throws std::bad_alloc (the name is built on each call).
  task_info info() const { return {s().id_, s().name()}; }
  /// True once the task has returned or thrown.
  bool done() const noexcept { return s().done(); }
  /// Requests cancellation of the task (reason: task_cancelled). Returns
  /// false if the task was already done, else true (also when it had been
  /// cancelled before). Not a checkpoint; never blocks.
  bool cancel() noexcept { return detail::cancel_task(s()); }
  /// True only if the task ended by a weft::cancelled escaping it (its own
  /// cancel(), or the cancellation of a scope or group around it).
  bool cancelled() const noexcept { return s().done() && s().ended_cancelled_; }
  /// Blocks until the task is done, without unwrapping its outcome. On the
  /// task's own runtime it returns at once, without yielding, if the task
  /// is already done; from a task of another runtime it always asks the
  /// task's runtime, and parks until that has answered. Cancelling the
  /// waiter does not cancel the task. Checkpoint: in a cancelled scope it
  /// throws, even when the task is already done.
  /// @throws weft::cancelled; std::logic_error if a task waits for itself,
  /// or if the call would have to block outside a weft task (in an Asio
  /// handler, on a plain thread).
  void wait() const { detail::wait_done(s()); }
  /// Blocks until the task is done and returns its value (a copy) or
  /// rethrows its exception (the same object each time); repeatable.
  /// Cancelling the joiner does not cancel the task. Checkpoint (as wait()).
  /// @throws weft::cancelled if the joiner is cancelled while it waits; the
  /// task's exception (a weft::cancelled if the task ended cancelled); what
  /// wait() throws; what copying the value throws.
  T join() const {
    wait();
    return outcome();
  }
  /// Like join(), but cancelling the joiner cancels the task and waits for
  /// it (shielded: that second wait is no checkpoint); if the task absorbed
  /// the cancellation and returned, its value is returned, otherwise the
  /// joiner's cancellation propagates. Checkpoint.
  /// @throws weft::cancelled (the joiner's, once the task has ended
  /// cancelled); the task's exception; what wait() throws; what copying
  /// the value throws.
  /// @warning From a task of another runtime, a cancellation of the joiner
  /// while the task still runs ends the program: the task cannot be
  /// cancelled from that thread. Use join() there.
  T join_or_cancel() const {
    try {
      wait();
    } catch (const weft::cancelled&) {
      detail::cancel_task(s());
      detail::wait_done_shielded(s());
      if (s().ended_cancelled_) throw;
    }
    return outcome();
  }

  async_backend& backend() const noexcept;

 private:
  detail::task_state<T>& s() const noexcept { return *s_; }
  T outcome() const {
    if (s().exception_) std::rethrow_exception(s().exception_);
    if constexpr (!std::is_void_v<T>) return *s().value_;
  }
  detail::task_state<T>* s_ = nullptr;
};

async_backend& builtin_backend() noexcept;
template <class T>
async_backend& task<T>::backend() const noexcept {
  return builtin_backend();
}

}  // namespace weft

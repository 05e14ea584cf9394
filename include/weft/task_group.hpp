// Task groups (trio nurseries): structured concurrency for child tasks, and gather().
//
// A task group waits for all its children before its block ends. A child
// failure cancels the body and the siblings; then every failure comes out
// together as a weft::exception_group. A lone exception from the body
// comes out bare. If only cancellations happened, one `cancelled` propagates.
#pragma once

#include <weft/cancel_scope.hpp>
#include <weft/detail/core.hpp>
#include <weft/task.hpp>

#include <concepts>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace weft {

class task_group {
 public:
  task_group() noexcept;
  ~task_group();
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  /// Schedules fn(args...) as a new child task and returns at once; the
  /// child starts when the scheduler gets to it. Not a checkpoint.
  /// @throws std::logic_error if the group is not open (before entry or
  /// after exit); fn then never runs.
  template <class F, class... Args>
    requires(!std::same_as<std::remove_cvref_t<F>, task_options>)
  void start_soon(F&& fn, Args&&... args) {
    start_soon(task_options{}, std::forward<F>(fn), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  void start_soon(task_options options, F&& fn, Args&&... args) {
    detail::spawn_detached(*this, std::move(options), std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Starts fn(args...) as a new child task and returns its handle once the
  /// child is actually running. If the caller is already cancelled, the
  /// child is never created; if the caller is cancelled while waiting, the
  /// child is cancelled and waited for before the cancellation propagates.
  /// Checkpoint. @throws weft::cancelled, std::logic_error (group not open).
  template <class F, class... Args>
    requires(!std::same_as<std::remove_cvref_t<F>, task_options>)
  auto start(F&& fn, Args&&... args) {
    return start(task_options{}, std::forward<F>(fn), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  auto start(task_options options, F&& fn, Args&&... args) {
    auto* t = detail::make_task(std::forward<F>(fn), std::forward<Args>(args)...);
    using T = detail::task_result_t<F, Args...>;
    task<T> handle(t);
    detail::start(*this, t, std::move(options));
    return handle;
  }

  /// Cancels the body and every child (reason: explicit request). The
  /// group catches this cancellation itself.
  void cancel() noexcept;
  bool cancel_called() const noexcept { return scope_.cancel_called(); }
  /// Number of children still running.
  std::size_t running() const noexcept { return live_; }

  /// Low-level protocol (see cancel_scope::enter/exit): enter() opens the
  /// group in the current task; exit(e) waits for every child (a
  /// checkpoint that keeps waiting if cancelled) and returns what must
  /// propagate.
  void enter();
  [[nodiscard]] std::exception_ptr exit(std::exception_ptr in_flight);

  async_backend& backend() const noexcept;

 private:
  friend struct detail::group_access;
  enum class phase : unsigned char { idle, open, closing, closed };
  cancel_scope scope_;
  detail::task_base* owner_ = nullptr;
  detail::task_base* exit_waiter_ = nullptr;
  std::size_t live_ = 0;
  std::vector<std::exception_ptr> failures_;  // non-cancellation failures, in order
  std::exception_ptr first_cancel_;           // first cancellation seen
  bool body_failed_ = false;                  // failures_[0] came from the body
  phase phase_ = phase::idle;
};

/// Opens a task group, runs body(group) in the current task, then waits for
/// every child. body must return void (results travel through task handles
/// or captured state). Checkpoint (while waiting for children).
/// @throws weft::exception_group with the children's failures, the body's
/// own exception bare, or weft::cancelled.
template <class F>
void open_task_group(F&& body) {
  static_assert(std::is_void_v<std::invoke_result_t<F&, task_group&>>,
                "weft::open_task_group: the body must return void; pass results through task handles");
  task_group group;
  group.enter();
  try {
    body(group);
  } catch (...) {
    if (auto e = group.exit(std::current_exception())) std::rethrow_exception(e);
    return;
  }
  if (auto e = group.exit(nullptr)) std::rethrow_exception(e);
}

namespace detail {
template <class T>
using gather_slot_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
}

/// Runs every function concurrently, each in its own task, and returns
/// their results in argument order (void results as std::monostate). Any
/// failure cancels the others and throws a weft::exception_group holding
/// every failure. gather() with no functions returns an empty tuple.
/// Checkpoint.
template <class... F>
auto gather(F&&... fns) {
  std::tuple<std::optional<detail::gather_slot_t<std::invoke_result_t<F&>>>...> slots;
  open_task_group([&](task_group& group) {
    auto start_one = [&]<std::size_t I>(std::integral_constant<std::size_t, I>, auto& fn) {
      using R = std::invoke_result_t<decltype(fn)>;
      group.start_soon([&slot = std::get<I>(slots), &fn] {
        if constexpr (std::is_void_v<R>) {
          fn();
          slot.emplace();
        } else {
          slot.emplace(fn());
        }
      });
    };
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (start_one(std::integral_constant<std::size_t, I>{}, fns), ...);
    }(std::index_sequence_for<F...>{});
  });
  return std::apply([](auto&... s) { return std::make_tuple(std::move(*s)...); }, slots);
}

/// gather over a range of functions returning the same type: results in order.
template <class F>
auto gather(std::vector<F>& fns) {
  using R = std::invoke_result_t<F&>;
  std::vector<std::optional<detail::gather_slot_t<R>>> slots(fns.size());
  open_task_group([&](task_group& group) {
    for (std::size_t i = 0; i < fns.size(); ++i) {
      group.start_soon([&slot = slots[i], &fn = fns[i]] {
        if constexpr (std::is_void_v<R>) {
          fn();
          slot.emplace();
        } else {
          slot.emplace(fn());
        }
      });
    }
  });
  std::vector<detail::gather_slot_t<R>> out;
  out.reserve(slots.size());
  for (auto& s : slots) out.push_back(std::move(*s));
  return out;
}

inline async_backend& task_group::backend() const noexcept { return builtin_backend(); }

}  // namespace weft

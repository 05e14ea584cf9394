// weft::async_backend: the backend interface, and how to obtain the builtin one.
//
// Library code can be written against async_backend& (every weft object
// exposes backend()), mirroring the seed API's AsyncBackend. Everyday code
// calls the free functions (weft::sleep, weft::open_task_group, ...) directly;
// both reach the same runtime.
#pragma once

#include <weft/cancel_scope.hpp>
#include <weft/checkpoint.hpp>
#include <weft/function_ref.hpp>
#include <weft/run.hpp>
#include <weft/sync/condition_variable.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/lock.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/threads/run_in_thread.hpp>
#include <weft/threads/threads_portal.hpp>

#include <memory>
#include <string_view>

namespace weft {

class async_backend {
 public:
  virtual ~async_backend();

  /// The backend's name ("weft").
  virtual std::string_view name() const noexcept = 0;

  // Runners.
  /// Runs fn as the root task of a fresh runtime on the calling thread.
  virtual void bootstrap(function_ref<void()> fn, const run_options& options = {}) = 0;

  // Checkpoints and time (see checkpoint.hpp).
  virtual void coro_yield() = 0;
  virtual void cancel_shielded_coro_yield() = 0;
  virtual void sleep(duration d) = 0;
  virtual void sleep_until(time_point t) = 0;
  [[noreturn]] virtual void sleep_forever() = 0;
  virtual time_point current_time() = 0;

  // Cancellation.
  virtual void ignore_cancellation(function_ref<void()> fn) = 0;
  cancel_scope open_cancel_scope(time_point deadline = inf_time) { return cancel_scope(deadline); }
  cancel_scope move_on_after(duration d) { return weft::move_on_after(d); }
  cancel_scope move_on_at(time_point t) { return weft::move_on_at(t); }
  template <class F>
  auto timeout(duration d, F&& fn) {
    return weft::timeout(d, std::forward<F>(fn));
  }
  template <class F>
  auto timeout_at(time_point t, F&& fn) {
    return weft::timeout_at(t, std::forward<F>(fn));
  }

  // Tasks.
  virtual task_info get_current_task() = 0;
  /// Opens a task group around body (see open_task_group).
  virtual void with_task_group(function_ref<void(task_group&)> body) = 0;

  // Threads (see threads/run_in_thread.hpp and threads/threads_portal.hpp).
  template <class F, class... A>
    requires(!std::is_same_v<std::remove_cvref_t<F>, thread_options>)
  auto run_in_thread(F&& fn, A&&... args) {
    return weft::run_in_thread(std::forward<F>(fn), std::forward<A>(args)...);
  }
  template <class F, class... A>
  auto run_in_thread(thread_options options, F&& fn, A&&... args) {
    return weft::run_in_thread(options, std::forward<F>(fn), std::forward<A>(args)...);
  }
  /// A closed portal of the runtime running on this thread (see threads/threads_portal.hpp).
  threads_portal create_threads_portal() { return threads_portal::create(); }

  // Synchronisation primitives (not thread-safe; cancellable).
  lock create_lock() { return lock(); }
  fair_lock create_fair_lock() { return fair_lock(); }
  event create_event() { return event(); }
  condition_variable create_condition_var() { return condition_variable(); }
};

/// The builtin backend (weft's fiber runtime). Stateless; always available.
async_backend& builtin_backend() noexcept;

/// A new instance of a builtin backend by name. Supported: "weft".
/// @throws std::invalid_argument naming the supported backends.
std::unique_ptr<async_backend> new_builtin_backend(std::string_view name);

/// `backend` itself when given; otherwise the backend of the runtime running
/// on this thread. @throws std::logic_error if there is none.
async_backend& ensure_backend(async_backend* backend = nullptr);
/// The builtin backend called `name`. @throws std::invalid_argument.
async_backend& ensure_backend(std::string_view name);

/// The backend of the runtime running on this thread.
/// @throws std::logic_error if no weft runtime runs on this thread.
async_backend& current_backend();

}  // namespace weft

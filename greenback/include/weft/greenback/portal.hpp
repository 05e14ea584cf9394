// greenback portals: where synchronous code may wait for asynchronous code.
//
// A *portal* is what lets synchronous code wait for asynchronous code:
// greenback::await_(aw) called from plain synchronous code parks the task's
// fiber while `aw` runs, then returns its value or rethrows its exception.
// Every weft task runs on its own fiber, so every task has a portal: in task
// code await_ always works, at any depth of synchronous calls. There is no
// portal in an Asio completion handler, in a coroutine running outside any
// fiber (an asio::awaitable co_spawned on the runtime), or on a thread that
// runs no weft runtime; await_ there throws greenback::no_portal_error.
// From such a coroutine, `co_await greenback::with_portal_run_sync(fn)` runs
// fn on a portal worker (a pooled fiber of the runtime), where await_ works.
#pragma once

#include <weft/checkpoint.hpp>
#include <weft/coro.hpp>
#include <weft/lowlevel/park.hpp>
#include <weft/task.hpp>

#include <stdexcept>

namespace greenback {

/// Thrown by await_ where there is no portal.
class no_portal_error : public std::logic_error {
 public:
  explicit no_portal_error(const char* where);
};

/// True in weft task code (every task has a portal); false in Asio handlers,
/// in coroutines running outside any fiber, and on threads without a weft
/// runtime. Never throws.
inline bool has_portal() noexcept { return weft::lowlevel::in_task(); }
/// True while the task exists: every weft task has a portal. Never throws.
template <class T>
bool has_portal(const weft::task<T>& task) noexcept {
  return static_cast<bool>(task) && !task.done();
}

/// Makes sure the current task can use await_ for the rest of its life:
/// always true in weft, so this is only a checkpoint (as in greenback).
/// @throws weft::cancelled; no_portal_error outside a weft task.
void ensure_portal();

/// Gives `task` a portal. Every weft task already has one: synchronous,
/// idempotent, never throws.
template <class T>
void bestow_portal(const weft::task<T>&) noexcept {}

/// A synchronous scope whose child tasks get portals (always true in weft).
/// Kept so that code written against greenback ports unchanged.
class portals_for_children {
 public:
  portals_for_children() noexcept = default;
  portals_for_children(const portals_for_children&) = delete;
  portals_for_children& operator=(const portals_for_children&) = delete;
};

namespace detail {
[[noreturn]] void throw_no_portal(const char* where);
/// @throws no_portal_error naming `where` outside a weft task.
inline void require_portal(const char* where) {
  if (!weft::lowlevel::in_task()) throw_no_portal(where);
}

inline weft::coro<void> schedule_point() {
  weft::cancel_shielded_coro_yield();
  co_return;
}
inline weft::coro<bool> schedule_point_then(bool value) {
  weft::cancel_shielded_coro_yield();
  co_return value;
}
}  // namespace detail

/// An async context manager (see async_context.hpp) giving the entering task
/// and its children portals (always true in weft); entry and exit are
/// schedule points, not cancel points.
class portals_for_tree {
 public:
  weft::coro<void> aenter() { return detail::schedule_point(); }
  weft::coro<bool> aexit(std::exception_ptr) { return detail::schedule_point_then(false); }
};

}  // namespace greenback

// autoawait and decorate_as_sync: synchronous decorators over async functions.
#pragma once

#include <weft/greenback/await.hpp>
#include <weft/greenback/with_portal_run.hpp>

#include <functional>
#include <utility>

namespace greenback {

/// A synchronous callable that await_s async_fn(args...): for constructors,
/// destructors, callbacks and other places that cannot be coroutines.
template <class F>
auto autoawait(F async_fn) {
  return [fn = std::move(async_fn)](auto&&... args) mutable -> decltype(auto) {
    return await_(std::invoke(fn, std::forward<decltype(args)>(args)...));
  };
}

/// Applies a synchronous decorator to an async function: returns an async
/// function (its calls are awaitable from any coroutine, and from
/// asio::awaitable) that runs decorator(autoawait(async_fn)) in
/// with_portal_run_sync. E.g. a memoizing decorator then serves repeated
/// calls from its cache without awaiting anything.
template <class Decorator>
auto decorate_as_sync(Decorator decorator) {
  return [decorator = std::move(decorator)](auto async_fn) {
    auto decorated = decorator(autoawait(std::move(async_fn)));
    return [decorated = std::move(decorated)](auto&&... args) mutable {
      return with_portal_run_sync(std::ref(decorated), std::forward<decltype(args)>(args)...);
    };
  };
}

}  // namespace greenback

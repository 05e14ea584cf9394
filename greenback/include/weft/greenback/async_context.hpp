// async_context: `async with cm as v: body` from synchronous task code.
#pragma once

#include <weft/cancel_scope.hpp>
#include <weft/coro.hpp>
#include <weft/greenback/await.hpp>
#include <weft/task_group.hpp>

#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <variant>

namespace greenback {

/// An *async context manager* is any object cm with
///   cm.aenter()                   -> an awaitable of the entered value (or void)
///   cm.aexit(std::exception_ptr)  -> an awaitable of bool
/// aexit receives the exception in flight (or nullptr) and returns true to
/// suppress it; an exception thrown by aexit replaces the one in flight.
template <class CM>
concept async_context_manager = requires(CM& cm, std::exception_ptr e) {
  cm.aenter();
  cm.aexit(e);
};

/// Enters cm, runs body (with the entered value if it takes one), exits cm:
/// `async with cm as v: body` from synchronous code, through await_.
/// Returns body's value (as std::optional if aexit may suppress an exception:
/// empty when it did). Failures in enter or exit behave as in the async form.
template <class CM, class F>
  requires async_context_manager<std::remove_reference_t<CM>>
auto async_context(CM&& cm, F&& body) {
  using entered_t = detail::value_t<decltype(cm.aenter())>;
  auto call = [&](auto&&... v) -> decltype(auto) {
    if constexpr (std::is_invocable_v<F&, decltype(v)...>)
      return body(v...);
    else
      return body();
  };
  auto run = [&](auto&&... v) {
    using R = decltype(call(v...));
    std::exception_ptr in_flight;
    std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>> result;
    try {
      if constexpr (std::is_void_v<R>) {
        call(v...);
        result.emplace();
      } else {
        result.emplace(call(v...));
      }
    } catch (...) {
      in_flight = std::current_exception();
    }
    const bool suppress = await_(cm.aexit(in_flight));
    if (in_flight && !suppress) std::rethrow_exception(in_flight);
    if constexpr (!std::is_void_v<R>) return result;
  };
  if constexpr (std::is_void_v<entered_t>) {
    await_(cm.aenter());
    return run();
  } else {
    entered_t v = await_(cm.aenter());
    return run(v);
  }
}

namespace detail {
template <class Scope>
class scope_context_manager {
 public:
  explicit scope_context_manager(Scope& s) noexcept : s_(s) {}
  weft::coro<std::reference_wrapper<Scope>> aenter() { return enter(s_); }
  weft::coro<bool> aexit(std::exception_ptr e) { return exit(s_, std::move(e)); }

 private:
  static weft::coro<std::reference_wrapper<Scope>> enter(Scope& s) {
    s.enter();
    co_return std::ref(s);
  }
  static weft::coro<bool> exit(Scope& s, std::exception_ptr e) {
    std::exception_ptr rest = s.exit(e);  // may block (a task group waits for its children)
    if (!rest) co_return true;
    if (rest == e) co_return false;
    std::rethrow_exception(rest);  // e.g. a task group's exception_group
  }
  Scope& s_;
};
}  // namespace detail

/// weft's own scopes as async context managers: async_context(async_cm(scope), ...)
/// works on cancel scopes and task groups too.
inline detail::scope_context_manager<weft::cancel_scope> async_cm(weft::cancel_scope& s) noexcept {
  return detail::scope_context_manager<weft::cancel_scope>(s);
}
inline detail::scope_context_manager<weft::task_group> async_cm(weft::task_group& g) noexcept {
  return detail::scope_context_manager<weft::task_group>(g);
}

}  // namespace greenback

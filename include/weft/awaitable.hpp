// The C++20 awaitable protocol as concepts and traits, for generic code
// over awaitables (weft::coro, asio::awaitable, any other C++20 awaitable).
#pragma once

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

namespace weft {

/// The awaiter `co_await a` uses: a's member operator co_await, else a free
/// operator co_await, else a itself.
template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); })
    return std::forward<A>(a).operator co_await();
  else if constexpr (requires { operator co_await(std::forward<A>(a)); })
    return operator co_await(std::forward<A>(a));
  else
    return std::forward<A>(a);
}

template <class A>
using awaiter_t = std::remove_reference_t<decltype(get_awaiter(std::declval<A>()))>;

/// True for what `co_await` accepts in a coroutine whose promise has no
/// await_transform.
template <class A>
concept awaitable = requires(awaiter_t<A>& w, std::coroutine_handle<> h) {
  { w.await_ready() } -> std::convertible_to<bool>;
  w.await_suspend(h);
  w.await_resume();
};

/// The type of `co_await a`.
template <class A>
using await_result_t = decltype(std::declval<awaiter_t<A>&>().await_resume());

}  // namespace weft

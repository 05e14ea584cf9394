// Code that must not compile, one case per WEFT_CASE_* macro, and a case
// that must (so that a failure is known to come from the case, not from
// the set-up). Checked by check.cmake: each failing case gives exactly one
// error, the static_assert named in check.cmake.
#include <weft/async_generator.hpp>
#include <weft/coro.hpp>
#include <weft/threads/threads_portal.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

struct not_awaitable {};

boost::asio::awaitable<int> asio_value();

#if defined(WEFT_CASE_CORO_NOT_AWAITABLE)
weft::coro<int> f() {
  int v = co_await not_awaitable{};  // the value is used: still one error
  co_return v;
}
#elif defined(WEFT_CASE_GENERATOR_NOT_AWAITABLE)
weft::async_generator<int> f() {
  co_await not_awaitable{};
  co_yield 1;
}
#elif defined(WEFT_CASE_LVALUE_ASIO_AWAITABLE)
weft::coro<int> f() {
  auto aw = asio_value();
  co_return co_await aw;
}
#elif defined(WEFT_CASE_PORTAL_RUN_SYNC_COROUTINE)
void f(const weft::threads_portal& portal) {
  int v = portal.run_sync([] { return asio_value(); });  // the value is used: still one error
  (void)v;
}
#elif defined(WEFT_CASE_PORTAL_RUN_SYNC_SOON_COROUTINE)
void f(const weft::threads_portal& portal) { portal.run_sync_soon([]() -> weft::coro<int> { co_return 1; }); }
#else
void g(const weft::threads_portal& portal) { (void)portal.run_coroutine([] { return asio_value(); }); }
weft::coro<int> f(boost::asio::steady_timer& timer) {
  co_await timer.async_wait(boost::asio::deferred);
  auto aw = asio_value();
  co_return co_await std::move(aw);
}
#endif

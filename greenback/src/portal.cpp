// greenback portals (portal.hpp).

#include <weft/checkpoint.hpp>
#include <weft/greenback/portal.hpp>

#include <string>

namespace greenback {

no_portal_error::no_portal_error(const char* where)
    : std::logic_error(std::string(where) +
                       ": no greenback portal here (this code is not running on a weft task: an Asio handler, a "
                       "coroutine outside any fiber, or a thread without a weft runtime); call it from a task, or "
                       "reach one first with co_await greenback::with_portal_run_sync(fn) / "
                       "greenback::with_portal_run(async_fn) (greenback::ensure_portal() only works in a task)") {}

void ensure_portal() {
  if (!has_portal()) throw no_portal_error("greenback::ensure_portal");
  weft::coro_yield();
}

namespace detail {
void throw_no_portal(const char* where) { throw no_portal_error(where); }
}  // namespace detail

}  // namespace greenback

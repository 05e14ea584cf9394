// Events.

#include <weft/backend.hpp>
#include <weft/sync/event.hpp>

namespace weft {

void event::set() {
  if (set_) return;
  waiters_.check_waker("weft::event::set");
  set_ = true;
  waiters_.unpark_all();
}

void event::wait() {
  if (set_) {
    detail::raise_if_cancelled_at_entry();  // a checkpoint even when set
    return;
  }
  detail::lot_entry entry;
  waiters_.park(entry, "event");
}

async_backend& event::backend() const noexcept { return builtin_backend(); }

}  // namespace weft

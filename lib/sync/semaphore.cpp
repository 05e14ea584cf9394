// Semaphores.

#include <weft/backend.hpp>
#include <weft/sync/semaphore.hpp>

#include <stdexcept>

namespace weft {

semaphore::semaphore(std::size_t initial, std::size_t max) : value_(initial), max_(max) {
  if (initial > max) throw std::invalid_argument("weft::semaphore: the initial value exceeds the maximum");
}

void semaphore::acquire() {
  detail::raise_if_cancelled_at_entry();  // a checkpoint even when a unit is free
  if (value_ > 0 && waiters_.empty()) {
    --value_;
    return;
  }
  detail::lot_entry entry;
  waiters_.park(entry, "semaphore");  // on wake-up the releaser has handed us its unit
}

bool semaphore::try_acquire() noexcept {
  if (value_ > 0 && waiters_.empty()) {
    --value_;
    return true;
  }
  return false;
}

void semaphore::release() {
  waiters_.check_waker("weft::semaphore::release");
  if (waiters_.unpark_one() != nullptr) return;
  if (value_ == max_) throw std::logic_error("weft::semaphore::release: the semaphore is already at its maximum value");
  ++value_;
}

async_backend& semaphore::backend() const noexcept { return builtin_backend(); }

}  // namespace weft

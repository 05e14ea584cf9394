// Capacity limiters.

#include "core/runtime.hpp"

#include <weft/threads/capacity_limiter.hpp>

#include <optional>
#include <stdexcept>
#include <string>

namespace weft {

namespace {

constexpr std::size_t default_thread_tokens = 40;

// Binds the limiter to the calling thread's runtime on first use; refuses
// a runtime other than its own.
void check_runtime(detail::limiter_state& s, const char* what) {
  detail::runtime* rt = detail::runtime::current();
  if (rt == nullptr)
    throw std::logic_error(std::string(what) + ": no weft runtime runs on this thread");
  if (s.runtime_serial == 0)
    s.runtime_serial = rt->serial();
  else if (s.runtime_serial != rt->serial())
    throw std::logic_error(std::string(what) +
                           ": this capacity_limiter belongs to another runtime; a limiter is used by the tasks of "
                           "one runtime, on its thread");
}

}  // namespace

namespace detail {

void limiter_state::give_back() noexcept {
  // A waiter gets the token itself (borrowed stays), unless tokens were
  // taken away meanwhile (set_total_tokens).
  if (borrowed <= total && waiters.unpark_one() != nullptr) return;
  --borrowed;
}

}  // namespace detail

capacity_limiter::capacity_limiter(std::size_t total_tokens) : s_(new detail::limiter_state) {
  if (total_tokens == 0) {
    delete s_;
    throw std::invalid_argument("weft::capacity_limiter: total_tokens must be at least 1");
  }
  s_->total = total_tokens;
}

void capacity_limiter::acquire() {
  detail::raise_if_cancelled_at_entry();  // a checkpoint even when a token is free
  detail::require_task("weft::capacity_limiter::acquire");
  check_runtime(*s_, "weft::capacity_limiter::acquire");
  if (s_->borrowed < s_->total && s_->waiters.empty()) {
    ++s_->borrowed;
    return;
  }
  detail::lot_entry entry;
  s_->waiters.park(entry, "capacity_limiter");  // woken with a token handed over
}

bool capacity_limiter::try_acquire() {
  check_runtime(*s_, "weft::capacity_limiter::try_acquire");
  if (s_->borrowed < s_->total && s_->waiters.empty()) {
    ++s_->borrowed;
    return true;
  }
  return false;
}

void capacity_limiter::release() {
  check_runtime(*s_, "weft::capacity_limiter::release");
  if (s_->borrowed == 0)
    throw std::logic_error("weft::capacity_limiter::release: no token of this limiter is borrowed");
  s_->give_back();
}

void capacity_limiter::set_total_tokens(std::size_t n) {
  if (n == 0) throw std::invalid_argument("weft::capacity_limiter::set_total_tokens: the total must be at least 1");
  check_runtime(*s_, "weft::capacity_limiter::set_total_tokens");
  s_->total = n;
  while (s_->borrowed < s_->total && s_->waiters.unpark_one() != nullptr) ++s_->borrowed;
}

capacity_limiter& current_default_thread_limiter() {
  detail::runtime* rt = detail::runtime::current();
  if (rt == nullptr) throw std::logic_error("weft::current_default_thread_limiter: no weft runtime runs on this thread");
  // One runtime per thread at a time: the slot holds the limiter of the
  // runtime that runs here now, replaced when another starts. Jobs that
  // outlive a runtime hold their own reference to its tokens.
  struct slot {
    std::uint64_t serial = 0;
    std::optional<capacity_limiter> limiter;
  };
  thread_local slot current;
  if (current.serial != rt->serial()) {
    current.limiter.emplace(default_thread_tokens);
    current.serial = rt->serial();
  }
  return *current.limiter;
}

}  // namespace weft

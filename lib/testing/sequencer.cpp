// The sequencer.

#include <weft/testing/sequencer.hpp>

#include <stdexcept>

namespace weft::testing {

void sequencer::wait_turn(std::size_t position) {
  if (!claimed_.insert(position).second)
    throw std::logic_error("weft::testing::sequencer: position " + std::to_string(position) + " was already used");
  while (!broken_ && next_ != position) {
    detail::lot_entry entry;
    try {
      waiters_.park(entry, "sequencer");
    } catch (const cancelled&) {
      broken_ = true;
      waiters_.unpark_all();
      throw;
    }
  }
  if (broken_) throw std::runtime_error("weft::testing::sequencer: the sequence is broken (a waiter was cancelled)");
}

void sequencer::finish() noexcept {
  ++next_;
  waiters_.unpark_all();
}

}  // namespace weft::testing

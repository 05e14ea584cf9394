// Cancellation signals for use_fiber operations, reused per thread.

#include <weft/use_fiber.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace weft::detail {

namespace {

// An operation installs its cancellation handler in the signal's memory;
// Asio keeps that memory until the signal is destroyed, and reuses it for
// the next handler that fits. Reusing signals therefore saves an allocation
// and a free per operation.
constexpr std::size_t signals_kept = 64;

struct signal_pool {
  std::vector<boost::asio::cancellation_signal*> free;
  signal_pool() { free.reserve(signals_kept); }  // release never reallocates
  ~signal_pool() {
    for (auto* s : free) delete s;
  }
};

thread_local signal_pool t_signals;  // made on the thread's first acquire

// Takes the place of a finished operation's handler, which may refer to
// the operation's socket: emitting on a reused signal must not reach it.
struct no_cancellation {
  void operator()(boost::asio::cancellation_type_t) const noexcept {}
};

}  // namespace

boost::asio::cancellation_signal* acquire_op_signal() {
  if (t_signals.free.empty()) return new boost::asio::cancellation_signal;
  boost::asio::cancellation_signal* s = t_signals.free.back();
  t_signals.free.pop_back();
  return s;
}

void release_op_signal(boost::asio::cancellation_signal* s) noexcept {
  if (t_signals.free.size() >= signals_kept) {
    delete s;
    return;
  }
  // In the memory of the handler it replaces (never smaller): no allocation.
  if (s->slot().has_handler()) s->slot().emplace<no_cancellation>();
  t_signals.free.push_back(s);  // within the reserved capacity
}

}  // namespace weft::detail

namespace weft::lowlevel {

void throw_abandoned(const char* what) {
  throw abandoned_error(std::string(what) +
                        ": the operation was destroyed without completing (the executor or execution context that "
                        "was to complete it shut down first); its result is lost");
}

}  // namespace weft::lowlevel

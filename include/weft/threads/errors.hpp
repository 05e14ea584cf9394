// The errors of weft's cross-thread layer: futures and closed runtimes.
#pragma once

#include <stdexcept>
#include <string>

namespace weft {

/// The outcome of a cancelled weft::future was asked for (result(),
/// exception(), get()). what() holds every cancel reason, in the order
/// they were given, joined by '\n' ("the future was cancelled" when none
/// was given). @throws std::bad_alloc from its constructor.
class future_cancelled_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A weft::future was used in a way its state does not allow: its outcome
/// asked for before it is done, or a promise set twice. A misuse, hence a
/// std::logic_error. @throws std::bad_alloc from its constructor.
class invalid_state_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Work was handed to a runtime (or a portal, or a caller) that is not
/// running: it has not started yet, or it has ended.
/// @throws std::bad_alloc from its constructor.
class runtime_closed_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace weft

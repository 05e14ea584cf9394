// weft::greenback: portals that let synchronous task code await coroutines.
//
// Every weft task runs on its own fiber and therefore has a portal; see
// README.md ("greenback") for the model. This header currently provides the
// portal queries; await_ and the adapters build on them.
#pragma once

#include <weft/errors.hpp>

#include <stdexcept>

namespace greenback {

/// Thrown when await_ is called where no portal exists (an Asio handler, a
/// coroutine running outside any fiber, a thread without a weft runtime).
class no_portal_error : public std::logic_error {
 public:
  no_portal_error();
};

/// True in weft task code: every task has a portal. False in Asio handlers,
/// in coroutines running outside any fiber, and on foreign threads. Never throws.
bool has_portal() noexcept;

}  // namespace greenback

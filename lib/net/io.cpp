// The out-of-line parts of net/io.hpp and net/socket_op.hpp: which runtime
// a socket belongs to, and where it goes when that runtime ends.

#include "core/runtime.hpp"
#include "net/io.hpp"

#include <weft/errors.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <stdexcept>
#include <string>

namespace weft::net::detail {

std::uint64_t current_runtime_serial() noexcept {
  const weft::detail::runtime* rt = weft::detail::current_runtime();
  return rt != nullptr ? rt->serial() : 0;
}

boost::asio::io_context& orphan_io_context() noexcept {
  static auto* const context = new boost::asio::io_context(1);  // never destroyed, on purpose
  return *context;
}

void throw_op_abandoned() {
  throw abandoned_error(
      "weft::net: a socket operation was destroyed without completing (its io_context shut down first); its result "
      "is lost");
}

void check_io_context(const boost::asio::any_io_executor& io_object_executor, const char* what) {
  weft::detail::runtime* rt = weft::detail::current_runtime();
  if (rt == nullptr || io_object_executor == boost::asio::any_io_executor(rt->io().get_executor())) return;
  throw std::invalid_argument(std::string(what) +
                              ": the socket belongs to another io_context than the running runtime's; open it on "
                              "weft::lowlevel::io_context()");
}

void check_runtime(std::uint64_t serial, const char* what) {
  if (serial == current_runtime_serial() && serial != 0) [[likely]]
    return;
  throw std::logic_error(std::string(what) +
                         ": this socket belongs to the runtime that opened it, which has ended or runs on another "
                         "thread; use it only in the tasks of that runtime");
}

}  // namespace weft::net::detail

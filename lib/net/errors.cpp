// weft::net::address_error, the base of connect_error and bind_error.

#include <weft/net/errors.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace weft::net {

struct address_error::data {
  std::string what;
  std::vector<address_attempt> attempts;
};

namespace {
std::error_code last_error(const std::vector<address_attempt>& attempts) {
  return attempts.empty() ? std::error_code() : attempts.back().error;
}
}  // namespace

address_error::address_error(std::string context, std::vector<address_attempt> attempts)
    : std::system_error(last_error(attempts), context) {
  auto d = std::make_shared<data>();
  d->what = std::move(context);
  const char* separator = ": ";
  for (const auto& a : attempts) {
    d->what += separator;
    d->what += a.address.to_string();
    d->what += ": ";
    d->what += a.error.message();
    separator = "; ";
  }
  d->attempts = std::move(attempts);
  data_ = std::move(d);
}

const char* address_error::what() const noexcept { return data_->what.c_str(); }
const std::vector<address_attempt>& address_error::attempts() const noexcept { return data_->attempts; }

}  // namespace weft::net

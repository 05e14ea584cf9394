// Datagram endpoints over IP: create_udp_endpoint.

#include "net/factory.hpp"
#include "net/io.hpp"

#include <weft/net/connect.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace weft::net {

datagram_transport create_udp_endpoint(std::optional<std::pair<std::string, int>> remote,
                                       std::optional<std::pair<std::string, int>> local, int family) try {
  lowlevel::raise_if_cancelled();
  if (!remote && !local)
    throw std::invalid_argument("weft::net::create_udp_endpoint: give a remote address, a local address, or both");
  detail::check_ip_family(family, "weft::net::create_udp_endpoint");
  if (remote) detail::check_port(remote->second, "weft::net::create_udp_endpoint");
  if (local) detail::check_port(local->second, "weft::net::create_udp_endpoint");
  std::vector<address_info> remotes, locals;
  if (local)
    locals = getaddrinfo(local->first, std::to_string(local->second), family, SOCK_DGRAM, AI_PASSIVE);
  if (remote) remotes = getaddrinfo(remote->first, std::to_string(remote->second), family, SOCK_DGRAM);
  const char* what = "weft::net::create_udp_endpoint";
  std::vector<address_attempt> attempts;
  // Try each (local, remote) pair of one family until one binds and connects.
  auto try_pair = [&](const address_info* l, const address_info* r) -> std::optional<datagram_transport> {
    const endpoint& tried = r ? r->address : l->address;
    std::string step = "opening a socket for " + tried.to_string();
    try {
      detail::dgram_socket s(lowlevel::io_context());
      s.open(detail::dgram_proto(tried.family()));
      if (l) {
        step = "binding " + l->address.to_string();
        s.bind(detail::dgram_ep(l->address));
      }
      if (r) {
        step = "connecting to " + r->address.to_string();
        s.connect(detail::dgram_ep(r->address));
      }
      return datagram_transport(std::move(s));
    } catch (const boost::system::system_error& e) {
      attempts.push_back(detail::attempt_failed(tried, e.code(), what, step));
      return std::nullopt;
    }
  };
  if (remote) {
    for (const auto& r : remotes) {
      if (local) {
        for (const auto& l : locals)
          if (l.family == r.family)
            if (auto t = try_pair(&l, &r)) return std::move(*t);
      } else if (auto t = try_pair(nullptr, &r)) {
        return std::move(*t);
      }
    }
  } else {
    for (const auto& l : locals)
      if (auto t = try_pair(&l, nullptr)) return std::move(*t);
  }
  if (attempts.empty())
    throw std::invalid_argument(std::string(what) + ": the local address " + detail::host_port(local->first, local->second) +
                                " and the remote address " + detail::host_port(remote->first, remote->second) +
                                " share no address family");
  const std::string target = remote ? "connect to " + detail::host_port(remote->first, remote->second)
                                    : "bind " + detail::host_port(local->first, local->second);
  throw connect_error(std::string(what) + ": could not " + target, std::move(attempts));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_udp_endpoint");
}

}  // namespace weft::net

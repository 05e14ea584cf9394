// Listeners on IP addresses: create_tcp_listeners, create_udp_listeners.

#include "net/factory.hpp"
#include "net/io.hpp"

#include <weft/net/connect.hpp>

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/socket_base.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace weft::net {

namespace asio = boost::asio;

namespace {

// Makes one listener per address with make(endpoint); if any fails, closes
// every one made so far and throws a bind_error listing each failure.
template <class Make>
auto bind_all(const char* what, const std::vector<address_info>& infos, int port, Make make) {
  using item = decltype(make(infos.front().address));
  std::vector<item> out;
  std::vector<address_attempt> failures;
  int chosen = port;
  for (const auto& info : infos) {
    endpoint ep = info.address;
    if (port == 0 && chosen != 0 && ep.is_ip()) ep = endpoint(ep.address(), chosen);  // one free port for all
    try {
      out.push_back(make(ep));
      if (chosen == 0 && ep.is_ip()) chosen = out.back().local_address().port();
    } catch (const boost::system::system_error& e) {
      failures.push_back(detail::attempt_failed(ep, e.code(), what, "binding a listener to " + ep.to_string()));
    } catch (const std::system_error& e) {
      failures.push_back(detail::attempt_failed(ep, e));
    }
  }
  if (!failures.empty()) {
    out.clear();  // closes every socket bound so far
    std::string context = std::string(what) + ": could not bind ";
    context += failures.size() == 1 ? "a listener" : std::to_string(failures.size()) + " of the listeners";
    throw bind_error(std::move(context), std::move(failures));
  }
  return out;
}

std::vector<address_info> passive_addresses(std::string_view host, int port, int type) {
  if (host.empty()) {
    std::vector<address_info> all = getaddrinfo("::", std::to_string(port), AF_INET6, type);
    auto v4 = getaddrinfo("0.0.0.0", std::to_string(port), AF_INET, type);
    all.insert(all.end(), v4.begin(), v4.end());
    return all;
  }
  auto infos = getaddrinfo(host, std::to_string(port), AF_UNSPEC, type, AI_PASSIVE);
  std::vector<address_info> unique;
  for (auto& i : infos)
    if (std::none_of(unique.begin(), unique.end(), [&](const address_info& u) { return u.address == i.address; }))
      unique.push_back(i);
  return unique;
}

}  // namespace

int default_backlog() noexcept {
  static const int value = [] {
    constexpr long most = 0xFFFF;  // what listen(2) takes on Linux; larger is truncated
    long n = most;
    if (std::FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "re")) {
      long read = 0;
      if (std::fscanf(f, "%ld", &read) == 1 && read >= 1) n = std::min(read, most);
      std::fclose(f);
    }
    return static_cast<int>(n);
  }();
  return value;
}

std::vector<stream_listener> create_tcp_listeners(const std::vector<std::string>& hosts, int port,
                                                  std::optional<int> backlog, bool reuse_port_option) try {
  lowlevel::raise_if_cancelled();
  detail::check_port(port, "weft::net::create_tcp_listeners");
  const int listen_backlog = detail::resolve_backlog(backlog, "weft::net::create_tcp_listeners");
  std::vector<address_info> infos;
  if (hosts.empty()) {
    infos = passive_addresses("", port, SOCK_STREAM);
  } else {
    for (const auto& h : hosts) {
      auto more = passive_addresses(h, port, SOCK_STREAM);
      infos.insert(infos.end(), more.begin(), more.end());
    }
  }
  return bind_all("weft::net::create_tcp_listeners", infos, port, [&](const endpoint& ep) {
    detail::acceptor a(lowlevel::io_context());
    a.open(detail::stream_proto(ep.family()));
    a.set_option(asio::socket_base::reuse_address(true));
    if (reuse_port_option) a.set_option(detail::reuse_port(true));
    if (ep.family() == AF_INET6) a.set_option(asio::ip::v6_only(true));
    a.bind(detail::stream_ep(ep));
    a.listen(listen_backlog);
    return stream_listener(std::move(a));
  });
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_tcp_listeners");
}

std::vector<stream_listener> create_tcp_listeners(std::string_view host, int port, std::optional<int> backlog,
                                                  bool reuse_port_option) {
  if (host.empty()) return create_tcp_listeners(std::vector<std::string>{}, port, backlog, reuse_port_option);
  return create_tcp_listeners(std::vector<std::string>{std::string(host)}, port, backlog, reuse_port_option);
}

std::vector<datagram_listener> create_udp_listeners(std::string_view host, int port, bool reuse_port_option) try {
  lowlevel::raise_if_cancelled();
  detail::check_port(port, "weft::net::create_udp_listeners");
  return bind_all("weft::net::create_udp_listeners", passive_addresses(host, port, SOCK_DGRAM), port,
                  [&](const endpoint& ep) {
    detail::dgram_socket s(lowlevel::io_context());
    s.open(detail::dgram_proto(ep.family()));
    s.set_option(asio::socket_base::reuse_address(true));
    if (reuse_port_option) s.set_option(detail::reuse_port(true));
    if (ep.family() == AF_INET6) s.set_option(asio::ip::v6_only(true));
    s.bind(detail::dgram_ep(ep));
    return datagram_listener(std::move(s));
  });
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_udp_listeners");
}

}  // namespace weft::net

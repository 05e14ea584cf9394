// TCP connections: create_tcp_connection, with Happy Eyeballs (RFC 8305).

#include "net/factory.hpp"
#include "net/io.hpp"

#include <weft/cancel_scope.hpp>
#include <weft/net/connect.hpp>
#include <weft/sync/event.hpp>
#include <weft/task_group.hpp>
#include <weft/use_fiber.hpp>

#include <boost/asio/socket_base.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace weft::net {

namespace asio = boost::asio;

namespace {

// RFC 8305 §4: IPv6 first, then alternate address families.
std::vector<endpoint> interleave(const std::vector<address_info>& infos) {
  std::vector<endpoint> v6, v4, out;
  for (const auto& i : infos) (i.family == AF_INET6 ? v6 : v4).push_back(i.address);
  std::size_t a = 0, b = 0;
  bool six = !v6.empty();
  while (a < v6.size() || b < v4.size()) {
    if (six && a < v6.size())
      out.push_back(v6[a++]);
    else if (b < v4.size())
      out.push_back(v4[b++]);
    else
      out.push_back(v6[a++]);
    six = !six;
  }
  return out;
}

void remove_duplicates(std::vector<endpoint>& eps) {
  std::vector<endpoint> unique;
  for (auto& e : eps)
    if (std::find(unique.begin(), unique.end(), e) == unique.end()) unique.push_back(e);
  eps.swap(unique);
}

}  // namespace

stream_transport create_tcp_connection(std::string_view host, int port,
                                       std::optional<std::pair<std::string, int>> local_address,
                                       duration happy_eyeballs_delay) try {
  lowlevel::raise_if_cancelled();
  detail::check_port(port, "weft::net::create_tcp_connection");
  if (local_address) detail::check_port(local_address->second, "weft::net::create_tcp_connection");
  if (std::isnan(happy_eyeballs_delay.count()) || happy_eyeballs_delay.count() < 0)
    throw std::invalid_argument("weft::net::create_tcp_connection: happy_eyeballs_delay must be at least 0 s, not " +
                                std::to_string(happy_eyeballs_delay.count()) + " s");
  std::vector<endpoint> remotes = interleave(getaddrinfo(host, std::to_string(port), AF_UNSPEC, SOCK_STREAM));
  remove_duplicates(remotes);
  std::vector<endpoint> locals;
  if (local_address) {
    for (const auto& i : getaddrinfo(local_address->first, std::to_string(local_address->second), AF_UNSPEC,
                                     SOCK_STREAM, AI_PASSIVE))
      locals.push_back(i.address);
    std::erase_if(remotes, [&](const endpoint& r) {
      return std::none_of(locals.begin(), locals.end(), [&](const endpoint& l) { return l.family() == r.family(); });
    });
    if (remotes.empty())
      throw std::invalid_argument("weft::net::create_tcp_connection: no address of " + std::string(host) +
                                  " has the address family of the local address " + local_address->first);
  }

  const char* what = "weft::net::create_tcp_connection";
  std::optional<detail::stream_socket> winner;
  // One slot per address, so that the attempts are reported in the order
  // they were started whatever order they failed in.
  std::vector<std::optional<address_attempt>> failures(remotes.size());
  auto& io = lowlevel::io_context();
  open_task_group([&](task_group& tg) {
    for (std::size_t i = 0; i < remotes.size(); ++i) {
      const endpoint& remote = remotes[i];
      auto failed = std::make_shared<event>();
      tg.start_soon([&, i, failed] {
        detail::stream_socket s(io);
        std::string step = "opening a socket for " + remote.to_string();
        try {
          s.open(detail::stream_proto(remote.family()));
          for (const auto& l : locals)
            if (l.family() == remote.family()) {
              step = "binding " + l.to_string() + " to connect to " + remote.to_string();
              s.set_option(asio::socket_base::reuse_address(true));
              s.bind(detail::stream_ep(l));
              break;
            }
          step = "connecting to " + remote.to_string();
          lowlevel::describe_wait("connect on fd", s.native_handle());
          s.async_connect(detail::stream_ep(remote), use_fiber);
        } catch (const boost::system::system_error& e) {
          failures[i] = detail::attempt_failed(remote, e.code(), what, step);
          failed->set();
          return;
        }
        if (!winner) {
          winner.emplace(std::move(s));
          tg.cancel();  // the other attempts lose and close their sockets
        }
      });
      // Start the next attempt after the delay, or as soon as this one fails.
      move_on_after(happy_eyeballs_delay).run([&] { failed->wait(); });
    }
  });
  if (winner) {
    detail::set_tcp_nodelay(winner->native_handle());
    return stream_transport(std::move(*winner));
  }
  // No winner and no cancellation (that would have left the group as
  // weft::cancelled): every attempt ran and failed.
  std::vector<address_attempt> attempts;
  for (auto& f : failures)
    if (f) attempts.push_back(std::move(*f));
  // The target is named unless it is the one address tried (a numeric
  // host), which each attempt names already.
  const std::string target = detail::host_port(host, port);
  const bool only_target = attempts.size() == 1 && attempts.front().address.to_string() == target;
  throw connect_error(std::string(what) + ": could not connect" + (only_target ? "" : " to " + target),
                      std::move(attempts));
} catch (const boost::system::system_error& e) {
  detail::rethrow_as_std(e, "weft::net::create_tcp_connection");
}

}  // namespace weft::net

// The I/O wait path allocates nothing: once a conversation is under way,
// receiving (which parks the task until data comes) and sending cost no
// heap allocation, on either side.
//
// This file replaces the global operator new of the networking test
// program with one that counts the allocations of the calling thread.

#include "net/net_support.hpp"
#include "support/replaced_new.hpp"

#include <array>
#include <cstdlib>
#include <new>
#include <span>
#include <string_view>

using namespace weft_net_test;
using weft_test::t_allocations;

namespace {

constexpr int warmup_rounds = 10;
constexpr int counted_rounds = 200;

// Runs `rounds` round trips of a 32-byte message between two tasks of this
// runtime: `ping(i)` in one (send, then receive the echo), `echo()` once per
// message in the other (receive, then send it back). Returns the
// allocations the thread made during the counted rounds.
template <class Ping, class Echo>
std::size_t allocations_of_round_trips(Ping&& ping, Echo&& echo) {
  std::size_t counted = 0;
  weft::open_task_group([&](weft::task_group& tg) {
    tg.start_soon([&] {
      for (int i = 0; i < warmup_rounds + counted_rounds; ++i) echo();
    });
    for (int i = 0; i < warmup_rounds; ++i) ping(i);
    const std::size_t before = t_allocations;
    for (int i = 0; i < counted_rounds; ++i) ping(i);
    counted = t_allocations - before;
  });
  return counted;
}

}  // namespace

TEST_CASE("a round trip on a stream transport allocates nothing once the conversation is under way") {
  for (const stream_kind kind : all_stream_kinds) {
    CAPTURE(name_of(kind));
    run_real([&] {
      auto p = make_stream_pair(kind);
      std::array<char, 32> out{}, in{}, buf{};
      auto receive_exactly = [](net::stream_transport& t, std::array<char, 32>& b) {
        for (std::size_t got = 0; got < b.size();) {
          const std::size_t n = t.recv_into(std::span<char>(b.data() + got, b.size() - got));
          REQUIRE(n > 0);
          got += n;
        }
      };
      const std::size_t allocations = allocations_of_round_trips(
          [&](int i) {
            out[0] = static_cast<char>(i);
            p.client.send_all(std::string_view(out.data(), out.size()));
            receive_exactly(p.client, in);
            CHECK(in == out);
          },
          [&] {
            receive_exactly(p.server, buf);
            p.server.send_all(std::string_view(buf.data(), buf.size()));
          });
      CHECK(allocations == 0);
    });
  }
}

TEST_CASE("a round trip between a datagram transport and a datagram listener allocates nothing once under way") {
  run_real([] {
    auto listeners = net::create_udp_listeners("127.0.0.1", 0);
    auto& server = listeners[0];
    auto client = net::create_udp_endpoint(std::make_pair(std::string("127.0.0.1"), server.local_address().port()));
    std::array<char, 32> out{}, in{}, buf{};
    const std::size_t allocations = allocations_of_round_trips(
        [&](int i) {
          out[0] = static_cast<char>(i);
          client.send(std::string_view(out.data(), out.size()));
          CHECK(client.recv_into(std::span<char>(in)) == in.size());
          CHECK(in == out);
        },
        [&] {
          auto [n, from] = server.recv_from_into(std::span<char>(buf));
          server.send_to(std::string_view(buf.data(), n), from);
        });
    CHECK(allocations == 0);
  });
}

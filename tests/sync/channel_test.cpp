#include "support/support.hpp"

#include <weft/sync/channel.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace weft_test;

TEST_CASE("a channel delivers values in the order they were sent, up to its capacity without blocking") {
  run([] {
    weft::channel<int> ch(3);
    CHECK(ch.capacity() == 3);
    CHECK(ch.size() == 0);
    ch.send(1);
    ch.send(2);
    ch.send(3);
    CHECK(ch.size() == 3);
    int four = 4;
    CHECK_FALSE(ch.try_send(four));  // full
    CHECK(four == 4);                // untouched
    CHECK(ch.receive() == 1);
    CHECK(ch.try_send(four));
    CHECK(ch.receive() == 2);
    CHECK(ch.try_receive() == std::optional<int>(3));
    CHECK(ch.receive() == 4);
    CHECK(ch.try_receive() == std::nullopt);
    CHECK(ch.size() == 0);
    CHECK(now_s() == 0);
  });
}

TEST_CASE("a channel carries move-only values") {
  run([] {
    weft::channel<std::unique_ptr<int>> ch(1);
    ch.send(std::make_unique<int>(7));
    auto p = ch.receive();
    REQUIRE(p != nullptr);
    CHECK(*p == 7);
  });
}

TEST_CASE("send blocks while the channel is full, until a receive makes room") {
  run([] {
    weft::channel<int> ch(2);
    std::vector<int> sent;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        for (int i = 1; i <= 4; ++i) {
          ch.send(i);
          sent.push_back(i);
        }
      });
      weft::testing::wait_all_tasks_blocked();
      CHECK(sent == std::vector<int>{1, 2});  // blocked sending 3
      CHECK(ch.size() == 2);
      CHECK(ch.receive() == 1);
      CHECK(ch.size() == 2);  // the blocked sender's 3 moved into the freed slot
      weft::testing::wait_all_tasks_blocked();
      CHECK(sent == std::vector<int>{1, 2, 3});  // now blocked sending 4
      CHECK(ch.receive() == 2);
      CHECK(ch.receive() == 3);
      CHECK(ch.receive() == 4);
    });
    CHECK(sent == std::vector<int>{1, 2, 3, 4});
    CHECK(ch.size() == 0);
  });
}

TEST_CASE("receive blocks while the channel is empty, until a send") {
  run([] {
    weft::channel<int> ch(4);
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        weft::sleep(3s);
        ch.send(7);
        CHECK(ch.size() == 0);  // handed straight to the blocked receiver
        weft::sleep(1s);
        ch.send(8);
      });
      CHECK(ch.receive() == 7);
      CHECK(now_s() == 3);
      CHECK(ch.receive() == 8);
      CHECK(now_s() == 4);
    });
  });
}

TEST_CASE("with capacity 0 every send waits for a receiver (rendezvous)") {
  run([] {
    weft::channel<int> ch(0);
    int v = 1;
    CHECK_FALSE(ch.try_send(v));  // nobody receiving
    CHECK(ch.try_receive() == std::nullopt);
    double sent_at = -1;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        ch.send(1);
        sent_at = now_s();
      });
      weft::sleep(2s);
      CHECK(sent_at == -1);  // still waiting for a receiver
      CHECK(ch.size() == 0);
      CHECK(ch.receive() == 1);
    });
    CHECK(sent_at == 2);

    // A receiver waiting first: the send completes at once.
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        weft::sleep(1s);
        int two = 2;
        CHECK(ch.try_send(two));
        ch.send(3);
        sent_at = now_s();
      });
      CHECK(ch.receive() == 2);
      CHECK(ch.receive() == 3);
    });
    CHECK(sent_at == 3);
  });
}

TEST_CASE("closing wakes blocked senders with channel_closed without delivering their values") {
  run([] {
    weft::channel<int> ch(1);
    ch.send(1);
    std::vector<std::string> outcome;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int v : {2, 3}) {
        tg.start_soon([&, v] {
          try {
            ch.send(v);
            outcome.push_back("sent " + std::to_string(v));
          } catch (const weft::channel_closed&) {
            outcome.push_back("closed " + std::to_string(v));
          }
        });
      }
      weft::testing::wait_all_tasks_blocked();
      CHECK(outcome.empty());
      ch.close();
      CHECK(ch.closed());
    });
    CHECK(outcome == std::vector<std::string>{"closed 2", "closed 3"});
    CHECK_THROWS_AS(ch.send(4), weft::channel_closed);
    int five = 5;
    CHECK_THROWS_AS(ch.try_send(five), weft::channel_closed);
    CHECK(ch.receive() == 1);  // the buffered value survives the close
    CHECK_THROWS_AS(ch.receive(), weft::channel_closed);
    ch.close();  // idempotent
    CHECK(ch.closed());
  });
}

TEST_CASE("after a close, receivers drain the buffered values, then get channel_closed") {
  run([] {
    weft::channel<int> ch(3);
    ch.send(1);
    ch.send(2);
    ch.send(3);
    ch.close();
    CHECK(ch.receive() == 1);
    CHECK(ch.try_receive() == std::optional<int>(2));
    CHECK(ch.receive() == 3);
    CHECK_THROWS_WITH_AS(ch.receive(), doctest::Contains("closed"), weft::channel_closed);
    CHECK_THROWS_AS(ch.receive(), weft::channel_closed);
    CHECK(ch.try_receive() == std::nullopt);
  });
}

TEST_CASE("closing wakes blocked receivers with channel_closed") {
  run([] {
    weft::channel<int> ch(2);
    int closed_count = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 3; ++i) {
        tg.start_soon([&] {
          try {
            ch.receive();
          } catch (const weft::channel_closed&) {
            ++closed_count;
            CHECK(now_s() == 1);
          }
        });
      }
      weft::sleep(1s);
      CHECK(closed_count == 0);
      ch.close();
    });
    CHECK(closed_count == 3);
  });
}

TEST_CASE("send and receive in a cancelled scope throw before touching the channel") {
  run([] {
    weft::channel<int> ch(2);
    ch.send(1);
    weft::cancel_scope scope;
    scope.cancel();
    std::optional<int> got;
    scope.run([&] {
      ch.send(2);  // there is room, but the cancellation comes first
    });
    CHECK(scope.cancelled_caught());
    CHECK(ch.size() == 1);  // 2 was not delivered

    weft::cancel_scope scope2;
    scope2.cancel();
    scope2.run([&] { got = ch.receive(); });
    CHECK(scope2.cancelled_caught());
    CHECK_FALSE(got.has_value());
    CHECK(ch.size() == 1);  // 1 is still there, not lost
    CHECK(ch.receive() == 1);
  });
}

TEST_CASE("a value handed to a blocked receiver is returned even if the receiver is cancelled at the same moment") {
  bool cancel_first = false;
  SUBCASE("send, then cancel") { cancel_first = false; }
  SUBCASE("cancel, then send") { cancel_first = true; }
  run([&] {
    weft::channel<int> ch(1);
    weft::cancel_scope scope;
    std::optional<int> got;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { scope.run([&] { got = ch.receive(); }); });
      weft::testing::wait_all_tasks_blocked();
      if (cancel_first) {
        scope.cancel();
        ch.send(42);
      } else {
        ch.send(42);
        scope.cancel();
      }
    });
    if (cancel_first) {
      // The receiver left before the send: the value waits in the channel.
      CHECK_FALSE(got.has_value());
      CHECK(scope.cancelled_caught());
      CHECK(ch.size() == 1);
      CHECK(ch.receive() == 42);
    } else {
      // The value was handed over: receive() returns it despite the cancellation.
      CHECK(got == std::optional<int>(42));
      CHECK(ch.size() == 0);
    }
  });
}

TEST_CASE("a cancelled blocked send has not delivered its value") {
  run([] {
    weft::channel<int> ch(0);
    weft::cancel_scope scope;
    bool returned = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          ch.send(5);
          returned = true;
        });
      });
      weft::testing::wait_all_tasks_blocked();
      scope.cancel();
      weft::testing::wait_all_tasks_blocked();
      CHECK(ch.try_receive() == std::nullopt);  // the value left with the sender
    });
    CHECK_FALSE(returned);
    CHECK(scope.cancelled_caught());

    // The same with a full buffer: the blocked value never enters the channel.
    weft::channel<int> buffered(1);
    buffered.send(1);
    weft::cancel_scope scope2;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { scope2.run([&] { buffered.send(2); }); });
      weft::testing::wait_all_tasks_blocked();
      scope2.cancel();
      weft::testing::wait_all_tasks_blocked();
      CHECK(buffered.receive() == 1);
      CHECK(buffered.try_receive() == std::nullopt);
    });
    CHECK(scope2.cancelled_caught());
  });
}

TEST_CASE("a send whose value was taken returns normally even if the sender is cancelled at the same moment") {
  std::size_t capacity = 0;
  SUBCASE("capacity 0: taken straight from the sender") { capacity = 0; }
  SUBCASE("capacity 1: moved into the buffer freed by a receive") { capacity = 1; }
  run([&] {
    weft::channel<int> ch(capacity);
    if (capacity == 1) ch.send(1);
    weft::cancel_scope scope;
    bool returned = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] {
          ch.send(2);
          returned = true;
        });
      });
      weft::testing::wait_all_tasks_blocked();
      if (capacity == 1) {
        CHECK(ch.receive() == 1);
      } else {
        CHECK(ch.receive() == 2);
      }
      scope.cancel();  // no checkpoint since the value was taken
    });
    CHECK(returned);  // the send completed, so it must report success
    CHECK_FALSE(scope.cancelled_caught());
    if (capacity == 1) {
      CHECK(ch.receive() == 2);
    }
    CHECK(ch.size() == 0);
  });
}

TEST_CASE("many producers and consumers deliver every value exactly once, in order per producer") {
  run([] {
    constexpr int producers = 4;
    constexpr int per_producer = 50;
    weft::channel<int> ch(2);
    std::vector<std::vector<int>> received(3);
    weft::open_task_group([&](weft::task_group& consumers) {
      for (std::size_t c = 0; c < received.size(); ++c) {
        consumers.start_soon([&, c] {
          try {
            for (;;) {
              received[c].push_back(ch.receive());
              if ((received[c].size() + c) % 4 == 0) weft::sleep(0.5s);
            }
          } catch (const weft::channel_closed&) {
          }
        });
      }
      weft::open_task_group([&](weft::task_group& senders) {
        for (int p = 0; p < producers; ++p) {
          senders.start_soon([&, p] {
            for (int i = 0; i < per_producer; ++i) {
              ch.send(p * 1000 + i);
              if ((i + p) % 3 == 0) weft::checkpoint();
              if ((i * 7 + p) % 11 == 0) weft::sleep(1s);
            }
          });
        }
      });
      ch.close();
    });
    std::vector<int> all;
    for (const auto& r : received) {
      // Each consumer sees each producer's values in increasing order.
      std::map<int, int> last;
      for (int v : r) {
        auto it = last.find(v / 1000);
        if (it != last.end()) CHECK(v > it->second);
        last[v / 1000] = v;
      }
      all.insert(all.end(), r.begin(), r.end());
      CHECK_FALSE(r.empty());  // the work was spread over the consumers
    }
    std::sort(all.begin(), all.end());
    std::vector<int> expected;
    for (int p = 0; p < producers; ++p)
      for (int i = 0; i < per_producer; ++i) expected.push_back(p * 1000 + i);
    CHECK(all == expected);
  });
}

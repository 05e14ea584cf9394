#include "support/support.hpp"

#include <weft/testing/sequencer.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using namespace weft_test;

TEST_CASE("sequencer positions run in order whatever order their tasks start in") {
  run([] {
    weft::testing::sequencer seq;
    std::vector<std::size_t> order;
    const std::vector<std::size_t> start_order = {3, 1, 4, 0, 2};
    weft::open_task_group([&](weft::task_group& tg) {
      for (std::size_t position : start_order) {
        tg.start_soon([&, position] { seq(position, [&] { order.push_back(position); }); });
      }
    });
    CHECK(order == std::vector<std::size_t>{0, 1, 2, 3, 4});
  });
}

TEST_CASE("the next position waits until the current one has finished, even when it blocks") {
  run([] {
    weft::testing::sequencer seq;
    std::vector<std::string> log;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        seq(1, [&] { log.push_back("1 starts at " + std::to_string(int(now_s()))); });
      });
      tg.start_soon([&] {
        seq(0, [&] {
          log.push_back("0 starts");
          weft::sleep(5s);
          log.push_back("0 ends");
        });
      });
    });
    CHECK(log == std::vector<std::string>{"0 starts", "0 ends", "1 starts at 5"});
  });
}

TEST_CASE("a sequencer call returns the value of its function") {
  run([] {
    weft::testing::sequencer seq;
    CHECK(seq(0, [] { return 42; }) == 42);
    std::string s = seq(1, [] { return std::string("second"); });
    CHECK(s == "second");
  });
}

TEST_CASE("a position whose function throws still lets the next position run") {
  run([] {
    weft::testing::sequencer seq;
    bool next_ran = false;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { seq(1, [&] { next_ran = true; }); });
      CHECK_THROWS_WITH_AS(seq(0, [] { throw std::runtime_error("in position 0"); }), "in position 0",
                           std::runtime_error);
    });
    CHECK(next_ran);
  });
}

TEST_CASE("using a sequencer position twice is a logic error") {
  run([] {
    weft::testing::sequencer seq;
    int runs = 0;
    seq(0, [&] { ++runs; });
    CHECK_THROWS_WITH_AS(seq(0, [&] { ++runs; }), doctest::Contains("already used"), std::logic_error);
    CHECK(runs == 1);
    // A position that is still waiting counts as used as well.
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] { seq(2, [&] { ++runs; }); });
      weft::testing::wait_all_tasks_blocked();
      CHECK_THROWS_AS(seq(2, [&] { ++runs; }), std::logic_error);
      seq(1, [&] { ++runs; });  // the sequence itself is not broken
    });
    CHECK(runs == 3);
  });
}

TEST_CASE("a waiter cancelled while waiting breaks the sequencer, and the other waiters get runtime_error") {
  run([] {
    weft::testing::sequencer seq;
    weft::cancel_scope scope;
    std::vector<std::string> outcome;
    auto waiter = [&](std::size_t position) {
      try {
        seq(position, [&] { outcome.push_back("ran " + std::to_string(position)); });
      } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("broken") != std::string::npos);
        outcome.push_back("broken " + std::to_string(position));
      }
    };
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        scope.run([&] { seq(1, [&] { outcome.push_back("ran 1"); }); });
        if (scope.cancelled_caught()) outcome.push_back("cancelled 1");
      });
      tg.start_soon(waiter, 2);
      tg.start_soon(waiter, 3);
      weft::testing::wait_all_tasks_blocked();  // position 0 has not come: all three wait
      CHECK(outcome.empty());
      scope.cancel();
      weft::testing::wait_all_tasks_blocked();
      CHECK(outcome == std::vector<std::string>{"cancelled 1", "broken 2", "broken 3"});
      // Broken for good: even the position whose turn it is now fails.
      waiter(0);
    });
    CHECK(outcome == std::vector<std::string>{"cancelled 1", "broken 2", "broken 3", "broken 0"});
  });
}

// lowlevel::spawn_system_task: tasks of the runtime outside every task group.

#include "support/support.hpp"

#include <weft/lowlevel/system_task.hpp>

#include <stdexcept>
#include <string>

using namespace weft_test;

TEST_CASE("a system task runs outside any group, is cancelled when the root task ends, and is waited for") {
  bool started = false;
  bool saw_cancelled = false;
  double ended_at = -1;
  run([&] {
    weft::lowlevel::spawn_system_task([&] {
      started = true;
      try {
        weft::sleep(100s);
      } catch (const weft::cancelled& c) {
        saw_cancelled = c.reason() == weft::cancel_reason::shutdown;
        ended_at = now_s();
        throw;
      }
    });
    CHECK_FALSE(started);  // started at the next scheduling point, not inline
    weft::sleep(5s);
    CHECK(started);
  });
  CHECK(saw_cancelled);
  CHECK(ended_at == 5);
}

TEST_CASE("an exception escaping a system task is reported on stderr, and the runtime goes on") {
  stderr_capture err;
  bool later = false;
  run([&] {
    weft::lowlevel::spawn_system_task([] { throw std::runtime_error("portal worker exploded"); });
    weft::sleep(1s);
    later = true;
  });
  CHECK(later);
  const std::string text = err.text();
  CHECK(count_of(text, "weft: system task '") == 1);
  CHECK(count_of(text, "failed: portal worker exploded") == 1);
}

TEST_CASE("spawn_system_task outside a runtime throws std::logic_error and starts nothing") {
  bool ran = false;
  CHECK_THROWS_AS(weft::lowlevel::spawn_system_task([&] { ran = true; }), std::logic_error);
  CHECK_FALSE(ran);
}

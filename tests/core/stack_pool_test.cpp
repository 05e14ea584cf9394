// The stack pool under bursts: tasks that ask for their own stack size are
// pooled by size, and the address space of a burst goes back while the
// runtime runs.
#include "support/support.hpp"

#include <weft/testing/leak_check.hpp>

#include <cstddef>

using namespace weft_test;

namespace {
}  // namespace

TEST_CASE("a burst of tasks with their own stack size maps a few slabs of that size, not a mapping per task") {
  weft::run_options options;
  options.stack_size = 32 * kib;
  weft::run(options, [] {
    const std::size_t slabs_before = weft::testing::stack_slabs_mapped();
    std::size_t mapped_during = 0;
    weft::task_options own;
    own.stack_size = 64 * kib;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 1000; ++i) tg.start_soon(own, [] { weft::coro_yield(); });
      tg.start_soon([] { weft::coro_yield(); });  // the default size meanwhile
      mapped_during = weft::testing::mapped_stack_bytes();
    });
    // 1000 stacks of 64 KiB (+ a 4 KiB guard) come 64 to a slab: 16 slabs.
    CHECK(weft::testing::stack_slabs_mapped() - slabs_before <= 17);
    CHECK(mapped_during >= 1000 * 64 * kib);
    // Reused: a second burst of the same size maps nothing new.
    const std::size_t slabs_after_first = weft::testing::stack_slabs_mapped();
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 500; ++i) tg.start_soon(own, [] { weft::coro_yield(); });
    });
    CHECK(weft::testing::stack_slabs_mapped() == slabs_after_first);
  });
}

TEST_CASE("after a burst, the slabs whose stacks are all free and trimmed are unmapped while the runtime runs") {
  weft::run_options options;
  options.stack_size = 16 * kib;
  options.stack_pool_size = 16;
  weft::release_cached_stacks();  // what ended runtimes left is not this one's
  weft::run(options, [] {
    std::size_t peak = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 5000; ++i) tg.start_soon([] { weft::coro_yield(); });
      peak = weft::testing::mapped_stack_bytes();
    });
    // Boost.Fiber hands finished fibers' stacks back lazily, at its next
    // scheduling turn.
    for (int i = 0; i < 4; ++i) weft::coro_yield();
    const std::size_t after = weft::testing::mapped_stack_bytes();
    CHECK(peak >= 5000 * 16 * kib);
    // Left: the 16 kept stacks and up to 256 more awaiting the next trim, in
    // at most a few slabs of 64 (about 1.3 MiB each), plus the root task's.
    CHECK(after <= 8 * 64 * 20 * kib);
    // The pool still works, and grows again as needed.
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 2000; ++i) tg.start_soon([] { weft::coro_yield(); });
    });
  });
  CHECK(weft::testing::live_stacks() == 0);
}

TEST_CASE("a runtime after another reuses the slabs it left, and release_cached_stacks unmaps them") {
  weft::run_options options;
  options.stack_size = 40 * kib;  // a size no other test uses
  weft::release_cached_stacks();
  auto burst = [&] {
    weft::run(options, [] {
      weft::open_task_group([](weft::task_group& tg) {
        for (int i = 0; i < 100; ++i) tg.start_soon([] { weft::coro_yield(); });
      });
    });
  };
  const std::size_t mapped_before = weft::testing::mapped_stack_bytes();
  burst();
  const std::size_t slabs_after_first = weft::testing::stack_slabs_mapped();
  // 101 stacks in slabs of 64: two slabs stay mapped for the next runtime.
  CHECK(weft::testing::mapped_stack_bytes() - mapped_before >= 2 * 64 * 40 * kib);
  burst();
  CHECK(weft::testing::stack_slabs_mapped() == slabs_after_first);
  // Another size does not take them.
  options.stack_size = 44 * kib;
  burst();
  CHECK(weft::testing::stack_slabs_mapped() > slabs_after_first);
  weft::release_cached_stacks();
  CHECK(weft::testing::mapped_stack_bytes() == mapped_before);
  CHECK(weft::testing::live_stacks() == 0);
}

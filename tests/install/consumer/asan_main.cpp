// A program built with AddressSanitizer against the installed weft::weft_asan:
// exceptions thrown, caught and rethrown on task stacks, across parks, out
// of tasks into their group, through a portal and through cancellation.
// With the plain weft::weft, ASan reports false stack-use-after-scope and
// stack-buffer-overflow errors here; with weft::weft_asan it reports nothing.
#include <weft/greenback/greenback.hpp>
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#if !defined(__SANITIZE_ADDRESS__)
#error "weft::weft_asan must bring -fsanitize=address to the programs that link it"
#endif

namespace {

using namespace std::chrono_literals;

struct failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Frames with addressable locals (poisoned redzones around them, and
// use-after-scope poisoning) between the throw and the catch.
[[gnu::noinline]] void throw_from(int depth, int tag) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "failure %d at depth %d", tag, depth);
  if (depth == 0) throw failure(buffer);
  throw_from(depth - 1, tag + static_cast<int>(std::strlen(buffer) % 2));
}

// Catches, parks with the exception in hand (another task runs on another
// stack meanwhile), then rethrows it.
[[gnu::noinline]] void throw_park_rethrow(int tag) {
  char local[32] = {};
  try {
    throw_from(8, tag);
  } catch (const failure&) {
    local[0] = 'x';
    if (tag % 2 == 0)
      weft::sleep(0s);
    else
      weft::coro_yield();
    throw;
  }
}

weft::coro<int> failing_coro(int tag) {
  weft::sleep(0s);
  throw_from(4, tag);
  co_return 0;
}

int one_run() {
  return weft::run([] {
    int caught = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < 32; ++i) {
        tg.start_soon([&caught, i] {
          for (int round = 0; round < 16; ++round) {
            try {
              throw_park_rethrow(i + round);
            } catch (const failure& e) {
              if (std::strncmp(e.what(), "failure", 7) == 0) ++caught;
            }
            try {
              (void)greenback::await_(failing_coro(i));
            } catch (const failure&) {
              ++caught;
            }
          }
        });
      }
    });
    // Failures leave their tasks and come out of the group together.
    try {
      weft::open_task_group([](weft::task_group& tg) {
        for (int i = 0; i < 8; ++i) tg.start_soon([i] { throw_park_rethrow(i); });
      });
    } catch (const weft::exception_group& group) {
      caught += static_cast<int>(group.size());
    }
    // A cancellation is an exception too: thrown at a park, through frames.
    weft::move_on_after(1ms).run([] {
      char local[128] = {};
      weft::sleep(1h);
      local[0] = 'x';
    });
    return caught;
  });
}

}  // namespace

int main() {
  const int first = one_run();
  const int second = one_run();
  std::printf("consumer_asan: caught=%d,%d\n", first, second);
  // 32 tasks x 16 rounds x 2, and at least one failure out of the group.
  const bool ok = first == second && first > 32 * 16 * 2;
  return ok ? 0 : 1;
}

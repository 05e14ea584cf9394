// A program built with AddressSanitizer that links the plain weft::weft:
// weft must warn, once, that it does not tell ASan about task switches.
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>

int main() {
  using namespace std::chrono_literals;
  auto body = [] {
    int total = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 1; i <= 3; ++i) tg.start_soon([&total, i] {
        weft::sleep(1ms);
        total += i;
      });
    });
    return total;
  };
  const int first = weft::run(body);
  std::fputs("consumer_plain_under_asan: first run returned\n", stderr);
  const int second = weft::run(body);
  std::printf("consumer_plain_under_asan: sums=%d,%d\n", first, second);
  return first == 6 && second == 6 ? 0 : 1;
}

// A program built against an installed weft.
#include <weft/greenback/greenback.hpp>
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>

int main() {
  using namespace std::chrono_literals;
  const int sum = weft::run([] {
    int total = 0;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 1; i <= 3; ++i) tg.start_soon([&total, i] {
        weft::sleep(1ms);
        total += i;
      });
    });
    return greenback::has_portal() ? total : -1;
  });
  std::printf("consumer: sum=%d\n", sum);
  return sum == 6 ? 0 : 1;
}

// The program at the top of README.md (kept identical; run by ctest).
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

int fetch(int id) {            // plain blocking code: parks the fiber, not the thread
  weft::sleep(id * 10ms);
  return id * id;
}

int main() {
  int total = weft::run([] {
    int sum = 0;
    auto deadline = weft::move_on_after(35ms);   // a cancel scope with a deadline
    deadline.run([&] {
      weft::open_task_group([&](weft::task_group& tg) {  // waits for every child
        for (int id = 1; id <= 5; ++id)
          tg.start_soon([&sum, id] { sum += fetch(id); });  // one fiber per task
      });
    });
    std::printf("deadline hit: %s\n", deadline.cancelled_caught() ? "yes" : "no");
    return sum;                                     // 1 + 4 + 9: tasks 4 and 5 were cancelled
  });
  std::printf("sum = %d\n", total);
}

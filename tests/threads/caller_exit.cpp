// A program that returns from main with a caller still running, a call of
// it parked: the caller is stopped at exit (the call cancelled, the thread
// joined), and the program exits 0. ctest checks the output.
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>

int main() {
  weft::caller c = weft::caller::start_new();
  auto parked = c.call_soon([] {
    try {
      weft::sleep(std::chrono::hours(1));
    } catch (const weft::cancelled&) {
      std::puts("caller_exit: the call was cancelled at exit");
      throw;
    }
  });
  c.call_soon([] {}).get();  // the first call is parked by now
  std::puts("caller_exit: main returns");
}

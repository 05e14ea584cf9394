// Threads: blocking work on worker threads, a future set by a plain thread,
// and a plain thread calling into the runtime through a portal.
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

using namespace std::chrono_literals;

// Blocking code that must not run on the runtime's thread.
std::size_t count_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return static_cast<std::size_t>(std::distance(std::istreambuf_iterator<char>(in), {}));
}

int main() {
  weft::run([] {
    // 1. run_in_thread: the task parks while a worker thread reads the file.
    const std::size_t size = weft::run_in_thread(count_bytes, std::string("/proc/self/status"));
    std::printf("read %zu bytes on a worker thread\n", size);

    // A stop_token first: a cancellation asks the function to stop.
    auto scope = weft::move_on_after(50ms);
    scope.run([] {
      weft::run_in_thread([](std::stop_token stop) {
        while (!stop.stop_requested()) std::this_thread::sleep_for(1ms);
      });
      weft::checkpoint();  // the cancellation arrives here, once the function has returned
    });
    std::printf("stopped after the deadline: %s\n", scope.cancelled_caught() ? "yes" : "no");

    // 2. A future set by a plain thread and awaited by the task.
    weft::promise<std::string> promise;
    weft::future<std::string> future = promise.get_future();
    future.add_done_callback([](weft::future<std::string>& f) {  // runs on this runtime, outside any task
      std::printf("callback: %s\n", f.result().c_str());
    });
    std::thread producer([promise]() mutable { promise.set_value("hello from a thread"); });
    std::printf("got: %s\n", future.get().c_str());  // parks the task, not the thread
    producer.join();

    // A wait with a timeout cancels the future it gives up on.
    weft::promise<int> never;
    weft::future<int> late = never.get_future();
    try {
      late.wait({.timeout = 10ms});
    } catch (const weft::timeout_error&) {
      std::printf("timed out; the future is cancelled: %s\n", late.cancelled() ? "yes" : "no");
    }
    weft::sleep(1ms);  // lets the loop run the done-callback before the runtime ends (else it is reported, not run)

    // 3. The other direction: a plain thread calls into this runtime through a portal.
    weft::open_threads_portal([](weft::threads_portal& portal) {
      std::thread gui([portal] {  // a copy of the handle: thread-safe
        const int n = portal.run_sync([] { return 6 * 7; });  // on the runtime's thread, outside any task
        const std::string s = portal.run_coroutine([] {       // a task of the portal: it may block
          weft::sleep(10ms);
          return std::string("slept on the runtime");
        });
        std::printf("portal: %d, %s\n", n, s.c_str());
      });
      weft::run_in_thread([&] { gui.join(); });  // the runtime goes on meanwhile
    });  // closes the portal: later calls throw weft::runtime_closed_error
  });
}

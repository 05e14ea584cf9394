// Stack overflow detection (run_options::stack_guard, stack_kind::guarded).
// Each overflow happens in a child process (support/child_process.hpp); the
// test reads its stderr and how it ended.
#include "support/child_process.hpp"
#include "support/support.hpp"

#include <weft/testing/leak_check.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <thread>

using namespace weft_test;

namespace {


// --- overflowing ------------------------------------------------------------------

constexpr unsigned char pattern_byte(std::size_t i) { return static_cast<unsigned char>(i * 7 + 3); }
constexpr std::size_t pattern_size = 256;

bool intact(const volatile unsigned char* p) {
  for (std::size_t i = 0; i < pattern_size; ++i)
    if (p[i] != pattern_byte(i)) return false;
  return true;
}

// Recursion whose frames really live on the stack (the buffer is written and
// read after the call, so no frame is elided). Each level checks that the
// watched pattern on another task's stack is still intact.
[[gnu::noinline]] int dive(int depth, const volatile unsigned char* watched) {
  volatile unsigned char frame[512];
  for (std::size_t i = 0; i < sizeof frame; ++i) frame[i] = static_cast<unsigned char>(depth + static_cast<int>(i));
  if (watched != nullptr && !intact(watched)) {
    say("child: the neighbour's stack was corrupted\n");
    _exit(3);
  }
  if (depth == 0) return frame[0];
  return dive(depth - 1, watched) + frame[static_cast<std::size_t>(depth) % sizeof frame];
}

// Far deeper than any stack used here: 4000 frames of over 512 bytes.
void overflow(const volatile unsigned char* watched = nullptr) {
  [[maybe_unused]] volatile int sink = dive(4000, watched);
  say("child: the recursion returned\n");
  _exit(4);
}

weft::run_options options(weft::stack_guard mode, std::size_t stack = 64 * kib) {
  weft::run_options o;
  o.stack_size = stack;
  o.stack_guard = mode;
  return o;
}

std::string overflow_message(const std::string& task, std::size_t stack_kib) {
  return "weft: stack overflow in task " + task + " (stack " + std::to_string(stack_kib) + " KiB)\n";
}

// A neighbour parks with a pattern on its stack, right below the stack of a
// task that overflows; the overflowing task checks the pattern at every
// level of its recursion.
void overflow_next_to_a_neighbour(const weft::run_options& o, bool expect_mprotect = false) {
  weft::run(o, [&] {
    const volatile unsigned char* watched = nullptr;
    char* neighbour_top = nullptr;
    weft::event go;
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon(weft::task_options{.name = "neighbour"}, [&] {
        volatile unsigned char pattern[pattern_size];
        for (std::size_t i = 0; i < pattern_size; ++i) pattern[i] = pattern_byte(i);
        watched = pattern;
        neighbour_top = static_cast<char*>(weft::testing::current_stack().bottom) + weft::testing::current_stack().size;
        go.wait();
        if (!intact(pattern)) {
          say("child: the neighbour's stack was corrupted\n");
          _exit(3);
        }
      });
      tg.start_soon(weft::task_options{.name = "deep diver"}, [&] {
        char* bottom = static_cast<char*>(weft::testing::current_stack().bottom);
        // The test means something only if the neighbour's stack is the
        // next one down.
        if (watched == nullptr || bottom < neighbour_top || bottom - neighbour_top > 64 * static_cast<std::ptrdiff_t>(kib)) {
          say("child: the stacks are not neighbours\n");
          _exit(5);
        }
        if (expect_mprotect) {
          // An mprotect guard is a PROT_NONE mapping that ends at the stack.
          bool found = false;
          if (FILE* maps = std::fopen("/proc/self/maps", "r")) {
            unsigned long from = 0, to = 0;
            char perms[8] = {};
            char line[512];
            while (std::fgets(line, sizeof line, maps))
              if (std::sscanf(line, "%lx-%lx %7s", &from, &to, perms) == 3 &&
                  to == reinterpret_cast<std::uintptr_t>(bottom) && std::strncmp(perms, "---", 3) == 0)
                found = true;
            std::fclose(maps);
          }
          if (!found) {
            say("child: no PROT_NONE guard below the stack\n");
            _exit(6);
          }
        }
        overflow(watched);
      });
    });
  });
}

// --- scenarios (each runs in a fresh child process) ---------------------------------

void deep_recursion() { overflow_next_to_a_neighbour(options(weft::stack_guard::automatic)); }
const child_scenario deep_recursion_scenario{"deep recursion", deep_recursion};

// Warm: the stack of a finished task, kept as it is. Trimmed: with a pool
// that keeps no free stacks, the 257th stack given back makes the pool
// return the memory of all of them (MADV_DONTNEED), which keeps guards.
void overflow_on_a_reused_stack(bool trimmed) {
  weft::run_options o = options(weft::stack_guard::automatic);
  if (trimmed) o.stack_pool_size = 0;
  weft::run(o, [&] {
    std::set<void*> used;
    const int earlier = trimmed ? 257 : 1;
    weft::open_task_group([&](weft::task_group& tg) {
      for (int i = 0; i < earlier; ++i)
        tg.start_soon([&] {
          used.insert(weft::testing::current_stack().bottom);
          volatile char most[48 * kib];  // touch most of the stack
          for (std::size_t i = 0; i < sizeof most; i += 1024) most[i] = 1;
        });
    });
    // Finished fibers give their stacks back the next time the loop turns.
    for (int i = 0; i < 100 && weft::testing::live_stacks() > 1; ++i) weft::coro_yield();
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon(weft::task_options{.name = "second"}, [&] {
        char* bottom = static_cast<char*>(weft::testing::current_stack().bottom);
        if (used.count(bottom) == 0) {
          say("child: the stack was not reused\n");
          _exit(5);
        }
        // A page the earlier task touched is resident only if its memory was kept.
        unsigned char resident = 0;
        if (::mincore(bottom + 24 * kib, 4096, &resident) != 0 || (resident & 1) == (trimmed ? 1 : 0)) {
          say(trimmed ? "child: the stack was not trimmed\n" : "child: the stack was trimmed\n");
          _exit(6);
        }
        overflow();
      });
    });
  });
}
const child_scenario warm_scenario{"reused warm", [] { overflow_on_a_reused_stack(false); }};
const child_scenario trimmed_scenario{"reused trimmed", [] { overflow_on_a_reused_stack(true); }};

// A runtime that ended leaves its slab to the next runtime with the same
// options: the stack comes back with its guard, the top of its memory kept
// and the deep part given back.
const child_scenario after_runtime_scenario{"reused after its runtime", [] {
  const weft::run_options o = options(weft::stack_guard::automatic);
  void* first = nullptr;
  weft::run(o, [&] {
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon([&] {
        first = weft::testing::current_stack().bottom;
        volatile char most[48 * kib];  // touch most of the stack
        for (std::size_t i = 0; i < sizeof most; i += 1024) most[i] = 1;
      });
    });
  });
  weft::run(o, [&] {
    weft::open_task_group([&](weft::task_group& tg) {
      tg.start_soon(weft::task_options{.name = "second"}, [&] {
        char* bottom = static_cast<char*>(weft::testing::current_stack().bottom);
        if (bottom != first) {
          say("child: the stack was not reused\n");
          _exit(5);
        }
        unsigned char deep = 0, top = 0;
        if (::mincore(bottom + 24 * kib, 4096, &deep) != 0 || ::mincore(bottom + 40 * kib, 4096, &top) != 0 ||
            (deep & 1) != 0 || (top & 1) != 1) {
          say("child: the deep part was kept or the top given back\n");
          _exit(6);
        }
        overflow();
      });
    });
  });
}};

const child_scenario mprotect_scenario{"mprotect", [] {
  overflow_next_to_a_neighbour(options(weft::stack_guard::mprotect), /*expect_mprotect=*/true);
}};

// Frames down to within 2 KiB of the stack's lowest address, then one that
// writes 512 bytes past it: over the canary, into the unused gap below.
[[gnu::noinline]] int reach_below(std::uintptr_t bottom) {
  volatile char frame[256];
  frame[0] = 1;
  const auto here = reinterpret_cast<std::uintptr_t>(&frame[0]);
  if (here > bottom + 2 * kib) return reach_below(bottom) + frame[0];
  const std::size_t n = here - bottom + 512;
  auto* below = static_cast<volatile char*>(__builtin_alloca(n));
  if (reinterpret_cast<std::uintptr_t>(below) > bottom - 256) {
    say("child: the frame did not reach below the stack\n");
    _exit(5);
  }
  for (std::size_t i = 0; i < n; ++i) below[i] = 0x5a;
  return below[0];
}

const child_scenario canary_scenario{"canary", [] {
  weft::run(options(weft::stack_guard::canary), [] {
    weft::open_task_group([](weft::task_group& tg) {
      tg.start_soon(weft::task_options{.name = "canary breaker"}, [] {
        [[maybe_unused]] volatile int sink = reach_below(reinterpret_cast<std::uintptr_t>(weft::testing::current_stack().bottom));
        say("child: parking\n");
        weft::sleep(std::chrono::milliseconds(1));
        say("child: the overflow went unnoticed\n");
        _exit(4);
      });
    });
  });
}};

// mprotect guards may use half of vm.max_map_count (two mappings each):
// stacks of slabs mapped beyond that get canaries.
const child_scenario mprotect_budget_scenario{"mprotect budget", [] {
  std::size_t max_maps = 0;
  if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    if (std::fscanf(f, "%zu", &max_maps) != 1) max_maps = 0;
    std::fclose(f);
  }
  weft::run(options(weft::stack_guard::mprotect, 32 * kib), [max_maps] {
    weft::event go, overflow_now;
    std::size_t guarded = 0;
    bool got_canary = false;
    weft::open_task_group([&](weft::task_group& tg) {
      while (!got_canary && guarded < max_maps) {
        tg.start([&] {
          if (!weft::testing::current_stack().canary) {
            ++guarded;
            go.wait();
            return;
          }
          got_canary = true;
          overflow_now.wait();
          [[maybe_unused]] volatile int sink = reach_below(reinterpret_cast<std::uintptr_t>(weft::testing::current_stack().bottom));
          say("child: parking\n");
          go.wait();
          say("child: the overflow went unnoticed\n");
          _exit(4);
        });
      }
      // The last slab with guards may have been cut short by a slab's worth.
      if (!got_canary || 2 * guarded > max_maps / 2 || 2 * guarded + 2 * 2 * 64 < max_maps / 2) {
        say("child: the mprotect budget is not half of vm.max_map_count\n");
        _exit(5);
      }
      overflow_now.set();
    });
  });
}};

void overflow_with_own_size(weft::stack_guard mode) {
  weft::run(options(mode), [] {
    weft::open_task_group([](weft::task_group& tg) {
      tg.start_soon(weft::task_options{.name = "big one", .stack_size = 256 * kib}, [] { overflow(); });
    });
  });
}
const child_scenario own_size_scenario{"own size", [] { overflow_with_own_size(weft::stack_guard::automatic); }};
const child_scenario own_size_mprotect_scenario{"own size mprotect",
                                                [] { overflow_with_own_size(weft::stack_guard::mprotect); }};

const child_scenario guarded_kind_scenario{"guarded kind", [] {
  weft::run_options o = options(weft::stack_guard::none, 32 * kib);
  o.stacks = weft::stack_kind::guarded;
  weft::run(o, [] {
    weft::open_task_group([](weft::task_group& tg) {
      tg.start_soon(weft::task_options{.name = "debugged"}, [] { overflow(); });
    });
  });
}};

const child_scenario unnamed_scenario{"unnamed", [] {
  weft::run(options(weft::stack_guard::automatic), [] {
    weft::open_task_group([](weft::task_group& tg) { tg.start_soon([] { overflow(); }); });
  });
}};

// Chaining: the scenario installs its handler before any runtime runs, as a
// program does that sets one up at start.
bool on_alt_stack() {
  stack_t ss{};
  return ::sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_ONSTACK) != 0;
}

void previous_siginfo_handler(int, siginfo_t* info, void*) {
  say(info != nullptr && info->si_code > 0 ? "previous handler: fault" : "previous handler: no fault info");
  say(on_alt_stack() ? " (called by weft)\n" : " (called directly)\n");
  _exit(42);
}

void previous_plain_handler(int) {
  say(on_alt_stack() ? "previous plain handler (called by weft)\n" : "previous plain handler (called directly)\n");
  _exit(43);
}

// A fault in a task that is no overflow: a write to a PROT_NONE page far
// from any stack.
void fault_in_a_task() {
  auto* bad = static_cast<volatile int*>(::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  weft::run([bad] {
    weft::open_task_group([bad](weft::task_group& tg) {
      tg.start_soon(weft::task_options{.name = "faulty"}, [bad] { *bad = 1; });
    });
  });
  say("child: no fault\n");
  _exit(4);
}

void install_previous(void (*handler)(int), void (*action)(int, siginfo_t*, void*)) {
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  if (action != nullptr) {
    sa.sa_sigaction = action;
    sa.sa_flags = SA_SIGINFO;
  } else {
    sa.sa_handler = handler;
  }
  ::sigaction(SIGSEGV, &sa, nullptr);
}

const child_scenario chain_siginfo_scenario{"chain siginfo", [] {
  install_previous(nullptr, previous_siginfo_handler);
  fault_in_a_task();
}};
const child_scenario chain_plain_scenario{"chain plain", [] {
  install_previous(previous_plain_handler, nullptr);
  fault_in_a_task();
}};
const child_scenario chain_default_scenario{"chain default", [] {
  install_previous(SIG_DFL, nullptr);  // AddressSanitizer's handler too goes
  fault_in_a_task();
}};

void check_overflow_reported(const child_outcome& o, const std::string& message) {
  INFO(o.describe());
  CHECK(o.killed_by(SIGABRT));
  CHECK(o.err.find(message) != std::string::npos);
  CHECK(o.err.find("child:") == std::string::npos);
}

}  // namespace

// --- tests ------------------------------------------------------------------------

TEST_CASE("a deep recursion in a named task is reported as a stack overflow before it touches the next stack") {
  check_overflow_reported(run_child("deep recursion"), overflow_message("deep diver", 64));
}

TEST_CASE("a stack reused from the pool is still guarded, also after its memory was given back") {
  SUBCASE("kept warm") { check_overflow_reported(run_child("reused warm"), overflow_message("second", 64)); }
  SUBCASE("trimmed") { check_overflow_reported(run_child("reused trimmed"), overflow_message("second", 64)); }
}

TEST_CASE("a stack that an ended runtime left to the next is still guarded, its top kept warm") {
  check_overflow_reported(run_child("reused after its runtime"), overflow_message("second", 64));
}

TEST_CASE("forced mprotect guards report an overflow") {
  check_overflow_reported(run_child("mprotect"), overflow_message("deep diver", 64));
}

TEST_CASE("in canary mode an overflow is reported when the task next parks") {
  const child_outcome o = run_child("canary");
  INFO(o.describe());
  CHECK(o.killed_by(SIGABRT));
  CHECK(o.err.find("child: parking\nweft: stack overflow in task canary breaker (stack 64 KiB, canary overwritten)\n") !=
        std::string::npos);
  CHECK(o.err.find("unnoticed") == std::string::npos);
}

TEST_CASE("when mprotect guards reach half of vm.max_map_count, further stacks get canaries") {
  const child_outcome o = run_child("mprotect budget");
  INFO(o.describe());
  CHECK(o.killed_by(SIGABRT));
  CHECK(o.err.find("child: parking\nweft: stack overflow in task ") != std::string::npos);
  CHECK(o.err.find(" (stack 32 KiB, canary overwritten)\n") != std::string::npos);
  CHECK(o.err.find("unnoticed") == std::string::npos);
  CHECK(o.err.find("child: the mprotect budget") == std::string::npos);
}

TEST_CASE("a task with its own stack size, and a stack_kind::guarded stack, are guarded too") {
  SUBCASE("its own size") { check_overflow_reported(run_child("own size"), overflow_message("big one", 256)); }
  SUBCASE("its own size, mprotect") {
    check_overflow_reported(run_child("own size mprotect"), overflow_message("big one", 256));
  }
  SUBCASE("stack_kind::guarded, even with stack_guard::none") {
    check_overflow_reported(run_child("guarded kind"), overflow_message("debugged", 32));
  }
}

TEST_CASE("an unnamed task's overflow names its function's type") {
  const child_outcome o = run_child("unnamed");
  INFO(o.describe());
  CHECK(o.killed_by(SIGABRT));
  // The handler cannot demangle (that allocates): the mangled name of the lambda's type.
  CHECK(o.err.find("weft: stack overflow in task ") != std::string::npos);
  CHECK(o.err.find("UlvE") != std::string::npos);
  CHECK(o.err.find(" (stack 64 KiB)\n") != std::string::npos);
}

TEST_CASE("a segmentation fault that is no stack overflow goes to the handler installed before weft") {
  SUBCASE("an SA_SIGINFO handler") {
    const child_outcome o = run_child("chain siginfo");
    INFO(o.describe());
    CHECK(o.exited_with(42));
    CHECK(o.err.find("previous handler: fault (called by weft)\n") != std::string::npos);
    CHECK(o.err.find("stack overflow") == std::string::npos);
  }
  SUBCASE("a plain handler") {
    const child_outcome o = run_child("chain plain");
    INFO(o.describe());
    CHECK(o.exited_with(43));
    CHECK(o.err.find("previous plain handler (called by weft)\n") != std::string::npos);
  }
  SUBCASE("the default action") {
    const child_outcome o = run_child("chain default");
    INFO(o.describe());
    CHECK(o.killed_by(SIGSEGV));
    CHECK(o.err.find("stack overflow") == std::string::npos);
  }
}

TEST_CASE("a runtime gives its thread an alternate signal stack if it has none, and takes it back") {
  stack_t before{}, during{}, after{};
  std::thread([&] {
    ::sigaltstack(nullptr, &before);
    weft::run([&] { ::sigaltstack(nullptr, &during); });
    ::sigaltstack(nullptr, &after);
  }).join();
  CHECK((during.ss_flags & SS_DISABLE) == 0);
  if ((before.ss_flags & SS_DISABLE) != 0) {
    CHECK(during.ss_size >= 64 * kib);
    CHECK((after.ss_flags & SS_DISABLE) != 0);
  } else {
    // The thread had one (AddressSanitizer gives every thread one): kept.
    CHECK(during.ss_sp == before.ss_sp);
    CHECK(after.ss_sp == before.ss_sp);
  }
}

// Helpers for weft's benchmarks: timing, medians, child processes, RSS.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bench {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// Runs fn on a fresh thread (a fresh Boost.Fiber scheduler) and returns its value.
template <class F>
double on_thread(F&& fn) {
  double result = 0;
  std::thread t([&] { result = fn(); });
  t.join();
  return result;
}

/// Runs fn in a forked child process and returns the doubles it produced, so
/// that memory figures (RSS, peak RSS) of one measurement do not leak into
/// the next. Exits on failure.
inline std::vector<double> in_child(const std::function<std::vector<double>()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0) std::exit(2);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::vector<double> out = fn();
    const std::size_t n = out.size();
    if (::write(fds[1], &n, sizeof n) != sizeof n) _exit(3);
    if (::write(fds[1], out.data(), n * sizeof(double)) != static_cast<ssize_t>(n * sizeof(double))) _exit(3);
    _exit(0);
  }
  ::close(fds[1]);
  std::size_t n = 0;
  std::vector<double> out;
  if (::read(fds[0], &n, sizeof n) == sizeof n) {
    out.resize(n);
    std::size_t got = 0;
    while (got < n * sizeof(double)) {
      const ssize_t r = ::read(fds[0], reinterpret_cast<char*>(out.data()) + got, n * sizeof(double) - got);
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bench: child process failed (status %d)\n", status);
    std::exit(1);
  }
  return out;
}

/// Resident set size of this process, in bytes.
inline double rss_bytes() {
  long pages_total = 0, pages_resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(pages_resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

/// Peak RSS of this process, in bytes.
inline double peak_rss_bytes() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) * 1024.0;
}

/// CPU time (user + system) of this process, in seconds.
inline double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/// System CPU time of this process, in seconds.
inline double system_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
}

/// Prints the standard line: BENCH <name> weft=<v><unit> <peer>=<v><unit> ratio=<weft/peer>.
inline void report(const char* name, double weft, const char* peer_name, double peer, const char* unit,
                   const char* extra = "") {
  std::printf("BENCH %s weft=%.4g%s %s=%.4g%s ratio=%.3f%s%s\n", name, weft, unit, peer_name, peer, unit,
              peer > 0 ? weft / peer : 0.0, *extra ? " " : "", extra);
  std::fflush(stdout);
}

/// Prints a reference line, a figure weft is not compared on:
/// BENCH_REF <name> value=<v><unit>.
inline void report_ref(const char* name, double value, const char* unit) {
  std::printf("BENCH_REF %s value=%.4g%s\n", name, value, unit);
  std::fflush(stdout);
}

/// Prints how this program links Boost.Fiber and Boost.Context (what a
/// task switch costs depends on it): BENCH_INFO linkage boost_fiber=static
/// boost_context=static, or shared, as found in /proc/self/maps.
inline void print_linkage(const char* program) {
  bool fiber_shared = false;
  bool context_shared = false;
  if (FILE* f = std::fopen("/proc/self/maps", "r")) {
    char line[4096];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      fiber_shared = fiber_shared || std::strstr(line, "libboost_fiber.so") != nullptr;
      context_shared = context_shared || std::strstr(line, "libboost_context.so") != nullptr;
    }
    std::fclose(f);
  }
  std::printf("BENCH_INFO linkage program=%s boost_fiber=%s boost_context=%s\n", program,
              fiber_shared ? "shared" : "static", context_shared ? "shared" : "static");
  std::fflush(stdout);
}

/// A named benchmark of a bench program.
struct entry {
  const char* name;
  void (*fn)();
};

/// The main of every bench program: prints its linkage, then runs the
/// benchmarks named on the command line (all of them without arguments).
template <std::size_t N>
int main_of(const char* program, const entry (&benches)[N], int argc, char** argv) {
  print_linkage(program);
  for (const entry& e : benches) {
    bool selected = argc < 2;
    for (int i = 1; i < argc; ++i) selected = selected || std::strcmp(argv[i], e.name) == 0;
    if (selected) e.fn();
  }
  return 0;
}

/// Number of repetitions (BENCH_REPS, default 5); medians are reported.
inline int reps() {
  const char* r = std::getenv("BENCH_REPS");
  const int n = r ? std::atoi(r) : 5;
  return n > 0 ? n : 5;
}

/// Thread CPU time (user + system) of the calling thread, in seconds.
inline double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

/// Wall time and CPU time of the calling thread over one timed loop.
class stopwatch {
 public:
  void start() {
    wall_ = now_seconds();
    cpu_ = thread_cpu_seconds();
  }
  void stop() {
    wall_ = now_seconds() - wall_;
    cpu_ = thread_cpu_seconds() - cpu_;
  }
  double wall() const { return wall_; }
  double cpu() const { return cpu_; }

 private:
  double wall_ = 0;
  double cpu_ = 0;
};

/// What one run of a benchmark measured: the timed wall time (the reported
/// figure), a CPU time (printed alongside; less disturbed by other load on
/// the machine), and how many operations they cover.
struct timing {
  double wall = 0;  // seconds
  double cpu = 0;   // seconds
  double ops = 0;
  timing& operator+=(const timing& o) {
    wall += o.wall;
    cpu += o.cpu;
    ops += o.ops;
    return *this;
  }
  double wall_us() const { return wall * 1e6 / ops; }
  double cpu_us() const { return cpu * 1e6 / ops; }
};

inline timing measured(const stopwatch& w, double ops) { return {w.wall(), w.cpu(), ops}; }

/// Medians per operation, in microseconds.
struct per_op_medians {
  double wall_us = 0;
  double cpu_us = 0;
};

/// Each of the reps() measurements runs `chunks` runs of each side,
/// alternating weft and the peer (and which of them starts), so that a
/// change of load on the machine weighs on both alike; a measurement sums
/// its runs. Returns the medians per operation (weft, peer).
template <class W, class P>
std::pair<per_op_medians, per_op_medians> interleaved(int chunks, W&& weft_run, P&& peer_run) {
  std::vector<double> w_wall, w_cpu, p_wall, p_cpu;
  for (int r = 0; r < reps(); ++r) {
    timing w, p;
    for (int c = 0; c < chunks; ++c) {
      if ((r + c) % 2 == 0) {
        w += weft_run();
        p += peer_run();
      } else {
        p += peer_run();
        w += weft_run();
      }
    }
    w_wall.push_back(w.wall_us());
    w_cpu.push_back(w.cpu_us());
    p_wall.push_back(p.wall_us());
    p_cpu.push_back(p.cpu_us());
  }
  return {{median(w_wall), median(w_cpu)}, {median(p_wall), median(p_cpu)}};
}

/// One repetition of an alternating comparison: n operations of each side
/// in `rounds` chunks, weft first in even rounds and the peer first in odd
/// ones, so that a load change on the machine weighs on both sides alike.
/// weft_chunk(m) and peer_chunk(m) run m operations and return the seconds
/// their timed loop took. Adds the ns per operation of each side to w and p.
template <class W, class P>
void alternating_repetition(int n, int rounds, W&& weft_chunk, P&& peer_chunk, std::vector<double>& w,
                            std::vector<double>& p) {
  const int m = n / rounds;
  double weft_seconds = 0;
  double peer_seconds = 0;
  for (int r = 0; r < rounds; ++r) {
    if (r % 2 == 0) {
      weft_seconds += weft_chunk(m);
      peer_seconds += peer_chunk(m);
    } else {
      peer_seconds += peer_chunk(m);
      weft_seconds += weft_chunk(m);
    }
  }
  const double ops = static_cast<double>(m) * rounds;
  w.push_back(weft_seconds * 1e9 / ops);
  p.push_back(peer_seconds * 1e9 / ops);
}

/// reps() alternating repetitions; reports the medians in ns per `per`.
template <class W, class P>
void alternating_compare(const char* name, const char* peer_name, const char* per, int n, int rounds, W&& weft_chunk,
                         P&& peer_chunk) {
  std::vector<double> w, p;
  for (int r = 0; r < reps(); ++r) alternating_repetition(n, rounds, weft_chunk, peer_chunk, w, p);
  const std::string note = "(per " + std::string(per) + ", " + std::to_string(n / rounds * rounds) +
                           " per side and repetition)";
  report(name, median(w), peer_name, median(p), "ns", note.c_str());
}

}  // namespace bench

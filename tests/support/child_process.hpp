// Death tests: a scenario runs in a fresh process (this test program,
// executed again before doctest starts), and the test reads its stderr and
// how it ended. Fresh, because a forked test process carries the signal
// handlers and runtime state of the tests before it (doctest installs its
// own fatal-signal handlers around every test case, and restores the
// previous ones afterwards).
#pragma once

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace weft_test {

/// How a child process ended.
struct child_outcome {
  int status = 0;
  std::string err;  ///< everything it wrote to stderr

  bool killed_by(int sig) const { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }
  bool exited_with(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
  std::string describe() const {
    std::string how = WIFSIGNALED(status)  ? "killed by signal " + std::to_string(WTERMSIG(status))
                      : WIFEXITED(status) ? "exited with " + std::to_string(WEXITSTATUS(status))
                                          : "status " + std::to_string(status);
    return "child " + how + "; stderr:\n" + err;
  }
};

namespace detail {
inline constexpr const char* child_env = "WEFT_TEST_CHILD_SCENARIO";
inline std::map<std::string, void (*)()>& scenarios() {
  static std::map<std::string, void (*)()> all;
  return all;
}
}  // namespace detail

/// Registers a scenario (at namespace scope: `const child_scenario x{"name", fn};`).
struct child_scenario {
  child_scenario(const char* name, void (*fn)()) { detail::scenarios()[name] = fn; }
};

/// Writes to stderr without buffering (a scenario may die at any moment).
inline void say(const char* s) { [[maybe_unused]] auto n = ::write(STDERR_FILENO, s, std::strlen(s)); }

/// Called by main() before doctest runs: if this process was started by
/// run_child, runs the scenario and exits with 0 when it returns.
inline void run_child_scenario_if_asked() {
  const char* name = std::getenv(detail::child_env);
  if (name == nullptr) return;
  const std::string scenario = name;
  ::unsetenv(detail::child_env);
  auto it = detail::scenarios().find(scenario);
  if (it == detail::scenarios().end()) {
    say("child: no such scenario\n");
    _exit(8);
  }
  ::alarm(60);  // deadlock backstop
  try {
    it->second();
  } catch (...) {
    say("child: exception\n");
    _exit(7);
  }
  _exit(0);
}

/// Runs the scenario registered as `name` in a fresh process; returns how it ended.
inline child_outcome run_child(const char* name) {
  REQUIRE(detail::scenarios().count(name) == 1);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::setenv(detail::child_env, name, 1);
    char argv0[] = "weft-test-child";
    char* argv[] = {argv0, nullptr};
    ::execv("/proc/self/exe", argv);
    say("child: exec failed\n");
    _exit(9);
  }
  ::close(fds[1]);
  child_outcome o;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    o.err.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  while (::waitpid(pid, &o.status, 0) < 0 && errno == EINTR) {
  }
  return o;
}

}  // namespace weft_test

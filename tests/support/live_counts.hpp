// What the leak check after every test case compares (see main.cpp), and
// the decorator that exempts a test case from it.
#pragma once

#include <weft/testing/leak_check.hpp>
#include <weft/testing/threads.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>

#include <dirent.h>
#include <unistd.h>

namespace weft_test {

/// Counts of what a test case must not leave behind, process-wide.
struct live_counts {
  std::size_t task_objects = 0;            ///< weft::testing::live_task_objects()
  std::size_t stacks = 0;                  ///< weft::testing::live_stacks()
  std::size_t future_states = 0;           ///< weft::testing::live_future_states()
  std::size_t thread_jobs = 0;             ///< weft::testing::live_thread_jobs()
  std::map<int, std::string> descriptors;  ///< open file descriptors, and what each refers to

  static live_counts now() {
    live_counts c;
    c.task_objects = weft::testing::live_task_objects();
    c.stacks = weft::testing::live_stacks();
    c.future_states = weft::testing::live_future_states();
    c.thread_jobs = weft::testing::live_thread_jobs();
    if (DIR* dir = ::opendir("/proc/self/fd")) {
      while (const dirent* e = ::readdir(dir)) {
        const int fd = std::atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == ::dirfd(dir)) continue;
        char target[256];
        const ssize_t n = ::readlink(("/proc/self/fd/" + std::string(e->d_name)).c_str(), target, sizeof target);
        c.descriptors[fd] = n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?";
      }
      ::closedir(dir);
    }
    return c;
  }
};

/// Every counter that differs, as "<counter>: <before> before, <after>
/// after", separated by "; "; empty if none does. A count that went down
/// is reported too: something outlived the test case that created it.
/// Descriptors opened or closed meanwhile are listed with what they refer to.
inline std::string leaks_between(const live_counts& before, const live_counts& after) {
  std::string out;
  auto compare = [&](const char* name, std::size_t b, std::size_t a) {
    if (a == b) return;
    if (!out.empty()) out += "; ";
    out += std::string(name) + ": " + std::to_string(b) + " before, " + std::to_string(a) + " after";
  };
  compare("live task objects", before.task_objects, after.task_objects);
  compare("live task stacks", before.stacks, after.stacks);
  compare("live weft::future states", before.future_states, after.future_states);
  compare("live run_in_thread jobs", before.thread_jobs, after.thread_jobs);
  if (before.descriptors != after.descriptors) {
    compare("open file descriptors", before.descriptors.size(), after.descriptors.size());
    auto list = [&](const char* what, const std::map<int, std::string>& in, const std::map<int, std::string>& not_in) {
      std::string items;
      for (const auto& [fd, target] : in) {
        const auto it = not_in.find(fd);
        if (it == not_in.end() || it->second != target)
          items += (items.empty() ? "" : ", ") + std::to_string(fd) + " " + target;
      }
      if (!items.empty()) out += std::string(out.empty() ? "" : "; ") + what + ": " + items;
    };
    list("opened", after.descriptors, before.descriptors);
    list("closed", before.descriptors, after.descriptors);
  }
  return out;
}

/// leaks_between(before, now): for a check in the middle of a test case,
/// `CHECK(leaks_since(before) == "")`.
inline std::string leaks_since(const live_counts& before) { return leaks_between(before, live_counts::now()); }

/// What the check after a test case leaves out (see the decorators below).
enum class unchecked { nothing, descriptors, everything };

namespace detail {
/// The test cases (file, line) the check after every test case treats
/// differently, and how.
inline std::map<std::pair<std::string, unsigned>, unchecked>& leak_check_exemptions() {
  static std::map<std::pair<std::string, unsigned>, unchecked> all;
  return all;
}
template <unchecked What>
struct exemption {
  const char* reason;  ///< why: only for test cases that cannot help it (say so in a comment too)
  void fill(doctest::detail::TestCase& tc) const {
    detail::leak_check_exemptions()[{tc.m_file.c_str(), tc.m_line}] = What;
  }
  void fill(doctest::detail::TestSuite&) const {}
};
}  // namespace detail

/// A doctest decorator: the test case is not leak-checked when it ends.
using no_leak_check = detail::exemption<unchecked::everything>;
/// A doctest decorator: the test case's open file descriptors are not
/// compared when it ends (its other counts are).
using no_descriptor_check = detail::exemption<unchecked::descriptors>;

/// What the check after the test case `tc` leaves out.
inline unchecked exemption_of(const doctest::TestCaseData& tc) {
  const auto& all = detail::leak_check_exemptions();
  const auto it = all.find({tc.m_file.c_str(), tc.m_line});
  return it == all.end() ? unchecked::nothing : it->second;
}

}  // namespace weft_test

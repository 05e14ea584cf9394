// Test cases that need what this machine may not offer (a privilege, a
// kernel feature) are decided at registration: without it they are
// skipped, and the skip is reported (see main.cpp), never passed silently.
#pragma once

#include <doctest/doctest.h>

namespace weft_test {

/// The doctest test suite of every test case registered with `needs`.
/// ctest runs it as a test of its own (tests/CMakeLists.txt), which it
/// reports as skipped when none of its test cases could run.
inline constexpr const char* capability_suite = "needs_capability";

/// A doctest decorator: `TEST_CASE("..." * weft_test::needs(available, "what is missing"))`.
/// The test case goes to capability_suite; unless `available`, it is
/// skipped and reported as "SKIPPED: <test case> (<missing>)".
struct needs {
  bool available;
  const char* missing;
  void fill(doctest::detail::TestCase& tc) const {
    tc.m_test_suite = capability_suite;
    if (!available) {
      tc.m_skip = true;
      tc.m_description = missing;
    }
  }
  void fill(doctest::detail::TestSuite&) const {}
};

/// The exit status of a test program all of whose selected test cases were
/// skipped (ctest's SKIP_RETURN_CODE).
inline constexpr int all_skipped_exit_status = 77;

}  // namespace weft_test

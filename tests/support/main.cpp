// The main program of every test binary: doctest, plus a listener that
// checks after every test case that it left nothing alive, and reports the
// test cases skipped for a missing capability.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "child_process.hpp"
#include "live_counts.hpp"
#include "skips.hpp"

#include <cstring>
#include <exception>
#include <ostream>
#include <string>

namespace {

// Runs inside doctest's own run loop. This is the one translation unit
// with doctest's implementation, which the listener needs: doctest has
// already tallied a test case when listeners hear of its end, so a failure
// found then must be added to that tally by hand.
class test_case_checks final : public doctest::IReporter {
 public:
  explicit test_case_checks(const doctest::ContextOptions& options) : options_(options) {}

  static inline unsigned ran = 0;
  static inline unsigned skipped = 0;

  void test_case_start(const doctest::TestCaseData& tc) override {
    ++ran;
    current_ = &tc;
    before_ = weft_test::live_counts::now();
  }

  void test_case_end(const doctest::CurrentTestCaseStats&) override {
    const weft_test::unchecked exempt = weft_test::exemption_of(*current_);
    if (exempt == weft_test::unchecked::everything) return;
    weft_test::live_counts after = weft_test::live_counts::now();
    if (exempt == weft_test::unchecked::descriptors) after.descriptors = before_.descriptors;
    const std::string leaks = weft_test::leaks_between(before_, after);
    if (!leaks.empty()) fail_current_test_case("the test case left something alive: " + leaks);
    // The thread's exception state (which weft swaps per task) is as the
    // test case found it: no exception being handled, none in flight.
    if (std::current_exception() != nullptr || std::uncaught_exceptions() != 0)
      fail_current_test_case("the test case left the thread handling an exception (its exception state leaked)");
  }

  void test_case_skipped(const doctest::TestCaseData& tc) override {
    // Also called for test cases that the command line filtered out.
    if (!tc.m_skip || options_.no_skip || std::strcmp(tc.m_test_suite, weft_test::capability_suite) != 0 ||
        !selected(tc))
      return;
    ++skipped;
    *options_.cout << "SKIPPED: " << tc.m_name << " (needs " << tc.m_description << ")\n";
  }

  void test_run_end(const doctest::TestRunStats&) override {
    if (skipped > 0) *options_.cout << "SKIPPED: " << skipped << " test case(s) for a missing capability\n";
  }

  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}

 private:
  // Reports `what` as a failed check at the test case's line, and counts
  // the test case as failed.
  void fail_current_test_case(const std::string& what) {
    doctest::detail::ContextState& cs = *doctest::detail::g_cs;
    cs.numAsserts -= cs.numAssertsCurrentTest;
    cs.numAssertsFailed -= cs.numAssertsFailedCurrentTest;
    if (!cs.testCaseSuccess) --cs.numTestCasesFailed;
    ADD_FAIL_CHECK_AT(current_->m_file.c_str(), static_cast<int>(current_->m_line), what);
    cs.finalizeTestCaseData();
  }

  // Whether the command line's filters select tc (doctest's own test).
  static bool selected(const doctest::TestCaseData& tc) {
    const doctest::detail::ContextState& cs = *doctest::detail::g_cs;
    const auto& f = cs.filters;
    const bool cs_ = cs.case_sensitive;
    using doctest::matchesAny;
    return matchesAny(tc.m_file.c_str(), f[0], true, cs_) && !matchesAny(tc.m_file.c_str(), f[1], false, cs_) &&
           matchesAny(tc.m_test_suite, f[2], true, cs_) && !matchesAny(tc.m_test_suite, f[3], false, cs_) &&
           matchesAny(tc.m_name, f[4], true, cs_) && !matchesAny(tc.m_name, f[5], false, cs_);
  }

  const doctest::ContextOptions& options_;
  const doctest::TestCaseData* current_ = nullptr;
  weft_test::live_counts before_;
};

}  // namespace

DOCTEST_REGISTER_LISTENER("weft test case checks", 1, test_case_checks);

int main(int argc, char** argv) {
  weft_test::run_child_scenario_if_asked();
  const int status = doctest::Context(argc, argv).run();
  if (status == 0 && test_case_checks::ran == 0 && test_case_checks::skipped > 0)
    return weft_test::all_skipped_exit_status;
  return status;
}

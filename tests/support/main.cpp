#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "child_process.hpp"

int main(int argc, char** argv) {
  weft_test::run_child_scenario_if_asked();
  return doctest::Context(argc, argv).run();
}

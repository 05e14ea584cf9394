// The doctest main of the ThreadSanitizer tests (no fibers, no child processes).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

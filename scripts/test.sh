#!/usr/bin/env bash
# Installs what is missing, checks that greenback uses only weft's public
# and lowlevel interfaces, then builds and runs the whole test suite twice
# (a normal build, warnings are errors, and an AddressSanitizer + UBSan
# build), and the core and greenback tests and the transports' reads (which
# depend most on the Asio internals weft uses) once more with weft built on Asio's public API only
# (WEFT_PORTABLE_ASIO, the fallback for Boost versions other than the pinned
# one). The normal build also builds the installed ASan variant, which the
# install test links; the benchmarks are built (against the installed
# package) and run by scripts/bench.sh, not here.
# Debug information is line tables only (-g1): enough for symbolized stack
# traces and sanitizer reports, at three quarters of the build time. The
# test files are compiled four to a translation unit (WEFT_UNITY_TESTS),
# which halves the tests' build time.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
weft_install_packages
jobs="$(weft_jobs)"

status=0
test_env=()  # extra environment for the tests of a suite (not its build)
run_suite() {
  local name="$1" dir="$2"
  shift 2
  echo "== weft: $name build =="
  local start=$SECONDS built=0
  if weft_configure "$dir" "$@" && cmake --build "$dir" -j "$jobs" && built=$SECONDS &&
    (cd "$dir" && env "${test_env[@]}" ctest --output-on-failure -j "$jobs"); then
    echo "== weft: $name build passed (built in $((built - start)) s, tested in $((SECONDS - built)) s) =="
  else
    echo "== weft: $name build FAILED =="
    status=1
  fi
}

echo "== weft: greenback uses weft's public and lowlevel interfaces only =="
if grep -rn -e "weft::detail" -e "lib/" "$WEFT_ROOT/greenback"; then
  echo "== weft: greenback names weft::detail or a lib/ header (above) FAILED =="
  status=1
fi

relwithdebinfo=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DWEFT_UNITY_TESTS=ON)
# The normal build's tests run with glibc's per-thread cache off and freed
# memory overwritten: a use of freed memory that the sanitizers cannot see
# (inside the uninstrumented C++ runtime, say an exception's reference
# count) then fails at once instead of depending on the heap's layout.
test_env=(GLIBC_TUNABLES=glibc.malloc.tcache_count=0 MALLOC_PERTURB_=165)
run_suite normal "$WEFT_ROOT/build" "${relwithdebinfo[@]}" -DWEFT_WERROR=ON -DWEFT_BUILD_BENCH=OFF
test_env=()
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=0}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
  run_suite "ASan+UBSan" "$WEFT_ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DWEFT_SANITIZE=ON -DWEFT_BUILD_BENCH=OFF -DWEFT_UNITY_TESTS=ON \
  -DWEFT_HEADER_CHECK=OFF

echo "== weft: portable Asio build =="
start=$SECONDS
portable="$WEFT_ROOT/build-portable"
if weft_configure "$portable" "${relwithdebinfo[@]}" -DWEFT_WERROR=ON -DWEFT_PORTABLE_ASIO=ON \
  -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_SAMPLES=OFF -DWEFT_HEADER_CHECK=OFF -DWEFT_INSTALL_ASAN_VARIANT=OFF &&
  cmake --build "$portable" -j "$jobs" --target weft_greenback_tests weft_core_tests weft_net_read_tests &&
  "$portable/tests/weft_greenback_tests" --no-intro=true && "$portable/tests/weft_core_tests" --no-intro=true \
    --test-suite-exclude=needs_capability &&
  "$portable/tests/weft_net_read_tests" --no-intro=true --test-suite-exclude=needs_capability; then
  echo "== weft: portable Asio build passed ($((SECONDS - start)) s) =="
else
  echo "== weft: portable Asio build FAILED =="
  status=1
fi

echo "== weft: $SECONDS s in all =="
exit $status

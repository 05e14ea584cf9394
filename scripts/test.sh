#!/usr/bin/env bash
# Installs what is missing, then builds and runs the whole test suite twice:
# a normal build (warnings are errors) and an AddressSanitizer + UBSan build.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
weft_install_packages
jobs="$(weft_jobs)"

status=0
run_suite() {
  local name="$1" dir="$2"
  shift 2
  echo "== weft: $name build =="
  if weft_configure "$dir" "$@" && cmake --build "$dir" -j "$jobs" &&
    (cd "$dir" && ctest --output-on-failure -j "$jobs"); then
    echo "== weft: $name build passed =="
  else
    echo "== weft: $name build FAILED =="
    status=1
  fi
}

run_suite normal "$WEFT_ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=ON -DWEFT_BUILD_BENCH=ON
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=0}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
  run_suite "ASan+UBSan" "$WEFT_ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON -DWEFT_BUILD_BENCH=OFF \
  -DWEFT_HEADER_CHECK=OFF

exit $status

#!/usr/bin/env bash
# Installs what is missing, builds in Release and runs every benchmark.
# Each prints lines: BENCH <name> weft=<v><unit> <peer>=<v><unit> ratio=<weft/peer>
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
weft_install_packages
build="$WEFT_ROOT/build-release"
weft_configure "$build" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_SAMPLES=OFF \
  -DWEFT_HEADER_CHECK=OFF -DWEFT_BUILD_BENCH=ON
cmake --build "$build" -j "$(weft_jobs)"
status=0
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  "$b" "$@" || status=1
done
exit $status

#!/usr/bin/env bash
# Installs what is missing, builds weft in Release, installs it into a
# prefix, builds the benchmarks as a separate project against that install
# (find_package(weft), as users get it), and runs every benchmark.
# Each prints lines: BENCH <name> weft=<v><unit> <peer>=<v><unit> ratio=<weft/peer>
# and reference lines: BENCH_REF <name> value=<v><unit>
# and first: BENCH_INFO linkage program=<name> boost_fiber=<static|shared> ...
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
WEFT_PACKAGES+=(wrk)  # the HTTP load generator of bench_http
weft_install_packages
build="$WEFT_ROOT/build-release"
prefix="$build/prefix"
bench_build="$WEFT_ROOT/build-bench"
weft_configure "$build" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_SAMPLES=OFF \
  -DWEFT_HEADER_CHECK=OFF -DWEFT_BUILD_BENCH=OFF
cmake --build "$build" -j "$(weft_jobs)"
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" > /dev/null
cmake -S "$WEFT_ROOT/bench" -B "$bench_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$bench_build" -j "$(weft_jobs)"
status=0
for b in "$bench_build"/bench_*; do
  [ -x "$b" ] || continue
  "$b" "$@" || status=1
done
exit $status

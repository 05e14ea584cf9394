#!/usr/bin/env bash
# Installs what is missing, builds weft, and runs the flagship sample.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
weft_install_packages
build="$WEFT_ROOT/build-demo"
weft_configure "$build" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_HEADER_CHECK=OFF
cmake --build "$build" --target flagship -j "$(weft_jobs)"
"$build/samples/flagship"

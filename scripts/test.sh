#!/usr/bin/env bash
# Builds with AddressSanitizer + UndefinedBehaviorSanitizer and warnings as
# errors, then runs every unit and integration test (ctest).  Extra arguments
# go to ctest (e.g. -R journal).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/deps.sh"
build="$root/build-asan"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Asan -DSJ_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rm -rf "$build/test-tmp" && mkdir -p "$build/test-tmp"
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"

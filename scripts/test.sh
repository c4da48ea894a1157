#!/usr/bin/env bash
# Runs every unit and integration test (ctest) twice:
#   1. built with AddressSanitizer + UndefinedBehaviorSanitizer, warnings as errors;
#   2. a plain debug build under valgrind (unit tests, and the server under
#      every integration test): any memory error or leak fails the test.
# Extra arguments go to both ctest runs (e.g. -R journal).  SJ_SKIP_VALGRIND=1
# runs only the first stage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
SJ_DEPS_EXTRA="valgrind" bash "$root/scripts/deps.sh"

run_suite() {
  local build=$1; shift
  local -a cmake_args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmake_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  cmake -S "$root" -B "$build" "${cmake_args[@]}" >/dev/null
  cmake --build "$build" -j"$(nproc)"
  rm -rf "$build/test-tmp" && mkdir -p "$build/test-tmp"
  (cd "$build" && ctest --output-on-failure -j"$(nproc)" "$@")
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "== stage 1: ASan + UBSan"
run_suite "$root/build-asan" -DCMAKE_BUILD_TYPE=Asan -DSJ_WERROR=ON -- "$@"

if [ "${SJ_SKIP_VALGRIND:-0}" != 1 ]; then
  echo "== stage 2: valgrind"
  run_suite "$root/build-valgrind" -DCMAKE_BUILD_TYPE=Debug -DSJ_WERROR=ON -DSJ_VALGRIND=ON \
    -- --timeout 900 "$@"
fi

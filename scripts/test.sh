#!/usr/bin/env bash
# Runs every unit and integration test (ctest) twice, then the fuzzers:
#   1. built with AddressSanitizer + UndefinedBehaviorSanitizer, warnings as errors;
#   2. a plain debug build under valgrind (unit tests, and the server under
#      every integration test): any memory error or leak fails the test.
#      Tests labelled no_valgrind (the crash harness, which restarts the
#      server a hundred times) run in stage 1 only;
#   3. the libFuzzer harnesses, built with clang into build-fuzz: their seed
#      corpora replayed, then each fuzzed for SJ_FUZZ_SECONDS (default 20)
#      (tests/fuzz/run.sh);
#   4. built with ThreadSanitizer (build-tsan): the unit and integration
#      tests, the server under each, halting at the first report
#      (suppressions: tests/tsan.supp, third-party false positives only).
#      Not the crash harness, the e2e tests with real agent CLIs,
#      test_agent_faults (its 200 MiB floods alone outlast the test's
#      timeout under TSan) or the PostgreSQL/ClickHouse export tests: too
#      slow under TSan for what they add; the same threads run in the rest;
#   5. the Debian package: built, installed, checked, served from, purged.
# Extra arguments go to every ctest run (e.g. -R journal).  SJ_SKIP_VALGRIND=1
# skips the second stage, SJ_SKIP_FUZZ=1 the third, SJ_SKIP_TSAN=1 the fourth,
# SJ_SKIP_DEB=1 the fifth.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
SJ_DEPS_EXTRA="valgrind clang libclang-rt-dev" bash "$root/scripts/deps.sh"

run_suite() {
  local build=$1; shift
  local -a cmake_args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmake_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  cmake -S "$root" -B "$build" "${cmake_args[@]}" >/dev/null
  cmake --build "$build" -j"$(nproc)"
  # A storage-fault test that died half-way may have left its tmpfs mounted.
  while read -r _ mnt _; do
    case $mnt in "$build/test-tmp/"*) umount -l "$mnt" || true ;; esac
  done </proc/mounts
  rm -rf "$build/test-tmp" && mkdir -p "$build/test-tmp"
  (cd "$build" && ctest --output-on-failure -j"$(nproc)" "$@")
}

# The export tests need real PostgreSQL and ClickHouse servers: throwaway
# ones on 127.0.0.1 (tests/servers/, which install the packages if missing),
# stopped however this script ends.  Their URLs reach the tests as
# DATABASE_URL and CLICKHOUSE_URL (PGCI_DIR and CHCI_DIR to restart them);
# under CI=true a test fails when they are missing.  SJ_NO_TARGET_SERVERS=1
# skips them (the export tests then skip, outside CI).
servers="$root/tests/servers"
stop_target_servers() {
  if [ -n "${PGCI_DIR:-}" ]; then bash "$servers/stop-postgres.sh" "$PGCI_DIR" || true; fi
  if [ -n "${CHCI_DIR:-}" ]; then bash "$servers/stop-clickhouse.sh" "$CHCI_DIR" || true; fi
}
if [ "${SJ_NO_TARGET_SERVERS:-0}" != 1 ]; then
  trap stop_target_servers EXIT
  eval "$(bash "$servers/start-postgres.sh")"
  eval "$(bash "$servers/start-clickhouse.sh")"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "== stage 1: ASan + UBSan"
run_suite "$root/build-asan" -DCMAKE_BUILD_TYPE=Asan -DSJ_WERROR=ON -- "$@"

if [ "${SJ_SKIP_VALGRIND:-0}" != 1 ]; then
  echo "== stage 2: valgrind"
  run_suite "$root/build-valgrind" -DCMAKE_BUILD_TYPE=Debug -DSJ_WERROR=ON -DSJ_VALGRIND=ON \
    -- --timeout 900 -LE no_valgrind "$@"
fi

if [ "${SJ_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== stage 3: fuzz"
  bash "$root/tests/fuzz/run.sh" "$root/build-fuzz"
fi

if [ "${SJ_SKIP_TSAN:-0}" != 1 ]; then
  echo "== stage 4: TSan"
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp}
  run_suite "$root/build-tsan" -DCMAKE_BUILD_TYPE=Tsan -DSJ_WERROR=ON \
    -- --timeout 900 \
    -E '^(crash/|e2e/|exports$|integration/test_(e2e_|agent_faults$|export_(pg|ch)$))' "$@"
fi

# The Debian package (scripts/debian/check-package.sh): built with cpack from
# a Release build in build-deb, installed with apt-get, its files, man page
# and systemd unit checked, the installed binary started on a loopback port
# and asked for /v1/health with the token postinst made, then purged.
# SJ_SKIP_DEB=1 skips it.
if [ "${SJ_SKIP_DEB:-0}" != 1 ]; then
  echo "== stage 5: Debian package"
  SJ_DEPS_EXTRA="man-db" bash "$root/scripts/deps.sh"
  bash "$root/scripts/debian/check-package.sh" "$root/build-deb"
fi

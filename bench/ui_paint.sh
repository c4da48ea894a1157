#!/usr/bin/env bash
# First transcript paint of a 100,000-event session in the inspector,
# measured in headless Chromium (issue 14; goal <= 300 ms).  See
# docs/benchmarks.md, "Inspector: first transcript paint".
#
#   bench/ui_paint.sh [--events N] [--markdown-events N] [--runs N]
#
# A Release build of the server (build-bench, as the other benchmarks), the
# browser tests' pinned puppeteer-core (tests/browser/install.sh, no browser
# download) and Debian's chromium; then bench/ui_paint.cjs imports the
# sessions, starts the server on 127.0.0.1 and prints a JSON summary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
events=100000 runs=5 mdevents=
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --markdown-events) mdevents=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [--events N] [--markdown-events N] [--runs N]" >&2; exit 2 ;;
  esac
done
build=${SJ_BENCH_BUILD:-$root/build-bench}
work=$(mktemp -d "${TMPDIR:-/tmp}/sj-ui-paint.XXXXXX")
trap 'rm -rf "$work"' EXIT

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j2 --target sandbox-journal >/dev/null
bash "$root/tests/browser/install.sh" "$build/browser-deps"

echo "# $(date -u +%FT%TZ) $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "$(${SJ_CHROMIUM:-/usr/bin/chromium} --version 2>/dev/null | head -1)" >&2
SJ_BINARY="$build/sandbox-journal" SJ_BROWSER_MODULES="$build/browser-deps" \
SJ_TEST_TMPDIR="$work" SJ_PAINT_EVENTS="$events" SJ_PAINT_MD_EVENTS="${mdevents:-$events}" \
SJ_PAINT_RUNS="$runs" \
  node "$root/bench/ui_paint.cjs"

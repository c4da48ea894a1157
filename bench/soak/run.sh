#!/usr/bin/env bash
# The soak benchmark (docs/benchmarks.md, "Soak"): a release build of the
# server on a fresh data directory, 100 mock sessions appending as fast as
# they are acknowledged and 1,000 SSE subscribers, for a bounded time, all on
# 127.0.0.1.  Prints events/s, append-to-SSE latency, the server's RSS over
# time and the error count (which must be 0; the exit status says so).
#
# usage: bench/soak/run.sh [SECONDS] [SESSIONS] [SUBSCRIBERS]   (60 100 1000)
# Extra server options go in SJ_SOAK_SERVER_ARGS (e.g. "--durability normal").
# Not a test: nothing runs it in CI.  Only the server it started is stopped,
# by its PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
sessions=${2:-100}
subscribers=${3:-1000}
build="$root/build-release"

bash "$root/scripts/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target sandbox-journal >/dev/null
cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -pthread "$root/bench/soak/soak.c" \
  "$root/bench/common/net.c" -o "$build/soak"

data=$(mktemp -d /tmp/sj-soak.XXXXXX)
out="$data/server.out"
ulimit -n "$(ulimit -Hn)"
# shellcheck disable=SC2086
"$build/sandbox-journal" server --host 127.0.0.1 --port 0 --no-token --data-dir "$data/d" \
  --mock-delay-ms 0 ${SJ_SOAK_SERVER_ARGS:-} >"$out" 2>"$data/server.err" &
pid=$!
cleanup() {
  if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$data"
}
trap cleanup EXIT
port=""
for _ in $(seq 100); do
  port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$out")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "soak: the server did not start" >&2; cat "$data/server.err" >&2; exit 1; }

echo "soak: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "$(uname -sr), server options: --mock-delay-ms 0 ${SJ_SOAK_SERVER_ARGS:-(defaults: durability full, 16 HTTP threads)}"
status=0
"$build/soak" --port "$port" --pid "$pid" --sessions "$sessions" --subscribers "$subscribers" \
  --seconds "$secs" --rss-every 5 || status=$?
echo "soak: journal $(du -sh "$data/d" | cut -f1) on disk; load average after $(cut -d' ' -f1-3 /proc/loadavg)"
kill -TERM "$pid"
wait "$pid" || status=1
exit $status

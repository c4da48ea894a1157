#!/usr/bin/env bash
# Server RSS per connection (docs/benchmarks.md, "Memory per connection"):
# a release build of the server, and for each case a fresh server on a
# fresh data directory, measured by bench/conn_mem/conn_mem.c from outside:
#   idle SSE subscribers (HTTP/1.1 and HTTP/1.0), SSE readers that never read
#   with small and with 1 MiB events, and unread GET /events pages of 1 MiB
#   events.
#
# usage: bench/conn_mem/run.sh [--quick]
# SJ_CONN_MEM_BINARY=path measures another server binary (e.g. an older
# build, for a before/after).  Not a test: nothing runs it in CI.  Only the
# servers it started are stopped, by their PIDs.  Loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
quick=0
[ "${1:-}" = --quick ] && quick=1
build="$root/build-release"
if [ -z "${SJ_CONN_MEM_BINARY:-}" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$build" -j"$(nproc)" --target sandbox-journal >/dev/null
fi
binary=${SJ_CONN_MEM_BINARY:-$build/sandbox-journal}
mkdir -p "$build"
cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -pthread "$root/bench/conn_mem/conn_mem.c" \
  "$root/bench/common/net.c" -o "$build/conn_mem"
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/sj-conn-mem.XXXXXX)
pid=""
stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  pid=""
}
trap 'stop; rm -rf "$work"' EXIT

# start: a fresh server; sets pid and port.
start() {
  rm -rf "$work/d" "$work/out"
  "$binary" server --host 127.0.0.1 --port 0 --no-token --data-dir "$work/d" \
    --mock-delay-ms 0 --max-body-bytes 8388608 >"$work/out" 2>"$work/err" &
  pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$work/out")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "conn_mem: the server did not start" >&2; cat "$work/err" >&2; exit 1; }
}

# run ARGS...: one case on a fresh server.
run() {
  start
  "$build/conn_mem" --port "$port" --pid "$pid" "$@"
  stop
}

idle=$([ $quick = 1 ] && echo 1000 || echo 10000)
echo "conn_mem: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average" \
     "$(cut -d' ' -f1-3 /proc/loadavg), $(uname -sr), binary $binary"
run --kind idle --conns "$idle"
run --kind idle --conns "$idle" --http10
run --kind slow --conns 10 --events 400 --event-bytes 64
run --kind slow --conns 10 --events 64 --event-bytes 1048576
run --kind page --conns 8 --events 64 --event-bytes 1048576

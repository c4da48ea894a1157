#!/usr/bin/env bash
# What an Idempotency-Key costs on POST /messages (issue 15's row of issue 19):
# one Release server, 64 mock sessions, runs alternating plain and keyed (a
# key unique per request) with bench/load.c, 64 keep-alive connections.  Per
# run it prints the load generator's line plus what the server wrote to disk
# per request (/proc/PID/io write_bytes: WAL frames and checkpoints) and its
# write calls per request, which is where the keyed requests differ.
#
#   bench/idem.sh [--durability full|normal] [--seconds S] [--pairs N]
#
# Needs build-release (bench/run.sh builds it, and build-release/load).
# Not a test: nothing runs it in CI.  Loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
durability=full secs=4 pairs=3
while [ $# -gt 0 ]; do
  case "$1" in
  --durability) durability=$2; shift 2 ;;
  --seconds) secs=$2; shift 2 ;;
  --pairs) pairs=$2; shift 2 ;;
  *) echo "usage: bench/idem.sh [--durability full|normal] [--seconds S] [--pairs N]" >&2
     exit 2 ;;
  esac
done
build="$root/build-release"
for f in "$build/sandbox-journal" "$build/load"; do
  [ -x "$f" ] || { echo "bench/idem.sh: $f is missing: run bench/run.sh --quick first" >&2; exit 1; }
done
dir=$(mktemp -d /tmp/bench-idem.XXXXXX)
port=21470
"$build/sandbox-journal" server --host 127.0.0.1 --port "$port" --no-token --data-dir "$dir" \
  --mock-delay-ms 0 --durability "$durability" >"$dir.out" 2>"$dir.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir" "$dir.out" "$dir.err"' EXIT
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
urls=()
for i in $(seq 0 63); do urls+=("http://127.0.0.1:$port/v1/sessions/m$i"); done
curl -sf -X POST -H 'content-type: application/json' -d '{"agent":"mock"}' "${urls[@]}" >/dev/null
io() { awk -v k="$1" '$1 == k ":" {print $2}' "/proc/$pid/io"; }
for p in $(seq "$pairs"); do
  for mode in plain keyed; do
    header=()
    [ $mode = keyed ] && header=(--header "Idempotency-Key: idem-$p-{k}-{s}")
    w0=$(io write_bytes) c0=$(io syscw)
    out=$("$build/load" post --port "$port" --pid "$pid" --conns 64 --seconds "$secs" \
      --expect 204 --req 'POST /v1/sessions/m{k}/messages' --body '{"message":"{body}"}' \
      --body-size 64 "${header[@]}")
    w1=$(io write_bytes) c1=$(io syscw)
    ops=$(sed -n 's/^ops=\([0-9]*\) .*/\1/p' <<<"$out")
    [ "${ops:-0}" -gt 0 ] || { echo "bench/idem.sh: no request answered: $out" >&2; exit 1; }
    echo "$mode $out disk_bytes_per_op=$(((w1 - w0) / ops)) write_calls_per_op=$(((c1 - c0) / ops))"
  done
done

#!/bin/sh
# How fast the journal takes a chatty process's output (issue 17): one
# process started through POST /v1/processes writes BYTES of zeros to
# stdout as fast as the pipe takes them; the figure is BYTES divided by the
# time from its start to its exit record being committed (the process is
# "exited" only then, after every chunk).  Run at both durabilities, with
# the per-process byte cap above BYTES (every chunk stays) and at the
# default 64 MiB (the oldest chunks are deleted as new ones come).
#
# usage: bench/proc_log.sh [BUILD_DIR] [MIB]   (default build-release, 512)
# Prints one TSV row per run: durability, cap, MiB, seconds, MB/s.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
mib=${2:-512}
bin=$build/sandbox-journal
[ -x "$bin" ] || { echo "no $bin: cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release && cmake --build build-release --target sandbox-journal" >&2; exit 2; }
command -v curl >/dev/null || { echo "needs curl" >&2; exit 2; }

work=$(mktemp -d /tmp/bench-proc-log.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

now_ms() { date +%s%3N; }

run() { # durability cap_bytes
    rm -rf "$work/data" && mkdir -p "$work/data"
    "$bin" server -n -p 0 --data-dir "$work/data" --durability "$1" >"$work/out" 2>"$work/err" &
    pid=$!
    i=0
    until grep -q listening "$work/out" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || { cat "$work/err" >&2; exit 1; }
        sleep 0.1
    done
    base=$(sed -n 's/^listening on //p' "$work/out")/v1
    curl -sf -XPOST "$base/processes/config" -H 'Content-Type: application/json' -d \
        "{\"defaultRunTimeoutMs\":30000,\"maxRunTimeoutMs\":600000,\"maxConcurrentProcesses\":64,\"maxInputBytesPerRequest\":1048576,\"maxLogBytesPerProcess\":$2,\"maxOutputBytes\":1048576}" >/dev/null
    start=$(now_ms)
    id=$(curl -sf -XPOST "$base/processes" -H 'Content-Type: application/json' -d \
        "{\"command\":\"dd\",\"args\":[\"if=/dev/zero\",\"bs=65536\",\"count=$((mib * 16))\",\"status=none\"]}" |
        sed 's/.*"id":"\([^"]*\)".*/\1/')
    until curl -sf "$base/processes/$id" | grep -q '"status":"exited"'; do sleep 0.01; done
    end=$(now_ms)
    kill "$pid"; wait "$pid" || true; pid=
    awk -v d="$1" -v c="$2" -v m="$mib" -v ms=$((end - start)) 'BEGIN {
        printf "%s\t%d\t%d\t%.2f\t%.0f\n", d, c, m, ms / 1000, m * 1048576 / 1e6 / (ms / 1000) }'
}

printf 'durability\tcap_bytes\tMiB\tseconds\tMB/s\n'
for d in full normal; do
    run "$d" $(((mib + 64) * 1048576))
    run "$d" 67108864
done

#!/usr/bin/env bash
# Webhook delivery throughput (issue 15), next to the PostgreSQL export of
# the same journal: `sandbox-journal export` (one-off, not following) of a
# generated journal to a local receiver (bench/whrecv.c: checks every
# signature, keeps every body) and to a throwaway PostgreSQL 15 cluster
# (tests/servers/start-postgres.sh).  Prints the exporter's summary lines.
#
# usage: bench/webhook.sh [SESSIONS [EVENTS_PER_SESSION [BATCH...]]]
#   defaults: 100 sessions of 1000 events; batches 100 and 1000.
# Loopback only; every process it starts is stopped by PID.  Not a test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sessions=${1:-100}
events=${2:-1000}
shift $(( $# > 2 ? 2 : $# ))
batches=("$@")
[ ${#batches[@]} -gt 0 ] || batches=(100 1000)
build="$root/build-release"
work=$(mktemp -d /tmp/bench-webhook.XXXXXX)
chmod 0755 "$work"
recv_pid=
pg_dir=
cleanup() {
  if [ -n "$recv_pid" ] && kill -0 "$recv_pid" 2>/dev/null; then
    kill -TERM "$recv_pid"; wait "$recv_pid" || true
  fi
  if [ -n "$pg_dir" ]; then bash "$root/tests/servers/stop-postgres.sh" "$pg_dir" >&2 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j2 --target sandbox-journal sjcore >/dev/null
warn=(-std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -pthread)
libs=$(pkg-config --libs sqlite3 libmicrohttpd jansson libuv libpq libcurl)
# shellcheck disable=SC2086
cc "${warn[@]}" -I"$root/src" -I"$root" -I"$root/tests/support" "$root/bench/whrecv.c" \
  "$root/tests/support/webhook_receiver.c" "$build/libsjcore.a" $libs -lm -o "$build/whrecv"
# shellcheck disable=SC2086
cc "${warn[@]}" -I"$root/src" -I"$root" "$root/bench/jbench.c" "$build/libsjcore.a" \
  $libs -lm -o "$build/jbench"
sj="$build/sandbox-journal"

mkdir -p "$work/data"
"$build/jbench" gen --db "$work/data/journal.db" --sessions "$sessions" --events "$events" >/dev/null
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" >"$work/wh.key"

coproc RECV { exec "$build/whrecv" "$work/wh.key"; }
recv_pid=$RECV_PID
read -r port <&"${RECV[0]}"
echo "journal: $sessions sessions x $events events; $(nproc) cores"
for b in "${batches[@]}"; do
  "$sj" export --to "http://127.0.0.1:$port/hook" --webhook-secret-file "$work/wh.key" \
    --data-dir "$work/data" --batch "$b" --reset 2>&1 | sed "s/^/webhook batch $b: /"
done
kill -TERM "$recv_pid"; wait "$recv_pid" || true; recv_pid=

eval "$(PGCI_DIR="$work/pg" bash "$root/tests/servers/start-postgres.sh")"
pg_dir=$PGCI_DIR
for b in "${batches[@]}"; do
  # a fresh target each time, as the receiver is (copies would be no-ops)
  psql -q "$DATABASE_URL" -c 'DROP TABLE IF EXISTS sj_events, sj_sessions, sj_schema_versions' \
    >/dev/null
  "$sj" export --to "$DATABASE_URL" --data-dir "$work/data" --batch "$b" --reset 2>&1 |
    sed "s/^/postgres batch $b: /"
done

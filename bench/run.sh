#!/usr/bin/env bash
# The comparative benchmark (issue 7): builds a release server, installs the
# peers (Redis, PostgreSQL 15, the Durable Streams reference server), starts
# each on 127.0.0.1 with its own throwaway data directory, runs the same
# workloads against each with one load generator (bench/load.c, and
# bench/jbench.c for the in-process journal and raw SQLite), stops them by
# PID and writes docs/benchmarks.md and docs/bench/*.svg
# (bench/report.py).
#
# usage: bench/run.sh [--quick]   (ends with bench/conn_mem/run.sh)
#   --quick  small journals, 1 run, short windows: a few minutes, to check
#            that everything works.  Without it: 3 runs of everything, the
#            10k/1M/10M journals; about half an hour on 2 cores.
# Environment: SJ_BENCH_KEEP=1 keeps the work directory (raw results, logs).
# Not a test: nothing runs it in CI.  Loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quick=0
case "${1:-}" in
--quick) quick=1 ;;
"") ;;
*) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac

if [ $quick = 1 ]; then
  runs=1 secs=2 tail_secs=2
  read_sizes=(10000 100000)   # events; 1,000 per session
  peer_read_sizes=(10000 100000)
  tail_subs=(1 100 1000)
else
  runs=3 secs=5 tail_secs=4
  read_sizes=(10000 1000000 10000000)
  peer_read_sizes=(10000 1000000)
  tail_subs=(1 100 1000 10000)
fi
ds_version=0.3.7
build="$root/build-release"
peers=/tmp/bench-peers                 # npm install of the pinned peer, reused
work=$(mktemp -d /tmp/bench-run.XXXXXX)
chmod 0755 "$work"   # the PostgreSQL cluster inside runs as user postgres
results="$work/results.tsv"
meta="$work/meta.txt"
: >"$results"
: >"$meta"
log() { echo "bench: $*" >&2; }

# ---- processes: every server this script starts is stopped at exit, by PID --
pids=()
pg_dirs=()
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do stop_pid "$p"; done
  for d in "${pg_dirs[@]}"; do stop_pg "$d"; done
  if [ "${SJ_BENCH_KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Ports below the ephemeral range: a client polling a port in that range
# before its server binds can be handed that very port as its own source
# port (a TCP self-connect), and the server then fails to bind.
next_port=21400
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port: sets PORT (not in a subshell, so the next call moves on).
free_port() {
  while port_busy $next_port; do next_port=$((next_port + 1)); done
  PORT=$next_port
  next_port=$((next_port + 1))
}
wait_port() {
  for _ in $(seq 600); do port_busy "$1" && return 0; sleep 0.05; done
  log "nothing listens on port $1"; return 1
}

# record WORKLOAD SYSTEM CONFIG RUN "key=value ..." (a load/jbench result line)
record() {
  local w=$1 s=$2 c=$3 r=$4 kv
  for kv in $5; do
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$s" "$c" "$r" "${kv%%=*}" "${kv#*=}" >>"$results"
  done
}

# ---- 1. install and build ------------------------------------------------------
log "installing what is missing"
SJ_DEPS_EXTRA="redis-server postgresql-15 postgresql-client-15 python3" bash "$root/scripts/deps.sh"
if [ ! -f "$peers/ds/node_modules/@durable-streams/server/package.json" ] ||
   ! grep -q "\"version\": \"$ds_version\"" "$peers/ds/node_modules/@durable-streams/server/package.json"; then
  mkdir -p "$peers/ds"
  (cd "$peers/ds" && echo '{"private":true}' >package.json &&
   npm install --no-audit --no-fund --silent "@durable-streams/server@$ds_version" >&2)
fi
cp "$root/bench/peers/ds-server.mjs" "$peers/ds/"

log "building (Release)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j2 --target sandbox-journal sjcore >/dev/null
warn=(-std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
      -Wmissing-prototypes -Wformat=2 -Wwrite-strings -Wundef -pthread)
cc "${warn[@]}" "$root/bench/load.c" "$root/bench/common/net.c" -o "$build/load"
cc "${warn[@]}" "$root/bench/fanout_floor.c" "$root/bench/common/net.c" -o "$build/fanout_floor"
# shellcheck disable=SC2046
cc "${warn[@]}" -I"$root/src" -I"$root" "$root/bench/jbench.c" "$build/libsjcore.a" \
  $(pkg-config --libs sqlite3 libmicrohttpd jansson libuv libpq libcurl) -lm -o "$build/jbench"
load="$build/load"
jbench="$build/jbench"
sj="$build/sandbox-journal"

# 10k subscribers need 10k descriptors on each side.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 65536 ]; then ulimit -Hn 65536 2>/dev/null || true; fi
ulimit -n "$(ulimit -Hn)"

# ---- starting and stopping each system ---------------------------------------
# start_sj DATA_DIR [server options...]: sets SJ_PID and SJ_PORT.
start_sj() {
  local dir=$1; shift
  free_port; SJ_PORT=$PORT
  mkdir -p "$dir"
  "$sj" server --host 127.0.0.1 --port "$SJ_PORT" --no-token --data-dir "$dir" \
    --mock-delay-ms 0 "$@" >"$dir.out" 2>"$dir.err" &
  SJ_PID=$!
  pids+=("$SJ_PID")
  wait_port "$SJ_PORT"
}
# start_ds [DATA_DIR]: no DATA_DIR is the in-memory store.  Sets DS_PID, DS_PORT.
start_ds() {
  free_port; DS_PORT=$PORT
  node "$peers/ds/ds-server.mjs" "$DS_PORT" "$@" >"$work/ds-$DS_PORT.out" 2>&1 &
  DS_PID=$!
  pids+=("$DS_PID")
  wait_port "$DS_PORT"
}
# start_redis everysec|always: AOF on, RDB snapshots off.  Sets REDIS_PID, REDIS_PORT.
start_redis() {
  free_port; REDIS_PORT=$PORT
  mkdir -p "$work/redis-$REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$work/redis-$REDIS_PORT" \
    --appendonly yes --appendfsync "$1" --save '' --protected-mode no --daemonize no \
    --maxclients 20000 >"$work/redis-$REDIS_PORT.log" 2>&1 &
  REDIS_PID=$!
  pids+=("$REDIS_PID")
  wait_port "$REDIS_PORT"
}
# start_pg: the project's throwaway cluster (tests/servers/start-postgres.sh),
# restarted with durable commits (that script turns fsync off for tests), and
# the table of the anchor's PostgreSQL recipe.  Sets PGHOST, PGPORT, PG_DIR.
start_pg() {
  PG_DIR="$work/pg"
  local env
  # A port of our own range: the tests' clusters take 55432 and up, and
  # one could take ours while it restarts.
  free_port
  env=$(PGCI_DIR="$PG_DIR" PGCI_DB=bench PGCI_PORT=$PORT bash "$root/tests/servers/start-postgres.sh" 2>>"$work/pg.log")
  eval "$env"
  pg_dirs+=("$PG_DIR")
  runuser -u postgres -- "$PGCI_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -m fast \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PG_DIR -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=200 -c shared_buffers=512MB" \
    restart >>"$work/pg.log" 2>&1
  head -n1 "$PG_DIR/data/postmaster.pid" >"$PG_DIR/postgres.pid"
  PG_PID=$(cat "$PG_DIR/postgres.pid")
  psql -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE agent_events (
  event_id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  native_session_id TEXT,
  sequence INTEGER NOT NULL,
  time TIMESTAMPTZ NOT NULL,
  type TEXT NOT NULL,
  source TEXT NOT NULL,
  synthetic BOOLEAN NOT NULL DEFAULT FALSE,
  data JSONB NOT NULL,
  UNIQUE(session_id, sequence)
);
CREATE INDEX idx_events_session ON agent_events(session_id, sequence);
CREATE SEQUENCE bench_seq;
SQL
}
stop_pg() {
  local dir=$1
  [ -d "$dir/data" ] || return 0
  local bin
  bin=$(sed -n 's/^PGCI_BIN=//p' "$dir/env")
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  bash "$root/tests/servers/stop-postgres.sh" "$dir" 2>/dev/null || true
}
# pgbench FILE RUN WORKLOAD CONFIG: 64 clients for $secs, recorded as ops_per_s.
pg_bench() {
  local out
  out=$(pgbench -n -c 64 -j 2 -T "$secs" -f "$1" 2>&1)
  local tps failed
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
  [ -n "$tps" ] || { log "pgbench: $out"; return 1; }
  record "$3" postgres "$4" "$2" "ops_per_s=$tps errors=${failed:-0}"
}
# ds_create PORT NAME...: creates text/plain streams.
ds_create() {
  local port=$1; shift
  local n urls=()
  for n in "$@"; do urls+=("http://127.0.0.1:$port/$n"); done
  curl -sf -X PUT -H 'content-type: text/plain' "${urls[@]}" >/dev/null
}
# sj_create PORT NAME...: creates mock sessions.
sj_create() {
  local port=$1; shift
  local n urls=()
  for n in "$@"; do urls+=("http://127.0.0.1:$port/v1/sessions/$n"); done
  curl -sf -X POST -H 'content-type: application/json' -d '{"agent":"mock"}' "${urls[@]}" >/dev/null
}

# ---- machine ---------------------------------------------------------------------
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1) ($(nproc) cores)"
  echo "memory=$(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "disk=$(df -h "$work" | awk 'NR == 2 {print $1 ", " $2}')"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "sandbox_journal=$(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet 2>/dev/null || echo '+changes') (release, -O2)"
  echo "sqlite=$(pkg-config --modversion sqlite3)"
  echo "libmicrohttpd=$(pkg-config --modversion libmicrohttpd)"
  echo "redis=$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
  echo "postgresql=$(pgbench --version | awk '{print $3}')"
  echo "durable_streams=@durable-streams/server $ds_version on Node.js $(node --version)"
  echo "mode=$([ $quick = 1 ] && echo quick || echo full)"
  echo "runs=$runs"
  echo "secs=$secs"
  echo "tail_secs=$tail_secs"
} >>"$meta"

# ---- 2. append ---------------------------------------------------------------------
log "append"
payload=$(printf 'x%.0s' $(seq 300))
cat >"$work/insert.sql" <<SQL
INSERT INTO agent_events VALUES (gen_random_uuid()::text, 'c' || :client_id, NULL, nextval('bench_seq'), now(), 'item.delta', 'agent', false, '{"item_id":"itm_1","delta":"$payload"}');
SQL
start_pg
start_redis everysec; redis_es_pid=$REDIS_PID; redis_es_port=$REDIS_PORT
start_redis always; redis_al_pid=$REDIS_PID; redis_al_port=$REDIS_PORT
start_ds "$work/ds-append"; ds_f_pid=$DS_PID; ds_f_port=$DS_PORT
start_ds; ds_m_pid=$DS_PID; ds_m_port=$DS_PORT
streams=()
for i in $(seq 0 63); do streams+=("a$i"); done
ds_create "$ds_f_port" "${streams[@]}"
ds_create "$ds_m_port" "${streams[@]}"
for r in $(seq "$runs"); do
  for d in full normal; do
    for b in 1 10 100; do
      rm -f "$work"/j.db*
      record append sandbox-journal "journal API, 1 writer, batch $b, $d" "$r" \
        "$("$jbench" journal --db "$work/j.db" --durability $d --batch $b --seconds "$secs")"
      rm -f "$work"/j.db*
      record append sqlite "raw SQLite, batch $b, $d" "$r" \
        "$("$jbench" sqlite --db "$work/j.db" --durability $d --batch $b --seconds "$secs")"
    done
    rm -f "$work"/j.db*
    record append sandbox-journal "journal API, 64 writers, batch 1, $d" "$r" \
      "$("$jbench" journal --db "$work/j.db" --durability $d --batch 1 --threads 64 --seconds "$secs")"
    rm -rf "$work/sj-append"
    start_sj "$work/sj-append" --durability $d
    names=()
    for i in $(seq 0 63); do names+=("m$i"); done
    sj_create "$SJ_PORT" "${names[@]}"
    record append sandbox-journal "HTTP POST message (mock), 64 connections, $d" "$r" \
      "$("$load" post --port "$SJ_PORT" --pid "$SJ_PID" --conns 64 --seconds "$secs" --expect 204 \
          --req 'POST /v1/sessions/m{k}/messages' --body '{"message":"{body}"}' --body-size 64)"
    # The same with an Idempotency-Key unique per request (issue 15: goal <= 5 % cost).
    record append sandbox-journal "HTTP POST message (mock) with Idempotency-Key, 64 connections, $d" "$r" \
      "$("$load" post --port "$SJ_PORT" --pid "$SJ_PID" --conns 64 --seconds "$secs" --expect 204 \
          --req 'POST /v1/sessions/m{k}/messages' --body '{"message":"{body}"}' --body-size 64 \
          --header 'Idempotency-Key: bench-{k}-{s}')"
    stop_pid "$SJ_PID"
  done
  record append durable-streams "file store, POST, 64 connections" "$r" \
    "$("$load" post --port "$ds_f_port" --pid "$ds_f_pid" --conns 64 --seconds "$secs" --expect 204 \
        --content-type text/plain --req 'POST /a{k}')"
  record append durable-streams-memory "in-memory store, POST, 64 connections" "$r" \
    "$("$load" post --port "$ds_m_port" --pid "$ds_m_pid" --conns 64 --seconds "$secs" --expect 204 \
        --content-type text/plain --req 'POST /a{k}')"
  record append redis "XADD, AOF everysec, 64 connections" "$r" \
    "$("$load" post --proto resp --port "$redis_es_port" --pid "$redis_es_pid" --conns 64 \
        --seconds "$secs" --req 'XADD a{k} * d {body}')"
  record append redis "XADD, AOF always, 64 connections" "$r" \
    "$("$load" post --proto resp --port "$redis_al_port" --pid "$redis_al_pid" --conns 64 \
        --seconds "$secs" --req 'XADD a{k} * d {body}')"
  pg_bench "$work/insert.sql" "$r" append "INSERT, 64 connections"
done
stop_pid "$ds_f_pid"; stop_pid "$ds_m_pid"; stop_pid "$redis_al_pid"

# ---- 3. catch-up reads -------------------------------------------------------------
# Every system holds sessions (streams, keys) of 1,000 events; the journal
# size grows with their number.  A page is 100 events from a random session
# at a random offset in [0, 900].
log "catch-up reads: preparing journals"
psql -q -c "TRUNCATE agent_events"
declare -A sj_read_pid sj_read_port redis_read_port
redis_read_pids=()
for n in "${read_sizes[@]}"; do
  dir="$work/sj-read-$n"
  mkdir -p "$dir"
  record gen sandbox-journal "$n events" 1 \
    "$("$jbench" gen --db "$dir/journal.db" --sessions $((n / 1000)) --events 1000)"
  start_sj "$dir"
  sj_read_pid[$n]=$SJ_PID; sj_read_port[$n]=$SJ_PORT
done
for n in "${peer_read_sizes[@]}"; do
  start_redis everysec
  redis_read_port[$n]=$REDIS_PORT
  redis_read_pids+=("$REDIS_PID")
  record gen redis "$n events" 1 \
    "$("$load" fill --proto resp --port "$REDIS_PORT" --keys $((n / 1000)) --count 1000 \
        --req 'XADD s{k} {o1}-1 d {body}')"
done
# PostgreSQL: one table holds every size's rows under its own prefix.
for n in "${peer_read_sizes[@]}"; do
  psql -q -c "INSERT INTO agent_events SELECT 'p$n-' || g, 'p$n-' || (g / 1000), NULL, g % 1000 + 1, now(), 'item.delta', 'agent', false, jsonb_build_object('item_id', 'itm_1', 'delta', repeat('x', 300)) FROM generate_series(0, $n - 1) g"
  cat >"$work/read-$n.sql" <<SQL
\set k random(0, $((n / 1000 - 1)))
\set o random(0, 900)
SELECT * FROM agent_events WHERE session_id = 'p$n-' || :k AND sequence > :o ORDER BY sequence LIMIT 100;
SQL
done
psql -q -c "VACUUM ANALYZE agent_events"
# Durable Streams reads a stream's whole file for every GET and returns
# everything after the offset, so its page is the last 100 of 1,000 events:
# 10 streams, filled over HTTP (about 1k appends/s on the file store).
ds_names=()
for i in $(seq 0 9); do ds_names+=("r$i"); done
start_ds "$work/ds-read"; ds_f_pid=$DS_PID; ds_f_port=$DS_PORT
start_ds; ds_m_pid=$DS_PID; ds_m_port=$DS_PORT
for p in "$ds_f_port" "$ds_m_port"; do
  ds_create "$p" "${ds_names[@]}"
  record gen "$([ "$p" = "$ds_f_port" ] && echo durable-streams || echo durable-streams-memory)" "10000 events" 1 \
    "$("$load" fill --port "$p" --keys 10 --count 1000 --expect 204 --content-type text/plain \
        --req 'POST /r{k}')"
done
log "catch-up reads"
for r in $(seq "$runs"); do
  for n in "${read_sizes[@]}"; do
    record read sandbox-journal "$n events" "$r" \
      "$("$load" get --port "${sj_read_port[$n]}" --pid "${sj_read_pid[$n]}" --conns 64 \
          --seconds "$secs" --keys $((n / 1000)) --offset 0 900 --min-body 40000 \
          --req 'GET /v1/sessions/s{k}/events?offset={o}&limit=100')"
  done
  for n in "${peer_read_sizes[@]}"; do
    record read redis "$n events" "$r" \
      "$("$load" get --proto resp --port "${redis_read_port[$n]}" --conns 64 --seconds "$secs" \
          --keys $((n / 1000)) --offset 0 900 --min-body 40000 \
          --req 'XRANGE s{k} {o1} + COUNT 100')"
    pg_bench "$work/read-$n.sql" "$r" read "$n events"
  done
  record read durable-streams "10000 events" "$r" \
    "$("$load" get --port "$ds_f_port" --pid "$ds_f_pid" --conns 64 --seconds "$secs" --keys 10 \
        --offset 900 0 --min-body 40000 --content-type text/plain --req 'GET /r{k}?offset={ds}')"
  record read durable-streams-memory "10000 events" "$r" \
    "$("$load" get --port "$ds_m_port" --pid "$ds_m_pid" --conns 64 --seconds "$secs" --keys 10 \
        --offset 900 0 --min-body 40000 --content-type text/plain --req 'GET /r{k}?offset={ds}')"
done
for n in "${read_sizes[@]}"; do stop_pid "${sj_read_pid[$n]}"; done
stop_pid "$ds_f_pid"; stop_pid "$ds_m_pid"
for p in "${redis_read_pids[@]}"; do stop_pid "$p"; done
stop_pid "$redis_es_pid"
stop_pg "$PG_DIR"

# ---- 4. restart ------------------------------------------------------------------
log "restart"
for r in $(seq "$runs"); do
  for n in "${read_sizes[@]}"; do
    free_port; port=$PORT
    record restart sandbox-journal "$n events in $((n / 1000)) sessions" "$r" \
      "$("$load" restart --port "$port" --req 'GET /v1/sessions/s0/events?offset=0&limit=100' -- \
          "$sj" server --host 127.0.0.1 --port "$port" --no-token --data-dir "$work/sj-read-$n")"
  done
done

# ---- 5. live tail and memory ------------------------------------------------------
log "live tail"
rm -rf "$work/sj-tail"
start_sj "$work/sj-tail"
sj_tail_pid=$SJ_PID; sj_tail_port=$SJ_PORT
start_ds "$work/ds-tail"; ds_f_pid=$DS_PID; ds_f_port=$DS_PORT
start_ds; ds_m_pid=$DS_PID; ds_m_port=$DS_PORT
sleep 1
record memory sandbox-journal "idle, fresh" 1 "rss_kb=$(awk '/VmRSS/ {print $2}' /proc/"$sj_tail_pid"/status)"
record memory durable-streams "idle, fresh" 1 "rss_kb=$(awk '/VmRSS/ {print $2}' /proc/"$ds_f_pid"/status)"
record memory durable-streams-memory "idle, fresh" 1 "rss_kb=$(awk '/VmRSS/ {print $2}' /proc/"$ds_m_pid"/status)"
# The rate is in appends (POSTs): 100/s over all sessions.  A mock message
# journals 6 events; the latency is to the first one carrying the message.
# Each configuration gets fresh sessions (streams), so a subscriber that
# starts at offset 0 starts at the tail.
rate=100
for r in $(seq "$runs"); do
  for subs in "${tail_subs[@]}"; do
    for streams in 1 100; do
      [ "$subs" -lt "$streams" ] && continue
      cfg="$subs subscriber$([ "$subs" = 1 ] || echo s), $streams session$([ $streams = 1 ] || echo s)"
      pre="r${r}s${subs}n${streams}-"
      names=()
      for i in $(seq 0 $((streams - 1))); do names+=("$pre$i"); done
      sj_create "$sj_tail_port" "${names[@]}"
      ds_create "$ds_f_port" "${names[@]}"
      ds_create "$ds_m_port" "${names[@]}"
      record tail sandbox-journal "$cfg" "$r" \
        "$("$load" tail --port "$sj_tail_port" --pid "$sj_tail_pid" --subs "$subs" --keys "$streams" \
            --rate $rate --seconds "$tail_secs" --body-size 64 --expect 204 \
            --sse "/v1/sessions/$pre{k}/events/sse" --req "POST /v1/sessions/$pre{k}/messages" \
            --body '{"message":"{body}"}' || true)"
      record tail durable-streams "$cfg" "$r" \
        "$("$load" tail --port "$ds_f_port" --pid "$ds_f_pid" --subs "$subs" --keys "$streams" \
            --rate $rate --seconds "$tail_secs" --expect 204 --content-type text/plain \
            --sse "/$pre{k}?offset=now&live=sse" --req "POST /$pre{k}" || true)"
      record tail durable-streams-memory "$cfg" "$r" \
        "$("$load" tail --port "$ds_m_port" --pid "$ds_m_pid" --subs "$subs" --keys "$streams" \
            --rate $rate --seconds "$tail_secs" --expect 204 --content-type text/plain \
            --sse "/$pre{k}?offset=now&live=sse" --req "POST /$pre{k}" || true)"
      # What the kernel alone costs for the same deliveries.  Its two
      # processes hold one end of each subscriber each.
      if [ $((subs + 64)) -le "$(ulimit -n)" ]; then
        record tail fanout-floor "$cfg" "$r" \
          "$("$build/fanout_floor" --subs "$subs" --streams "$streams" --rate $rate \
              --seconds "$tail_secs" || true)"
      fi
    done
  done
done
stop_pid "$sj_tail_pid"; stop_pid "$ds_f_pid"; stop_pid "$ds_m_pid"

# ---- 6. memory of idle SSE connections, on fresh servers ----------------------
# The tail configurations above reuse one server each, whose heap keeps what
# earlier connections freed; this measures 10,000 idle subscribers (100
# sessions) on servers that had none before.
log "memory"
idle_subs=$([ $quick = 1 ] && echo 1000 || echo 10000)
pre=idle-
names=()
for i in $(seq 0 99); do names+=("$pre$i"); done
for r in $(seq "$runs"); do
  rm -rf "$work/sj-mem"
  start_sj "$work/sj-mem"
  start_ds; ds_m_pid=$DS_PID; ds_m_port=$DS_PORT
  start_ds "$work/ds-mem-$r"; ds_f_pid=$DS_PID; ds_f_port=$DS_PORT
  sj_create "$SJ_PORT" "${names[@]}"
  ds_create "$ds_f_port" "${names[@]}"
  ds_create "$ds_m_port" "${names[@]}"
  cfg="$idle_subs idle SSE connections, 100 sessions, fresh server"
  record memory sandbox-journal "$cfg" "$r" \
    "$("$load" tail --port "$SJ_PORT" --pid "$SJ_PID" --subs "$idle_subs" --keys 100 --rate 100 \
        --seconds 1 --body-size 64 --expect 204 --sse "/v1/sessions/$pre{k}/events/sse" \
        --req "POST /v1/sessions/$pre{k}/messages" --body '{"message":"{body}"}' || true)"
  record memory durable-streams "$cfg" "$r" \
    "$("$load" tail --port "$ds_f_port" --pid "$ds_f_pid" --subs "$idle_subs" --keys 100 --rate 100 \
        --seconds 1 --expect 204 --content-type text/plain --sse "/$pre{k}?offset=now&live=sse" \
        --req "POST /$pre{k}" || true)"
  record memory durable-streams-memory "$cfg" "$r" \
    "$("$load" tail --port "$ds_m_port" --pid "$ds_m_pid" --subs "$idle_subs" --keys 100 --rate 100 \
        --seconds 1 --expect 204 --content-type text/plain --sse "/$pre{k}?offset=now&live=sse" \
        --req "POST /$pre{k}" || true)"
  stop_pid "$SJ_PID"; stop_pid "$ds_f_pid"; stop_pid "$ds_m_pid"
done

echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$meta"
echo "finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$meta"
log "writing docs/benchmarks.md and docs/bench/*.svg"
cp "$results" "$root/docs/bench/results-$([ $quick = 1 ] && echo quick || echo full).tsv" 2>/dev/null ||
  { mkdir -p "$root/docs/bench" && cp "$results" "$root/docs/bench/results-$([ $quick = 1 ] && echo quick || echo full).tsv"; }
python3 "$root/bench/report.py" "$results" "$meta" "$root/docs/benchmarks.md" "$root/docs/bench"

# ---- 7. memory per connection (idle, slow readers, unread pages) -------------------
# Its own script, printed here; the figures go into docs/benchmarks.md
# ("Memory per connection") by hand, with a before/after when it matters.
log "memory per connection"
bash "$root/bench/conn_mem/run.sh" $([ $quick = 1 ] && echo --quick)

#!/usr/bin/env bash
# Stops or starts again a server made by start-clickhouse.sh, keeping its data,
# ports and directory: the export tests use it to take the target away and bring
# it back.  Updates $DIR/clickhouse.pid so stop-clickhouse.sh still finds it.
# Only the PID recorded there is ever signalled.
#
# Usage: bash restart-clickhouse.sh DIR stop|start
set -euo pipefail
DIR=${1:?usage: restart-clickhouse.sh DIR stop|start}
ACTION=${2:?usage: restart-clickhouse.sh DIR stop|start}
[ -f "$DIR/env" ] || { echo "restart-clickhouse: no $DIR/env" >&2; exit 1; }
URL=$(sed -n 's/^CLICKHOUSE_URL=//p' "$DIR/env")
SERVER=/usr/sbin/clickhouse-server
alive() { local s; s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1; [ -n "$s" ] && [ "$s" != Z ]; }
ours() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q -- "$DIR/config.xml"; }
case "$ACTION" in
stop)
    PID=$(cat "$DIR/clickhouse.pid" 2>/dev/null || true)
    if [ -n "$PID" ] && alive "$PID" && ours "$PID"; then
        kill -TERM "$PID"
        for _ in $(seq 1 300); do alive "$PID" || break; sleep 0.1; done
        if alive "$PID"; then kill -KILL "$PID"; sleep 0.2; fi
    fi
    ;;
start)
    # The same command as start-clickhouse.sh; output appended to its logs.
    "$SERVER" --config-file="$DIR/config.xml" </dev/null >>"$DIR/log/stdout.log" 2>&1 &
    PID=$!
    echo "$PID" > "$DIR/clickhouse.pid"
    for _ in $(seq 1 600); do
        if curl -sf -m 2 "${URL}ping" >/dev/null 2>&1; then exit 0; fi
        alive "$PID" || { echo "restart-clickhouse: server exited" >&2; exit 1; }
        sleep 0.1
    done
    echo "restart-clickhouse: no answer on $URL" >&2; exit 1
    ;;
*)
    echo "restart-clickhouse: unknown action $ACTION" >&2; exit 2 ;;
esac

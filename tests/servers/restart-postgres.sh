#!/usr/bin/env bash
# Stops or starts again a cluster made by start-postgres.sh, keeping its data,
# port and directory: the export tests use it to take the target away and bring
# it back.  Updates $DIR/postgres.pid so stop-postgres.sh still finds the server.
#
# Usage: bash restart-postgres.sh DIR stop|start
set -euo pipefail
DIR=${1:?usage: restart-postgres.sh DIR stop|start}
ACTION=${2:?usage: restart-postgres.sh DIR stop|start}
[ -f "$DIR/env" ] || { echo "restart-postgres: no $DIR/env" >&2; exit 1; }
PGBIN=$(sed -n 's/^PGCI_BIN=//p' "$DIR/env")
PORT=$(sed -n 's/^PGCI_PORT=//p' "$DIR/env")
if [ "$(id -u)" = 0 ]; then
    OWNER=$(stat -c %U "$DIR/data")
    as_db() { (cd "$DIR" && runuser -u "$OWNER" -- "$@"); }
else
    as_db() { (cd "$DIR" && "$@"); }
fi
case "$ACTION" in
stop)
    as_db "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >&2
    ;;
start)
    as_db "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 -o \
        "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >&2
    head -n1 "$DIR/data/postmaster.pid" > "$DIR/postgres.pid"
    ;;
*)
    echo "restart-postgres: unknown action $ACTION" >&2; exit 2 ;;
esac

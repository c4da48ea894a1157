#!/usr/bin/env bash
# The cost of issue 14's search index and session summaries
# (migrations/0006_search.sql) on the append path, and search latency over a
# big journal.  In-process (bench/jbench.c), Release build.  See
# docs/benchmarks.md, "Search index".
#
#   bench/search.sh [--seconds S] [--runs N] [--events-total N] [--search-only]
#                   [--journal FILE]
#
# Append: jbench journal (1 writer) at batch 1, 10 and 100, durability full
# and normal, in three modes, runs alternating: "index" (the summaries'
# triggers and the search index follower running behind the commits),
# "noindex" (triggers, no follower) and "bare" (the 0006 triggers dropped, no
# follower: the journal as before issue 14); once with the usual item.delta
# rows (not indexed: the item's item.completed holds its text) and once with
# --text 1 (every row an indexed item.completed of ~60 words).  "index" rows
# also say the follower's steps, its longest step (what a commit may wait
# for it), its lag when the appends stopped and the time to catch up.
# Search: jbench gen --text 1 builds N events (1000 per session) without the
# follower, jbench index times the follower's back-fill of them, then jbench
# search times journal_search() (limit 20) per query shape: words, a phrase,
# prefixes of 1-3 letters, a later page (cursor), the same within the oldest
# and the newest session.  --search-only skips the append rows; --journal
# FILE keeps the big journal there (built and back-filled if FILE does not
# exist, reused as it is if it does: building 1M events takes minutes).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=3 runs=2 total=1000000 search_only=0 journal=
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) secs=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --events-total) total=$2; shift 2 ;;
    --search-only) search_only=1; shift ;;
    --journal) journal=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds S] [--runs N] [--events-total N] [--search-only]" \
            "[--journal FILE]" >&2; exit 2 ;;
  esac
done
build=${SJ_BENCH_BUILD:-$root/build-bench}
work=$(mktemp -d "${TMPDIR:-/tmp}/sj-search-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j2 --target sjcore >/dev/null
# shellcheck disable=SC2046
cc -std=c11 -O2 -D_GNU_SOURCE -pthread -I"$root/src" -I"$root" "$root/bench/jbench.c" \
  "$build/libsjcore.a" $(pkg-config --libs sqlite3 libmicrohttpd jansson libuv libpq libcurl) \
  -lm -o "$build/jbench"
jbench="$build/jbench"

# A fresh journal at the current schema; "bare" drops 0006's triggers.
fresh() {
  rm -f "$work"/j.db*
  "$jbench" gen --db "$work/j.db" --sessions 1 --events 1 >/dev/null
  if [ "$1" = bare ]; then
    sqlite3 "$work/j.db" "SELECT 'DROP TRIGGER ' || name || ';' FROM sqlite_master
      WHERE type = 'trigger'" | sqlite3 "$work/j.db"
  fi
}

if [ "$search_only" = 0 ]; then
echo "# append, events/s (jbench journal, 1 writer, ${secs}s per run)"
for r in $(seq "$runs"); do
  for text in 0 1; do
    for d in full normal; do
      for b in 1 10 100; do
        for mode in index noindex bare; do
          fresh $mode
          line=$("$jbench" journal --db "$work/j.db" --durability $d --batch $b \
                   --seconds "$secs" --text $text --index $([ $mode = index ] && echo 1 || echo 0))
          echo "run=$r text=$text durability=$d batch=$b mode=$mode $line"
        done
      done
    done
  done
done
fi

echo "# search over $total indexed events"
db=${journal:-$work/j.db}
if [ -z "$journal" ] || [ ! -e "$journal" ]; then
  rm -f "$db" "$db-wal" "$db-shm"
  "$jbench" gen --db "$db" --sessions $((total / 1000)) --events 1000 --text 1
  echo "# the follower's back-fill of them"
  "$jbench" index --db "$db" --durability normal
fi
ls -l "$db" | awk '{print "db_bytes=" $5}'
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$runs"); do
  "$jbench" search --db "$db" --seconds "$secs" --sessions $((total / 1000)) --events 1000 |
    sed "s/^/run=$r /"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

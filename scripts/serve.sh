#!/usr/bin/env bash
# Builds a Release binary and starts the server on its defaults: the journal
# in $XDG_DATA_HOME/sandbox-journal (or ~/.local/share/sandbox-journal), the
# mock agent ready, http://127.0.0.1:2468, no token.  Extra arguments go to
# `sandbox-journal server` (e.g. --port 8080, --token T instead of the default).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/deps.sh"
cmake -S "$root" -B "$root/build-release" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$root/build-release" -j"$(nproc)" --target sandbox-journal >/dev/null
auth=(--no-token)
for a in "$@"; do
  case "$a" in --token|--token=*|--token-file|--token-file=*|-t|--no-token|-n) auth=() ;; esac
done
exec "$root/build-release/sandbox-journal" server "${auth[@]}" "$@"

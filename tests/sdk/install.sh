#!/bin/sh
# Installs the SDK the compatibility test drives (package.json and its
# lockfile, next to this script) into DIR with `npm ci`: exactly the locked
# versions, no install scripts, and without the optional @sandbox-agent/cli
# packages (the reference server's binaries, which the test must not use).
# A no-op when DIR already holds this lockfile's install, so a machine
# installs once per lockfile (CMake keys DIR by its digest); npm's cache
# makes a reinstall work offline.
#   usage: tests/sdk/install.sh DIR
set -eu
src=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: install.sh DIR}
if [ -f "$dir/node_modules/sandbox-agent/package.json" ] &&
   cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "install.sh: npm not found (scripts/deps.sh installs it)" >&2; exit 1; }
mkdir -p "$dir"
rm -rf "$dir/node_modules"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
cd "$dir"
npm ci --omit=optional --ignore-scripts --no-audit --no-fund --prefer-offline
test -f node_modules/sandbox-agent/dist/index.js

#!/usr/bin/env bash
# Installs puppeteer-core, pinned by package-lock.json, into DEST/node_modules
# (the ctest fixture browser/install).  Skipped when DEST already holds this
# lockfile's install.  puppeteer-core downloads no browser: the tests drive
# Debian's chromium (scripts/deps.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
dest=$(cd "$1" && pwd)

stamp="$dest/node_modules/.sj-lock"
if [ -f "$stamp" ] && cmp -s "$stamp" "$here/package-lock.json"; then
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dest/"
cd "$dest"
PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
cp "$here/package-lock.json" "$stamp"

#!/usr/bin/env bash
# Builds the Debian package from a Release build, installs it with apt-get
# as a user would, checks what it installed (files, man page, the systemd
# unit, the token, the binary serving /v1/health with that token), then
# purges it: the machine is left as it was found.  Needs root (or sudo).
#   usage: check-package.sh [BUILD_DIR]        (default build-deb)
# Containers run no systemd, so the unit is verified, never started; the
# installed binary is started by hand on a free loopback port instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-deb}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# Waits for another package manager's lock instead of failing on it.
apt_get() { DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 -y -qq "$@" >/dev/null; }

if dpkg-query -W -f='${Status}' sandbox-journal 2>/dev/null | grep -q "ok installed"; then
  echo "deb: sandbox-journal is already installed here; not touching it" >&2
  exit 1
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DSJ_WERROR=ON \
  >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
rm -f "$build"/sandbox-journal_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
arch=$(dpkg --print-architecture)
deb="$build/sandbox-journal_${version}_${arch}.deb"
[ -f "$deb" ] || { echo "deb: no $deb" >&2; exit 1; }
dpkg-deb -f "$deb" Depends | grep -q libsqlite3 ||
  { echo "deb: Depends not computed: $(dpkg-deb -f "$deb" Depends)" >&2; exit 1; }

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" || true; fi
  if dpkg-query -W -f='${Status}' sandbox-journal 2>/dev/null | grep -q "installed"; then
    apt_get purge sandbox-journal
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Copied where apt's unprivileged download user can read it.
cp "$deb" "$tmp/" && chmod 0755 "$tmp" && chmod 0644 "$tmp/${deb##*/}"
apt_get install "$tmp/${deb##*/}"

unit=/usr/lib/systemd/system/sandbox-journal.service
for f in /usr/bin/sandbox-journal /usr/share/man/man1/sandbox-journal.1.gz \
         /usr/share/bash-completion/completions/sandbox-journal $unit \
         /usr/share/doc/sandbox-journal/README.md /usr/share/doc/sandbox-journal/docs/agents.md; do
  dpkg -L sandbox-journal | grep -qx "$f" || { echo "deb: $f not in dpkg -L" >&2; exit 1; }
  [ -e "$f" ] || { echo "deb: $f listed but missing" >&2; exit 1; }
done
[ "$(/usr/bin/sandbox-journal --version)" = "sandbox-journal $version" ]

# The page is found and renders without groff warnings.
[ "$(man -w sandbox-journal)" = /usr/share/man/man1/sandbox-journal.1.gz ]
man --warnings -P cat sandbox-journal 2>"$tmp/man.err" | grep -q "api sessions create"
if [ -s "$tmp/man.err" ]; then cat "$tmp/man.err" >&2; exit 1; fi

# verify exits 0 on a misspelt key (it only warns): fail on those too.
if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze verify "$unit" 2>&1 | tee "$tmp/verify.out"
  if grep -qiE "unknown|invalid|failed|ignoring" "$tmp/verify.out"; then exit 1; fi
fi

# postinst made a token only root reads; the server takes it as the unit does.
token=/etc/sandbox-journal/token
[ "$(stat -c %a "$token")" = 600 ] && [ -s "$token" ]
/usr/bin/sandbox-journal server --port 0 --data-dir "$tmp/data" --token-file "$token" \
  >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's|^listening on http://127.0.0.1:||p' "$tmp/server.out")
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "deb: the installed server did not start" >&2; exit 1; }
python3 - "$port" "$token" <<'PY'
import sys, urllib.request, urllib.error
base = 'http://127.0.0.1:%s' % sys.argv[1]
token = open(sys.argv[2]).read().strip()
with urllib.request.urlopen(base + '/v1/health', timeout=10) as r:
    assert r.status == 200, r.status
try:
    urllib.request.urlopen(base + '/v1/agents', timeout=10)
    sys.exit('deb: /v1/agents answered without the token')
except urllib.error.HTTPError as e:
    assert e.code == 401, e.code
req = urllib.request.Request(base + '/v1/agents', headers={'Authorization': 'Bearer ' + token})
with urllib.request.urlopen(req, timeout=10) as r:
    assert r.status == 200, r.status
PY
kill "$server_pid"
wait "$server_pid" || true
server_pid=""

apt_get purge sandbox-journal
for f in /usr/bin/sandbox-journal "$unit" /etc/sandbox-journal \
         /etc/systemd/system/multi-user.target.wants/sandbox-journal.service \
         /etc/systemd/system/sandbox-journal.service; do
  if [ -e "$f" ] || [ -L "$f" ]; then echo "deb: $f left after purge" >&2; exit 1; fi
done
echo "deb: ${deb##*/} installed, served /v1/health and purged cleanly"

#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, if any are missing.
# Sourced or run by serve.sh and test.sh; safe to run again.
set -euo pipefail

# python3-pytest and the rest of python3-*: the Python client's tests
# (clients/python) and its offline install into a venv.
packages=(gcc make cmake pkg-config libsqlite3-dev libmicrohttpd-dev libjansson-dev
          libuv1-dev libcmocka-dev libpq-dev libcurl4-openssl-dev python3
          python3-pytest python3-venv python3-pip python3-setuptools python3-wheel
          dpkg-dev file)  # dpkg-shlibdeps and file: cpack -G DEB computes Depends
# The inspector's browser tests (tests/browser) drive Debian's headless
# Chromium; puppeteer-core from npm downloads no browser of its own.
packages+=(chromium)
if [ "${SJ_DEPS_EXTRA:-}" ]; then
  read -r -a extra <<<"$SJ_DEPS_EXTRA"
  packages+=("${extra[@]}")
fi

# The end-to-end tests install the real agent CLIs with npm (Node.js 18+).
# A machine that already has npm (e.g. NodeSource's nodejs) keeps its own.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

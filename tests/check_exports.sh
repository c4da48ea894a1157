#!/usr/bin/env bash
# Fails when an object of the core library exports a symbol without its
# file's prefix: everything not in a header must be static.
# Symbols the sanitizers add themselves (__odr_asan.*) are not ours.
set -euo pipefail
lib=$1
# The ACP adapter defines adapter_<id> for each agent of its launch table.
acp_agents=$(sed -n 's/^ACP_AGENT(\([a-z0-9_]*\),.*/adapter_\1/p' \
  "$(dirname "$0")/../adapters/acp_agents.def" | tr '\n' ' ')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
ar x "$lib"
status=0
for obj in *.o; do
  base=${obj%.o}
  base=${base%.c}
  case "$base" in
    routes_*) prefixes="routes_" ;;
    cmd_*) prefixes="cmd_" ;;
    export_*) prefixes="export_" ;;
    journal_*) prefixes="journal_" ;; # one module in files (journal_int.h)
    sse) prefixes="sse_ routes_" ;;
    supervisor_proc) prefixes="supervisor_proc_" ;;
    mock) prefixes="adapter_mock" ;;
    claude|claude_parse) prefixes="adapter_claude" ;;
    codex|codex_parse) prefixes="adapter_codex" ;;
    opencode|opencode_parse) prefixes="adapter_opencode" ;;
    amp|amp_parse) prefixes="adapter_amp" ;;
    acp|acp_parse|acp_home) prefixes="adapter_acp $acp_agents" ;;
    migrations_data) prefixes="migrations_" ;;
    openapi_data) prefixes="embedded_openapi" ;;
    *) prefixes="${base}_" ;;
  esac
  while read -r sym; do
    ok=0
    for p in $prefixes; do
      case "$sym" in "$p"*) ok=1 ;; esac
    done
    if [ $ok -eq 0 ]; then
      echo "exports: $obj defines global '$sym' without prefix ($prefixes)"
      status=1
    fi
  done < <(nm -g --defined-only "$obj" | awk '{print $3}' | grep -v '^__odr_asan\.')
done
[ $status -eq 0 ] && echo "exports: every global symbol carries its file's prefix"
exit $status

#!/usr/bin/env bash
# The fuzzing stage of scripts/test.sh (docs/testing.md): builds the
# libFuzzer harnesses of tests/fuzz/ with clang (-DFUZZ=ON) into BUILD
# (default build-fuzz), replays every seed corpus and kept crash input
# (ctest -L fuzz), then fuzzes each harness for SJ_FUZZ_SECONDS (default 20)
# from a scratch copy of its seeds, with its dictionary.  Prints executions
# and crashes per harness; fails if any harness crashed, leaving the input
# in BUILD/fuzz-run/<harness>-crash-*.  Add such an input to
# tests/fuzz/corpus/<harness>/ once fixed: it is a regression test from then.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-fuzz}
secs=${SJ_FUZZ_SECONDS:-20}

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Asan -DFUZZ=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target sj_fuzzers
(cd "$build" && ctest --output-on-failure -L fuzz)

work="$build/fuzz-run"
rm -rf "$work"
mkdir -p "$work"
total=0
crashed=()
for bin in "$build"/tests/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  seeds=()
  [ -d "$root/tests/fuzz/corpus/$name" ] && seeds+=("$root/tests/fuzz/corpus/$name")
  case $name in
    fuzz_adapter_*)
      agent=${name#fuzz_adapter_}
      for d in "$root"/tests/fixtures/"$agent"/*/; do [ -d "$d" ] && seeds+=("$d"); done ;;
  esac
  dict=""
  if [ -f "$root/tests/fuzz/$name.dict" ]; then dict="$root/tests/fuzz/$name.dict"
  elif [ "$name" = fuzz_event ]; then dict="$root/tests/fuzz/fuzz_normalize.dict"; fi
  mkdir -p "$work/$name"
  status=0
  "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$work/$name-" \
    ${dict:+-dict="$dict"} "$work/$name" "${seeds[@]}" >"$work/$name.log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log" | tail -n 1)
  runs=${runs:-0}
  total=$((total + runs))
  if [ "$status" -ne 0 ]; then
    crashed+=("$name")
    echo "fuzz: $name CRASHED after $runs executions (exit $status):"
    grep -E "ERROR|SUMMARY|Test unit written" "$work/$name.log" | head -n 20 || true
  else
    printf 'fuzz: %-22s %9s executions in %ss, 0 crashes\n' "$name" "$runs" "$secs"
  fi
done
echo "fuzz: total ${total} executions, ${#crashed[@]} harness(es) crashed"
[ ${#crashed[@]} -eq 0 ]

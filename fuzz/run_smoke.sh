#!/usr/bin/env bash
# CI smoke fuzzing: builds the fuzzers with clang (into build-fuzz) and runs
# each target for SECONDS (default 30) from its seed corpus.  Fails on any
# crash, sanitizer report, leak, timeout or out-of-memory; the input that
# caused it is saved under fuzz/findings/ (not committed) and the tail of
# the fuzzer's output is printed.  Usage: fuzz/run_smoke.sh [SECONDS]
set -euo pipefail
source "$(dirname "$0")/common.sh"
seconds=${1:-30}

fuzz_build_all
scratch="$fuzz_build/smoke"
rm -rf "$scratch"
mkdir -p "$scratch"
status=0
printf '%-32s %12s  %s\n' target executions result
for t in "${fuzz_targets[@]}"; do
  log="$scratch/$t.log"
  if fuzz_run "$t" "$scratch/corpus-$t" "$log" -max_total_time="$seconds"; then
    result=ok
  else
    result="FAILED (log: $log)"
    status=1
  fi
  printf '%-32s %12s  %s\n' "$t" "$(fuzz_execs "$log")" "$result"
  if [ "$result" != ok ]; then
    grep -E 'ERROR|runtime error|invariant|Test unit written' "$log" | head -20 >&2 || true
  fi
done
exit $status

#!/usr/bin/env bash
# The long fuzzing campaign (docs/fuzzing.md): each target until it has
# executed RUNS inputs (default 10 million) or for SECONDS (default 3600),
# whichever comes first, with a corpus kept between campaigns in
# <build-fuzz>/corpus/<target> so that every run continues the last one.
# Findings go to fuzz/findings/; executions are appended to
# <build-fuzz>/fuzz-stats.tsv (date, target, executions, seconds, result).
#
# Usage: fuzz/run_long.sh [TARGET...]     (default: every target, one by one)
# Environment: SECONDS_PER_TARGET (3600), RUNS (10000000), WORKERS (1; >1
# runs that many processes on the target with libFuzzer's -fork=WORKERS,
# which stops at the time limit only).
set -uo pipefail
source "$(dirname "$0")/common.sh"
seconds=${SECONDS_PER_TARGET:-3600}
runs=${RUNS:-10000000}
workers=${WORKERS:-1}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${fuzz_targets[@]}")

fuzz_build_all || exit 1
stats="$fuzz_build/fuzz-stats.tsv"
[ -f "$stats" ] || printf 'date\ttarget\texecutions\tseconds\tresult\n' >"$stats"
status=0
for t in "${targets[@]}"; do
  log="$fuzz_build/long-$t.log"
  start=$(date +%s)
  extra=()
  [ "$workers" -gt 1 ] && extra=(-fork="$workers")
  if fuzz_run "$t" "$fuzz_build/corpus/$t" "$log" -max_total_time="$seconds" -runs="$runs" "${extra[@]}"; then
    result=ok
  else
    result=FAILED
    status=1
  fi
  elapsed=$(($(date +%s) - start))
  execs=$(fuzz_execs "$log")
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$execs" "$elapsed" "$result" | tee -a "$stats"
  [ "$result" = ok ] || grep -E 'ERROR|runtime error|invariant|Test unit written' "$log" | head -20 >&2
done
exit $status

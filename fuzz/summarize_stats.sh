#!/usr/bin/env bash
# Prints a Markdown table of the long campaigns recorded in
# <build-fuzz>/fuzz-stats.tsv (fuzz/run_long.sh appends one row per run):
# per target, the longest clean run (most executions), whether it reached
# the goal (10 M executions or 3,600 s), and every run that did not end
# cleanly.  Paste it into docs/fuzzing.md.
#   fuzz/summarize_stats.sh [STATS_FILE]
set -euo pipefail
source "$(dirname "$0")/common.sh"
stats=${1:-$fuzz_build/fuzz-stats.tsv}
[ -f "$stats" ] || { echo "no $stats (run fuzz/run_long.sh first)" >&2; exit 1; }
awk -F'\t' '
  NR == 1 { next }
  $5 == "ok" && ($3 + 0 > best[$2] + 0) { best[$2] = $3; secs[$2] = $4; when[$2] = $1 }
  $5 != "ok" { bad = bad sprintf("| `%s` | %s | %s s | %s (%s) |\n", $2, $3, $4, $5, $1) }
  { seen[$2] = 1 }
  END {
    print "| target | executions | seconds | exec/s | goal (10 M or 1 h) | date |"
    print "|---|---:|---:|---:|---|---|"
    n = split("fuzz_json fuzz_safetensors fuzz_tokenizer_json_bpe fuzz_tokenizer_json_wordpiece fuzz_vocab_files fuzz_token_cache fuzz_dataset_rows fuzz_cli_args", order, " ")
    for (i = 1; i <= n; i++) {
      t = order[i]
      if (!(t in best)) { printf "| `%s` | - | - | - | not run cleanly yet | - |\n", t; continue }
      goal = (best[t] >= 10000000 || secs[t] >= 3600) ? "reached" : "not yet"
      printf "| `%s` | %d | %d | %d | %s | %s |\n", t, best[t], secs[t], best[t] / (secs[t] > 0 ? secs[t] : 1), goal, substr(when[t], 1, 10)
    }
    if (bad != "") { print ""; print "Runs that did not end cleanly:"; print ""; print "| target | executions | time | result (date) |"; print "|---|---:|---:|---|"; printf "%s", bad }
  }' "$stats"

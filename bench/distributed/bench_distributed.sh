#!/usr/bin/env bash
# Data-parallel throughput on the CPU: tokens/s of the same small GPT-2 at
# 1 rank and 2 ranks (mpirun), each rank on one thread with `batch` blocks,
# and the scaling efficiency tokens/s(2) / (2 x tokens/s(1)).  Also 1 rank
# on 2 threads, the other way to use the same two cores.  Then the gradient
# buckets: 2 ranks with the all-reduce overlapping backward (ddp_overlap,
# buckets of OVERLAP_CAP_MB, 0.25 MiB: several per layer of this model)
# against one all-reduce after backward, REPEATS alternating pairs, medians.
#   bench/distributed/bench_distributed.sh [BUILD_DIR] [DATA_DIR] [STEPS] [REPEATS]
# (docs/distributed.md quotes its output.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
data=${2:-$here/../../../shared/data/wikitext-2-raw}
steps=${3:-30}
repeats=${4:-5}
cap=${OVERLAP_CAP_MB:-0.25}
lmcore=$build/bin/lmcore
command -v mpirun > /dev/null || { echo "bench_distributed: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rate() { sed -n 's/^tokens_per_second \([0-9.]*\).*/\1/p' "$1"; }

"$lmcore" run "$here/bench_distributed.lua" data="$data" out="$tmp/warm" steps=2 > /dev/null 2>&1 # tokenise once
"$lmcore" run "$here/bench_distributed.lua" data="$data" out="$tmp/warm" steps="$steps" threads=1 > "$tmp/one.txt" 2>/dev/null
"$lmcore" run "$here/bench_distributed.lua" data="$data" out="$tmp/warm" steps="$steps" threads=2 > "$tmp/one2.txt" 2>/dev/null
mpirun --allow-run-as-root --oversubscribe -np 2 --bind-to none "$lmcore" run "$here/bench_distributed.lua" data="$data" \
  out="$tmp/warm" steps="$steps" threads=1 > "$tmp/two.txt" 2>/dev/null
one=$(rate "$tmp/one.txt") one2=$(rate "$tmp/one2.txt") two=$(rate "$tmp/two.txt")
awk -v one="$one" -v one2="$one2" -v two="$two" -v cores="$(nproc)" -v steps="$steps" 'BEGIN {
  printf "GPT-2 2x128, blocks of 128, batch 8 per rank, %d steps, %d CPU cores\n", steps, cores
  printf "1 rank  x 1 thread : %8.0f tokens/s\n", one
  printf "1 rank  x 2 threads: %8.0f tokens/s (%.2fx one thread)\n", one2, one2 / one
  printf "2 ranks x 1 thread : %8.0f tokens/s (%.2fx one rank)\n", two, two / one
  printf "scaling efficiency : %.2f (tokens/s of 2 ranks / (2 x 1 rank))\n", two / (2 * one)
}'

# Overlap on and off, alternating so that the machine's load falls on both alike.
two_ranks() {
  mpirun --allow-run-as-root --oversubscribe -np 2 --bind-to none "$lmcore" run "$here/bench_distributed.lua" \
    data="$data" out="$tmp/warm" steps="$steps" threads=1 "$@" 2>/dev/null
}
on=() off=()
for ((i = 0; i < repeats; i++)); do
  off+=("$(two_ranks ddp_overlap=false > "$tmp/off.txt"; rate "$tmp/off.txt")")
  on+=("$(two_ranks ddp_overlap=true ddp_bucket_cap_mb="$cap" > "$tmp/on.txt"; rate "$tmp/on.txt")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
awk -v on="$(median "${on[@]}")" -v off="$(median "${off[@]}")" -v n="$repeats" -v cap="$cap" \
    -v ons="${on[*]}" -v offs="${off[*]}" 'BEGIN {
  printf "2 ranks, all-reduce after backward      : %8.0f tokens/s (median of %d: %s)\n", off, n, offs
  printf "2 ranks, buckets of %g MiB in backward : %8.0f tokens/s (median of %d: %s)\n", cap, on, n, ons
  printf "overlap / after                         : %.3fx\n", on / off
}'

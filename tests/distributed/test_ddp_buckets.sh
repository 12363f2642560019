#!/usr/bin/env bash
# Gradient buckets reduced during backward (docs/distributed.md, "Buckets"),
# 2 ranks under mpirun, GPT-2 and BERT of 3 layers, dropout on:
#   1. buckets of 2 KiB (ddp_bucket_cap_mb=0.002: tens of buckets, each
#      started as soon as backward has finished its layers) give weights
#      bit-identical, after every step, to one all-reduce after backward
#      (ddp_overlap=false): a sum of two ranks' values does not depend on
#      how the buffer is cut; with gradient accumulation (2 micro-batches,
#      reduced after the last only) and without;
#   2. the default 25 MiB (one bucket for these models) gives them too;
#   3. ZeRO-1 with small buckets gives the bits of zero_stage=0;
#   4. every bucket started during the last backward, not after it.
#   test_ddp_buckets.sh LMCORE COMPARE_WEIGHTS SOURCE_DIR DATA_DIR
set -euo pipefail
lmcore=$1 compare=$2 here=$3 data=$4
. "$here/mpi_env.sh"
require_mpi "$lmcore"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# run NAME key=value ...: 2 ranks, debug log (the per-step bucket counts) in NAME.log
run() {
  local name=$1; shift
  timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 "$lmcore" --log-level debug run "$here/bucket_train.lua" \
    data="$data" out="$tmp/$name" "$@" > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; fail "run $name ($*)"; }
  cmp -s "$tmp/$name/hashes-rank0.txt" "$tmp/$name/hashes-rank1.txt" || fail "$name: the ranks' weights differ"
}
# same REFERENCE NAME: the same weights after every step, and the same final bits
same() {
  cmp "$tmp/$1/hashes-rank0.txt" "$tmp/$2/hashes-rank0.txt" || fail "$2's weights differ from $1's after some step"
  "$compare" "$tmp/$1/model.safetensors" "$tmp/$2/model.safetensors" 0 || fail "$2's final weights are not $1's bits"
}
# buckets NAME: the plan's count, and every step's buckets all started during backward
buckets() {
  local n
  n=$(sed -n 's/.*during backward in \([0-9]*\) buckets\{0,1\} of.*/\1/p' "$tmp/$1.log" | head -1)
  [ -n "$n" ] || fail "$1: no bucket plan in the log"
  grep 'started during backward' "$tmp/$1.log" | grep -v " $n of $n gradient buckets" && fail "$1: a step left buckets for after backward"
  [ "$(grep -c 'started during backward' "$tmp/$1.log")" -ge 1 ] || fail "$1: no step reduced in buckets"
  echo "$n"
}

for model in gpt2 bert; do
  echo "== $model: buckets of 2 KiB against one all-reduce after backward (2 micro-batches per step)"
  run "$model-one" model="$model" ddp_overlap=false
  grep -q 'started during backward' "$tmp/$model-one.log" && fail "ddp_overlap=false still reduced in buckets"
  run "$model-small" model="$model" ddp_bucket_cap_mb=0.002
  n=$(buckets "$model-small")
  [ "$n" -ge 10 ] || fail "$model: only $n buckets of 2 KiB"
  same "$model-one" "$model-small"
  echo "$model: $n buckets, the same bits after each of the 6 steps"
  run "$model-default" model="$model"
  [ "$(buckets "$model-default")" -eq 1 ] || fail "$model: the default cap made more than one bucket of this small model"
  same "$model-one" "$model-default"
done

echo "== without accumulation"
run gpt2-one-accum1 accum=1 ddp_overlap=false
run gpt2-small-accum1 accum=1 ddp_bucket_cap_mb=0.002
buckets gpt2-small-accum1 > /dev/null
same gpt2-one-accum1 gpt2-small-accum1

echo "== ZeRO-1 with buckets of 2 KiB: the bits of zero_stage=0"
run gpt2-zero1-small zero_stage=1 ddp_bucket_cap_mb=0.002
same gpt2-one gpt2-zero1-small
echo "OK"

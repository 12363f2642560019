#!/usr/bin/env bash
# Data parallel on the CPU, 2 ranks under mpirun (docs/distributed.md):
#   1. 2 ranks x batch 4 give the weights of 1 rank x batch 8 after 20 steps,
#      within TOLERANCE (fp32: the loss and gradient sums are added in
#      another order; measured 3.5e-6 after 20 AdamW steps at lr 3e-3);
#      the evaluation, sharded, gives the same loss within 1e-6;
#   2. the ranks hold the same weights after every step (their hashes);
#   3. gradient accumulation (2 ranks x 2 x 2 micro-batches) gives the
#      weights of 2 ranks x 4 without it, within TOLERANCE;
#   4. ZeRO-1 (zero_stage=1: each rank updates its shard of the weights and
#      keeps only its shard's optimizer state) gives the same bits;
#   5. a run resumed from a 2-rank checkpoint ends with the same bits as the
#      run that was not interrupted; resuming it with 1 rank is refused.
#   test_data_parallel.sh LMCORE COMPARE_WEIGHTS SOURCE_DIR DATA_DIR
set -euo pipefail
lmcore=$1 compare=$2 here=$3 data=$4
TOLERANCE=1e-4
. "$here/mpi_env.sh"
require_mpi "$lmcore"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpi2() { timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 "$lmcore" run "$here/dp_train.lua" data="$data" "$@"; }
one() { timeout 300 "$lmcore" run "$here/dp_train.lua" data="$data" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

echo "== 1 rank x 8 against 2 ranks x 4"
one out="$tmp/one" batch=8 eval=true > "$tmp/one.log" 2>&1 || { cat "$tmp/one.log"; fail "1 rank"; }
mpi2 out="$tmp/two" batch=4 eval=true > "$tmp/two.log" 2>&1 || { cat "$tmp/two.log"; fail "2 ranks"; }
"$compare" "$tmp/one/model.safetensors" "$tmp/two/model.safetensors" "$TOLERANCE" || fail "2 x 4 is not 1 x 8"
[ "$(wc -l < "$tmp/two/hashes-rank0.txt")" -eq 20 ] || fail "rank 0 did not log 20 steps"
cmp "$tmp/two/hashes-rank0.txt" "$tmp/two/hashes-rank1.txt" || fail "the ranks' weights differ after some step"
echo "the ranks' weights are the same after each of the 20 steps"
awk -v a="$(cat "$tmp/one/eval-rank0.txt")" -v b="$(cat "$tmp/two/eval-rank0.txt")" -v c="$(cat "$tmp/two/eval-rank1.txt")" \
  'BEGIN { d = a - b; if (d < 0) d = -d; printf "eval loss: 1 rank %.10f, 2 ranks %.10f\n", a, b;
           exit !(d < 1e-6 && b == c) }' || fail "the sharded evaluation differs"
# one console (rank 0's), one copy of the outputs
grep -q 'data parallel over 2 ranks' "$tmp/two.log" || fail "no 'data parallel over 2 ranks' in the run's description"
[ "$(grep -c 'data parallel over 2 ranks' "$tmp/two.log")" -eq 1 ] || fail "more than one rank logged"

echo "== gradient accumulation: 2 ranks x 2 x 2 micro-batches against 2 ranks x 4"
mpi2 out="$tmp/accum" batch=2 accum=2 > "$tmp/accum.log" 2>&1 || { cat "$tmp/accum.log"; fail "accumulation"; }
"$compare" "$tmp/two/model.safetensors" "$tmp/accum/model.safetensors" "$TOLERANCE" || fail "accumulation differs"
cmp "$tmp/accum/hashes-rank0.txt" "$tmp/accum/hashes-rank1.txt" || fail "the ranks' weights differ (accumulation)"

echo "== ZeRO-1: the optimizer state sharded, the same bits as without"
mpi2 out="$tmp/zero1" batch=4 zero_stage=1 > "$tmp/zero1.log" 2>&1 || { cat "$tmp/zero1.log"; fail "zero_stage=1"; }
"$compare" "$tmp/two/model.safetensors" "$tmp/zero1/model.safetensors" 0 || fail "ZeRO-1 changed the weights"
cmp "$tmp/zero1/hashes-rank0.txt" "$tmp/zero1/hashes-rank1.txt" || fail "the ranks' weights differ (ZeRO-1)"
shard=$(sed -n "s/.*ZeRO-1: rank 0's optimizer state covers \([0-9]*\) of the \([0-9]*\) parameters.*/\1 \2/p" "$tmp/zero1.log")
echo "ZeRO-1: rank 0's optimizer state covers ${shard% *} of the ${shard#* } parameters"
[ -n "$shard" ] && awk -v s="$shard" 'BEGIN { split(s, a, " "); exit !(a[1] > 0 && a[1] < a[2]) }' ||
  fail "rank 0's ZeRO-1 shard is not a part of the parameters"

echo "== resume from a 2-rank checkpoint"
mpi2 out="$tmp/full" batch=4 save_steps=10 > "$tmp/full.log" 2>&1 || { cat "$tmp/full.log"; fail "the full run"; }
[ -d "$tmp/full/checkpoints/checkpoint-10" ] || fail "no checkpoint-10"
grep -q '"world_size": 2' "$tmp/full/checkpoints/checkpoint-10/trainer_state.json" || fail "no world_size in trainer_state.json"
mpi2 out="$tmp/resumed" batch=4 resume="$tmp/full/checkpoints/checkpoint-10" > "$tmp/resumed.log" 2>&1 ||
  { cat "$tmp/resumed.log"; fail "the resumed run"; }
"$compare" "$tmp/full/model.safetensors" "$tmp/resumed/model.safetensors" 0 || fail "the resumed run is not bit-exact"
if one out="$tmp/resumed1" batch=4 resume="$tmp/full/checkpoints/checkpoint-10" > "$tmp/resumed1.log" 2>&1; then
  fail "a 2-rank checkpoint resumed with 1 rank"
fi
grep -q "written by a run of 2 ranks and this run has 1" "$tmp/resumed1.log" || { cat "$tmp/resumed1.log"; fail "no clear refusal"; }
echo "PASS"

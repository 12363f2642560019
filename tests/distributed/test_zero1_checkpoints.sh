#!/usr/bin/env bash
# ZeRO-1 checkpoints on the CPU, 2 ranks under mpirun (docs/distributed.md,
# "ZeRO-1 checkpoints"): rank 0 writes the files of an unsharded run,
# receiving each other rank's shard of the optimizer state as it writes.
#   1. a 2-rank ZeRO-1 run resumed (with zero_stage=1) from its checkpoint
#      at step 10 ends with the same bits as the run that was not interrupted;
#   2. that checkpoint's model.safetensors and optimizer.safetensors are the
#      same bytes as those of a zero_stage=0 run at the same step (ZeRO-1
#      trains the same bits: test_data_parallel.sh);
#   3. the ZeRO-1 checkpoint resumes with zero_stage=0, bit-exact too;
#   4. with tensors larger than the writer's 4 MiB pieces (n_embd=576: the
#      MLP's are 5.3 MB), rank 1's state still arrives whole: the same bytes
#      as zero_stage=0's.
#   test_zero1_checkpoints.sh LMCORE COMPARE_WEIGHTS SOURCE_DIR DATA_DIR
set -euo pipefail
lmcore=$1 compare=$2 here=$3 data=$4
. "$here/mpi_env.sh"
require_mpi "$lmcore"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpi2() { timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 "$lmcore" run "$here/dp_train.lua" data="$data" batch=4 "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
run() { local name=$1; shift; mpi2 out="$tmp/$name" "$@" > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; fail "$name"; }; }

echo "== a ZeRO-1 run that checkpoints at step 10, and a zero_stage=0 one"
run zero1 zero_stage=1 save_steps=10
run zero0 zero_stage=0 save_steps=10
z1=$tmp/zero1/checkpoints/checkpoint-10 z0=$tmp/zero0/checkpoints/checkpoint-10
[ -f "$z1/optimizer.safetensors" ] || fail "the ZeRO-1 run wrote no checkpoint-10"
"$compare" "$tmp/zero0/model.safetensors" "$tmp/zero1/model.safetensors" 0 || fail "ZeRO-1 changed the weights"

echo "== its files are those of zero_stage=0"
for f in model.safetensors optimizer.safetensors; do
  cmp "$z0/$f" "$z1/$f" || fail "$f of the ZeRO-1 checkpoint differs from zero_stage=0's"
done
echo "model.safetensors and optimizer.safetensors: the same bytes ($(stat -c %s "$z1/optimizer.safetensors") bytes of optimizer state)"

echo "== resumed with zero_stage=1: bit-exact"
run resumed1 zero_stage=1 resume="$z1"
grep -q "resum" "$tmp/resumed1.log" || { cat "$tmp/resumed1.log"; fail "the run did not say it resumed"; }
"$compare" "$tmp/zero1/model.safetensors" "$tmp/resumed1/model.safetensors" 0 || fail "the ZeRO-1 resume is not bit-exact"
cmp "$tmp/resumed1/hashes-rank0.txt" "$tmp/resumed1/hashes-rank1.txt" || fail "the ranks' weights differ (resumed)"
# the steps after 10, as the uninterrupted run logged them
tail -n 10 "$tmp/zero1/hashes-rank0.txt" | cmp - "$tmp/resumed1/hashes-rank0.txt" || fail "steps 11-20 differ after the resume"

echo "== resumed with zero_stage=0: bit-exact"
run resumed0 zero_stage=0 resume="$z1"
"$compare" "$tmp/zero1/model.safetensors" "$tmp/resumed0/model.safetensors" 0 || fail "the zero_stage=0 resume is not bit-exact"

echo "== tensors of several 4 MiB pieces (n_embd=576)"
run big1 zero_stage=1 n_embd=576 steps=2 save_steps=2
run big0 zero_stage=0 n_embd=576 steps=2 save_steps=2
cmp "$tmp/big0/checkpoints/checkpoint-2/optimizer.safetensors" "$tmp/big1/checkpoints/checkpoint-2/optimizer.safetensors" ||
  fail "optimizer.safetensors of the ZeRO-1 checkpoint differs from zero_stage=0's (tensors of several pieces)"
echo "PASS"

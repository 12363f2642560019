#!/usr/bin/env bash
# logits_dtype=bf16 under data parallel (2 ranks, mpirun, the CPU): the
# model's BF16 params_copy is derived from the weights, so when rank 0's
# weights are broadcast at the start (DDP's), every rank must rebuild its
# copy from them (params_written).  Rank 1 draws other weights
# (seed_by_rank=true): the run must still end with the bits of the run whose
# ranks all drew rank 0's weights, and the ranks must hold the same weights
# after every step.  (A stale copy on rank 1 would change its first
# gradient, hence the average, hence the weights of both ranks.)
#   test_bf16_logits_ddp.sh LMCORE COMPARE_WEIGHTS DISTRIBUTED_DIR DATA_DIR [SETTING...]
# SETTINGs: the model's bf16 storage (default logits_dtype=bf16;
# tests/bf16_ffn passes activation_dtype=bf16 logits_dtype=fp32).
set -euo pipefail
lmcore=$1 compare=$2 here=$3 data=$4
shift 4
settings=("$@")
[ ${#settings[@]} -gt 0 ] || settings=(logits_dtype=bf16)
. "$here/mpi_env.sh"
require_mpi "$lmcore"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpi2() { timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 "$lmcore" run "$here/dp_train.lua" data="$data" \
  batch=4 steps=6 "${settings[@]}" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

mpi2 out="$tmp/same" > "$tmp/same.log" 2>&1 || { cat "$tmp/same.log"; fail "2 ranks, the same weights"; }
mpi2 out="$tmp/other" seed_by_rank=true > "$tmp/other.log" 2>&1 || { cat "$tmp/other.log"; fail "2 ranks, rank 1's own"; }
cmp "$tmp/other/hashes-rank0.txt" "$tmp/other/hashes-rank1.txt" || fail "the ranks' weights differ after some step"
"$compare" "$tmp/same/model.safetensors" "$tmp/other/model.safetensors" 0 ||
  fail "rank 1's own weights changed the run: its bf16 copy was not rebuilt from rank 0's broadcast weights"
echo "${settings[*]}: rank 0's broadcast weights and their bf16 copy: the same 6 steps, bit for bit"

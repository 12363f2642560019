#!/usr/bin/env bash
# logits_dtype=bf16 through the CLI: a run resumed from its checkpoint ends
# with the bits of the run that was not interrupted.  The checkpoint holds
# the fp32 weights only; the resumed model rebuilds its BF16 params_copy
# from them when they are loaded (params_written), so its head reads what
# the uninterrupted run's read (the copy the optimizer wrote: the same
# rounding of the same weights).  A copy left stale (the initial weights'
# rounding) would change every later step.
#   test_bf16_logits_resume.sh LMCORE COMPARE_WEIGHTS SOURCE_DIR DATA_DIR [SETTING...]
# SETTINGs: the model's bf16 storage (default logits_dtype=bf16;
# tests/bf16_ffn passes activation_dtype=bf16 logits_dtype=fp32).
set -euo pipefail
lmcore=$1 compare=$2 src=$3 data=$4
shift 4
settings=("$@")
[ ${#settings[@]} -gt 0 ] || settings=(logits_dtype=bf16)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {
  timeout 300 "$lmcore" run "$src/scripts/gpt2_clm.lua" preset=tiny data="$data" train_split=test threads=1 \
    eval_max_batches=2 tokenizer_vocab_size=1000 max_steps=6 save_steps=3 save_total_limit=0 \
    cache_dir="$tmp/cache" "${settings[@]}" "$@"
}
fail() { echo "FAIL: $*"; exit 1; }

run output_dir="$tmp/full" > "$tmp/full.log" 2>&1 || { cat "$tmp/full.log"; fail "the full run"; }
[ -d "$tmp/full/checkpoints/checkpoint-3" ] || fail "no checkpoint-3"
run output_dir="$tmp/resumed" resume_from_checkpoint="$tmp/full/checkpoints/checkpoint-3" > "$tmp/resumed.log" 2>&1 ||
  { cat "$tmp/resumed.log"; fail "the resumed run"; }
"$compare" "$tmp/full/model.safetensors" "$tmp/resumed/model.safetensors" 0 ||
  fail "the resumed bf16 run is not the uninterrupted one's bits (its params_copy not rebuilt from the checkpoint?)"
echo "${settings[*]}: resumed from checkpoint-3, the same weights after step 6, bit for bit"

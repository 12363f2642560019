#!/usr/bin/env bash
# GPU benchmark: lmcore and the Hugging Face Trainer at the reference shape
# (batch 8 x 128), same GPU, same run; prints each side's steps/s and the
# ratio.  Run from the repository root on the GPU machine:
#   bench/gpu/bench_gpu.sh LMCORE_EXE DATA_DIR LOG [models] [precisions]
# LOG receives both sides' full output; stdout gets the RESULT/RATIO lines.
# LMCORE_RECOMPUTE=activations|attention runs lmcore with that `recompute`
# setting (less memory, a little more time; default none).
# DATA_DIR holds wiki.test.raw (the text lmcore trains its tokenizer and
# blocks on; the HF side uses random ids of the same shape: speed only).
set -uo pipefail
exe=$1
data=$2
log=$3
models=${4:-gpt2}
precisions=${5:-fp32 bf16}
: > "$log"
for model in $models; do
  for precision in $precisions; do
    lm=$("$exe" --log-level warn run bench/gpu/train_speed.lua model="$model" data="$data" precision="$precision" \
         recompute="${LMCORE_RECOMPUTE:-none}" 2>&1 |
         tee -a "$log" | grep '^RESULT')
    hf=$(python3 bench/gpu/hf_trainer_speed.py --model "$model" --precision "$precision" 2>&1 | tee -a "$log" |
         grep '^RESULT')
    echo "$lm"
    echo "$hf"
    a=$(sed -n 's/.*steps_per_second=\([0-9.]*\).*/\1/p' <<<"$lm")
    b=$(sed -n 's/.*steps_per_second=\([0-9.]*\).*/\1/p' <<<"$hf")
    if [ -n "$a" ] && [ -n "$b" ]; then
      echo "RATIO model=$model precision=$precision lmcore/hf_trainer steps_per_second = $(python3 -c "print(round($a/$b, 2))")"
    fi
    # Peak memory in use on the GPU (context included on both sides).
    ma=$(sed -n 's/.*peak_gpu_memory_mib=\([0-9.]*\).*/\1/p' <<<"$lm")
    mb=$(sed -n 's/.*peak_gpu_memory_mib=\([0-9.]*\).*/\1/p' <<<"$hf")
    if [ -n "$ma" ] && [ -n "$mb" ] && [ "$mb" != 0 ]; then
      echo "RATIO model=$model precision=$precision lmcore/hf_trainer peak_gpu_memory = $(python3 -c "print(round($ma/$mb, 2))")"
    fi
  done
done

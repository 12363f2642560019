#!/usr/bin/env bash
# The CUDA issue's throughput shape, side by side on one GPU: GPT-2 124M,
# blocks of 1024, bf16, the largest batch up to 64 that fits, lmcore
# (throughput.lua) against PyTorch + torch.compile (torch_compile_throughput.py).
# Prints both RESULT lines and the ratios (tokens/s, peak memory).
#   bench/gpu/throughput.sh LMCORE_EXE DATA_DIR LOG [peak_tflops]
# DATA_DIR holds wiki.test.raw (lmcore's tokenizer and blocks); the PyTorch
# side uses random ids of the same shape (speed only).
set -uo pipefail
exe=$1 data=$2 log=$3 peak=${4:-989.4}
: >"$log"
lm=""
for batch in 64 32 16 8 4; do
  lm=$("$exe" --log-level warn run bench/gpu/throughput.lua data="$data" batch_size="$batch" peak_tflops="$peak" 2>&1 |
       tee -a "$log" | grep '^RESULT') && break
  echo "lmcore batch $batch did not run (out of memory?): see $log" | tee -a "$log"
  lm=""
done
py=$(python3 bench/gpu/torch_compile_throughput.py --peak-tflops "$peak" 2>&1 | tee -a "$log" | grep '^RESULT')
echo "$lm"
echo "$py"
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
a=$(field tokens_per_second "$lm") b=$(field tokens_per_second "$py")
ma=$(field peak_gpu_memory_mib "$lm") mb=$(field peak_gpu_memory_mib "$py")
[ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { printf "RATIO shape=throughput lmcore/torch_compile tokens_per_second = %.2f\n", a / b }'
[ -n "$ma" ] && [ -n "$mb" ] && [ "$mb" != 0 ] && awk -v a="$ma" -v b="$mb" 'BEGIN { printf "RATIO shape=throughput lmcore/torch_compile peak_gpu_memory = %.2f\n", a / b }'
exit 0

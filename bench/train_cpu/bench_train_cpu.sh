#!/usr/bin/env bash
# CPU training throughput: lmcore's GPT-2 plugin vs Hugging Face
# GPT2LMHeadModel + torch.optim.AdamW, same shapes, same thread count.
#
#   bench/train_cpu/bench_train_cpu.sh [BUILD_DIR]
#     RUNS=3 STEPS=20 THREADS=2 PYTHON=python3 (the venv with torch, transformers)
#     extra model settings for both sides: MODEL="n_layer=4 n_head=4 n_embd=256 vocab_size=8192 n_positions=128"
#
# Shape (issue 4): 4 layers, 4 heads, 256 wide, vocab 8192, 128 positions,
# blocks of 128 tokens, batch 8, dropout 0.1.  Each run times STEPS full
# training steps after 3 warm-up steps (zero_grad, forward, backward,
# gradient norm / clipping at 1.0, AdamW) and reports the median; the two
# sides run alternately (ABAB...) RUNS times each so that a change of load
# on a shared machine hits both.  Prints the median tokens/s of each side
# over the runs, the ratio lmcore/PyTorch, peak RSS, the BLAS of each side,
# and the load average before and after.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
RUNS=${RUNS:-3}
STEPS=${STEPS:-20}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-python3}
MODEL=${MODEL:-}

"$PYTHON" -c "import torch, transformers" 2>/dev/null ||
  { echo "$PYTHON has no torch/transformers (set PYTHON=/path/to/venv/bin/python)" >&2; exit 1; }
[[ -f $BUILD/CMakeCache.txt ]] ||
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLMCORE_CUDA=OFF >/dev/null
cmake --build "$BUILD" -j2 --target bench_train_gpt2 >/dev/null
DRIVER=$BUILD/bin/bench_train_gpt2

echo "load before: $(uptime | sed 's/.*load average/load average/')"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-<unset>}" \
     "(they select lmcore's OpenBLAS kernel; torch uses MKL/oneDNN and ignores them)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# shellcheck disable=SC2086
for i in $(seq "$RUNS"); do
  "$DRIVER" steps="$STEPS" threads="$THREADS" $MODEL >>"$TMP/results"
  "$PYTHON" "$ROOT/bench/train_cpu/bench_train_torch.py" steps="$STEPS" threads="$THREADS" $MODEL \
    2>"$TMP/torch.err" >>"$TMP/results" || { cat "$TMP/torch.err" >&2; exit 1; }
done
echo "load after:  $(uptime | sed 's/.*load average/load average/')"

"$PYTHON" - "$TMP/results" "$STEPS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
side = {impl: [r for r in rows if r["impl"] == impl] for impl in ("lmcore", "pytorch")}
med = {impl: statistics.median(r["tokens_per_s"] for r in rs) for impl, rs in side.items()}
rss = {impl: max(r["peak_rss_mb"] for r in rs) for impl, rs in side.items()}
first = side["lmcore"][0]
print(f"GPT-2 {first['n_params']:,} parameters, batch 8 x 128 tokens, {first['threads']} threads, "
      f"median step over {sys.argv[2]} steps, {len(side['lmcore'])} alternating runs each")
for impl in ("lmcore", "pytorch"):
    runs = ", ".join(f"{r['tokens_per_s']:.0f}" for r in side[impl])
    print(f"  {impl:8s} {med[impl]:8.0f} tokens/s  (runs: {runs})  peak RSS {rss[impl]:7.1f} MB")
print(f"  ratio lmcore/PyTorch: {med['lmcore'] / med['pytorch']:.2f}x tokens/s;"
      f" peak RSS {rss['lmcore'] / rss['pytorch']:.2f}x")
print(f"  lmcore BLAS:  {first['blas']}")
t = side["pytorch"][0]
print(f"  PyTorch BLAS: {t['blas']}; attention {t['attn_implementation']}, {t['optimizer']}")
PY

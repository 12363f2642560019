#!/usr/bin/env bash
# CPU training throughput: lmcore's GPT-2 and BERT plugins vs Hugging Face
# GPT2LMHeadModel / BertForMaskedLM + torch.optim.AdamW, same shapes, same
# thread count.
#
#   bench/train_cpu/bench_train_cpu.sh [BUILD_DIR]
#     MODELS="gpt2 bert" RUNS=3 STEPS=20 THREADS=2 PYTHON=python3 (the venv with torch, transformers)
#     extra model settings for both sides, Hugging Face config names:
#       MODEL="n_layer=4 n_head=4 n_embd=256 vocab_size=8192 n_positions=128"        (GPT-2)
#       BERT_MODEL="num_hidden_layers=4 hidden_size=256 intermediate_size=1024 ..."   (BERT)
#
# Shapes: GPT-2 (issue 4) 4 layers, 4 heads, 256 wide, vocab 8192, 128
# positions; BERT (issue 5) 4 layers, 4 heads, hidden 256, intermediate
# 1024, vocab 8192, 128 positions, MLM batches with 15 % masking (the mlm
# objective; DataCollatorForLanguageModeling).  Both: blocks of 128 tokens,
# batch 8, dropout 0.1.  Each run times STEPS full training steps after 3
# warm-up steps (zero_grad, forward, backward, gradient norm / clipping at
# 1.0, AdamW) and reports the median; the two sides run alternately
# (ABAB...) RUNS times each so that a change of load on a shared machine
# hits both.  Prints, per model, the median tokens/s of each side over the
# runs, the ratio lmcore/PyTorch, peak RSS, the BLAS of each side, and the
# load average before and after.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
MODELS=${MODELS:-gpt2 bert}
RUNS=${RUNS:-3}
STEPS=${STEPS:-20}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-python3}
MODEL=${MODEL:-}
BERT_MODEL=${BERT_MODEL:-}

for model in $MODELS; do
  [[ $model == gpt2 || $model == bert ]] || { echo "MODELS: '$model' is unknown: use gpt2 and/or bert" >&2; exit 2; }
done
"$PYTHON" -c "import torch, transformers" 2>/dev/null ||
  { echo "$PYTHON has no torch/transformers (set PYTHON=/path/to/venv/bin/python)" >&2; exit 1; }
[[ -f $BUILD/CMakeCache.txt ]] ||
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLMCORE_CUDA=OFF >/dev/null
# Quiet unless the build fails (a re-glob of the tree prints a notice).
if ! build_log=$(cmake --build "$BUILD" -j2 --target bench_train_lm 2>&1); then
  echo "$build_log" >&2
  exit 1
fi
DRIVER=$BUILD/bin/bench_train_lm

echo "load before: $(uptime | sed 's/.*load average/load average/')"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-<unset>}" \
     "(they select lmcore's OpenBLAS kernel; torch uses MKL/oneDNN and ignores them)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# shellcheck disable=SC2086
for i in $(seq "$RUNS"); do
  for model in $MODELS; do
    settings=$MODEL
    [[ $model == bert ]] && settings=$BERT_MODEL
    "$DRIVER" model="$model" steps="$STEPS" threads="$THREADS" $settings >>"$TMP/results"
    "$PYTHON" "$ROOT/bench/train_cpu/bench_train_torch.py" model="$model" steps="$STEPS" threads="$THREADS" \
      $settings 2>"$TMP/torch.err" >>"$TMP/results" || { cat "$TMP/torch.err" >&2; exit 1; }
  done
  echo "  run $i of $RUNS done, load $(uptime | sed 's/.*load average: //')"
done
echo "load after:  $(uptime | sed 's/.*load average/load average/')"

# shellcheck disable=SC2086
"$PYTHON" - "$TMP/results" "$STEPS" $MODELS <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
steps, models = sys.argv[2], sys.argv[3:]
titles = {"gpt2": "GPT-2 (GPT2LMHeadModel, clm)", "bert": "BERT (BertForMaskedLM, mlm 15 %)"}
t = next(r for r in rows if r["impl"] == "pytorch")
l = next(r for r in rows if r["impl"] == "lmcore")
for model in models:
    side = {impl: [r for r in rows if r["impl"] == impl and r.get("model", "gpt2") == model]
            for impl in ("lmcore", "pytorch")}
    med = {impl: statistics.median(r["tokens_per_s"] for r in rs) for impl, rs in side.items()}
    rss = {impl: max(r["peak_rss_mb"] for r in rs) for impl, rs in side.items()}
    first = side["lmcore"][0]
    print(f"{titles[model]}: {first['n_params']:,} parameters, batch 8 x 128 tokens "
          f"({first['scored_per_step']:.0f} scored per step), {first['threads']} threads, "
          f"median step over {steps} steps, {len(side['lmcore'])} alternating runs each")
    for impl in ("lmcore", "pytorch"):
        runs = ", ".join(f"{r['tokens_per_s']:.0f}" for r in side[impl])
        step_ms = statistics.median(r["median_step_s"] for r in side[impl]) * 1e3
        print(f"  {impl:8s} {med[impl]:8.0f} tokens/s  {step_ms:7.1f} ms/step  (runs: {runs})"
              f"  peak RSS {rss[impl]:7.1f} MB")
    print(f"  ratio lmcore/PyTorch: {med['lmcore'] / med['pytorch']:.2f}x tokens/s;"
          f" peak RSS {rss['lmcore'] / rss['pytorch']:.2f}x")
print(f"lmcore BLAS:  {l['blas']}")
print(f"PyTorch BLAS: {t['blas']}; attention {t['attn_implementation']}, {t['optimizer']}")
PY

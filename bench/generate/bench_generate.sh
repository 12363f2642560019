#!/usr/bin/env bash
# Greedy generation speed on the CPU: lmcore's GPT-2 (KV cache, model:generate)
# vs Hugging Face transformers' model.generate (use_cache=True, do_sample=False)
# on the same weights.
#
#   bench/generate/bench_generate.sh [BUILD_DIR]
#     THREADS=2 PROMPT_TOKENS=32 NEW_TOKENS=128 REPEATS=3 ROUNDS=1 PYTHON=/work/venv/bin/python
#     MODEL="n_layer=4 n_head=4 n_embd=256 vocab_size=8192 n_positions=512 initializer_range=0.3"
#
# lmcore saves a randomly initialised GPT-2 (seed 1234) to a temporary folder
# (initializer_range 0.3 rather than GPT-2's 0.02: with 0.02 greedy decoding
# of random weights repeats one token, and comparing the ids proves little);
# both sides load that folder (transformers through
# GPT2LMHeadModel.from_pretrained), take the same prompt of PROMPT_TOKENS
# random ids, warm up with one short generation, then time REPEATS greedy
# generations of NEW_TOKENS tokens each.  tokens/s = new tokens / seconds of
# the generate call (prompt included).  The sides run alternately ROUNDS
# times.  Prints the median tokens/s of each side, the ratio, the first 20
# generated ids of each (identical when both compute the same model: same
# weights, greedy), and the load average before and after.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
THREADS=${THREADS:-2}
PROMPT_TOKENS=${PROMPT_TOKENS:-32}
NEW_TOKENS=${NEW_TOKENS:-128}
REPEATS=${REPEATS:-3}
ROUNDS=${ROUNDS:-1}
PYTHON=${PYTHON:-python3}
MODEL=${MODEL:-n_layer=4 n_head=4 n_embd=256 vocab_size=8192 n_positions=512 initializer_range=0.3}

"$PYTHON" -c "import torch, transformers" 2>/dev/null ||
  { echo "$PYTHON has no torch/transformers (set PYTHON=/path/to/venv/bin/python)" >&2; exit 1; }
[[ -f $BUILD/CMakeCache.txt ]] ||
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLMCORE_CUDA=OFF >/dev/null
cmake --build "$BUILD" -j2 --target lmcore_cli lmplugin_arch_gpt2 >/dev/null
LMCORE=$BUILD/bin/lmcore

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# shellcheck disable=SC2086
"$LMCORE" --log-level warn run "$ROOT/bench/generate/bench_generate.lua" save="$TMP/model" $MODEL
VOCAB=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$TMP/model/config.json")
PROMPT=$("$PYTHON" -c "import random; r = random.Random(7); print(','.join(str(r.randrange($VOCAB)) for _ in range($PROMPT_TOKENS)))")

echo "load before: $(uptime | sed 's/.*load average/load average/')"
for _ in $(seq "$ROUNDS"); do
  "$LMCORE" --log-level warn run "$ROOT/bench/generate/bench_generate.lua" model="$TMP/model" prompt="$PROMPT" \
    new_tokens="$NEW_TOKENS" threads="$THREADS" repeats="$REPEATS" >>"$TMP/results"
  "$PYTHON" "$ROOT/bench/generate/bench_generate_hf.py" model="$TMP/model" prompt="$PROMPT" \
    new_tokens="$NEW_TOKENS" threads="$THREADS" repeats="$REPEATS" 2>"$TMP/hf.err" >>"$TMP/results" ||
    { cat "$TMP/hf.err" >&2; exit 1; }
done
echo "load after:  $(uptime | sed 's/.*load average/load average/')"

"$PYTHON" - "$TMP/results" "$TMP/model/config.json" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
cfg = json.load(open(sys.argv[2]))
side = {impl: [r for r in rows if r["impl"] == impl] for impl in ("lmcore", "huggingface")}
rates = {impl: [x for r in rs for x in r["tokens_per_s"]] for impl, rs in side.items()}
med = {impl: statistics.median(v) for impl, v in rates.items()}
first = side["lmcore"][0]
print(f"GPT-2 {cfg['n_layer']} layers, {cfg['n_embd']} wide, {cfg['n_head']} heads, vocab {cfg['vocab_size']}; "
      f"prompt {first['prompt_tokens']} tokens, {len(first['ids'])} new tokens, greedy, CPU, "
      f"{first['threads']} threads; median over {len(rates['lmcore'])} generations each")
for impl in ("lmcore", "huggingface"):
    runs = ", ".join(f"{x:.0f}" for x in rates[impl])
    print(f"  {impl:12s} {med[impl]:8.1f} tokens/s  (runs: {runs})")
print(f"  ratio lmcore/Hugging Face: {med['lmcore'] / med['huggingface']:.2f}x"
      f"  (lmcore KV cache: {'yes' if first['kv_cache'] else 'no'}; "
      f"HF attention: {side['huggingface'][0]['attn_implementation']}, torch {side['huggingface'][0]['torch']})")
a, b = side["lmcore"][0]["ids"], side["huggingface"][0]["ids"]
print(f"  lmcore first 20 ids: {a[:20]}")
print(f"  HF     first 20 ids: {b[:20]}")
same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
print("  generated ids: " + ("identical" if same is None else f"first difference at new token {same}")
      + f" over all {len(a)}")
PY

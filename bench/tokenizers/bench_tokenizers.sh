#!/usr/bin/env bash
# BPE tokenizer benchmark: lmcore vs Hugging Face tokenizers, one thread.
#
#   bench/tokenizers/bench_tokenizers.sh [BUILD_DIR]     (RUNS=3, PYTHON=python3)
#
# 1. training on wikitext-2 valid+test (2.4 MB) to vocab_size 25000
#    (min_frequency 2, special <|endoftext|>), and a check that both
#    produced the same vocabulary and merges;
# 2. encoding every line of the same text with HF's trained tokenizer.json,
#    in both, and a check that the token counts agree.
# Prints the median of RUNS runs, the lmcore/HF speed ratio and peak RSS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
RUNS=${RUNS:-3}
PYTHON=${PYTHON:-python3}
DATA=$ROOT/../shared/data/wikitext-2-raw
FILES=("$DATA/wiki.valid.raw" "$DATA/wiki.test.raw")
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false

for f in "${FILES[@]}"; do [[ -r $f ]] || { echo "missing $f (the shared wikitext-2 data)" >&2; exit 1; }; done
"$PYTHON" -c "import tokenizers" 2>/dev/null || { echo "$PYTHON has no 'tokenizers' (set PYTHON=/path/to/venv/bin/python)" >&2; exit 1; }

DRIVER=$BUILD/bin/bench_bpe
if ! cmake --build "$BUILD" --target bench_bpe >/dev/null 2>&1; then
  # bench/ not added to this build: compile the driver directly.
  cmake --build "$BUILD" --target lmplugin_tokenizer_bpe >/dev/null
  PLUGIN=$(find "$BUILD" -name lm_tokenizer_bpe.so | head -1)
  mkdir -p "$BUILD/bin"
  cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$ROOT/include" -DLMCORE_BPE_PLUGIN_PATH="\"$PLUGIN\"" \
     "$ROOT/bench/tokenizers/bench_bpe.c" -L"$BUILD/lib" -llmcore -ldl -Wl,-rpath,"$BUILD/lib" -o "$DRIVER"
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for i in $(seq "$RUNS"); do
  "$DRIVER" train "$TMP/lmcore.json" 25000 "${FILES[@]}" >>"$TMP/results"
  "$PYTHON" "$ROOT/bench/tokenizers/bench_hf.py" train "$TMP/hf.json" 25000 "${FILES[@]}" >>"$TMP/results"
done
for i in $(seq "$RUNS"); do
  "$DRIVER" encode "$TMP/hf.json" "${FILES[@]}" >>"$TMP/results"
  "$PYTHON" "$ROOT/bench/tokenizers/bench_hf.py" encode "$TMP/hf.json" "${FILES[@]}" >>"$TMP/results"
done

"$PYTHON" - "$TMP" <<'PY'
import json, statistics, sys
tmp = sys.argv[1]
rows = [json.loads(l) for l in open(f"{tmp}/results")]
def pick(impl, op, key):
    return statistics.median(r[key] for r in rows if r["impl"] == impl and r["op"] == op)
def model(path):
    m = json.load(open(path))["model"]
    merges = [tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in m["merges"]]
    return m["vocab"], merges
same = model(f"{tmp}/lmcore.json") == model(f"{tmp}/hf.json")
print(f"training, 2.4 MB -> vocab 25000 (median of {sum(1 for r in rows if r['op']=='train')//2}):")
for impl in ("lmcore", "hf"):
    print(f"  {impl:7s} {pick(impl, 'train', 'seconds'):7.3f} s   peak RSS {pick(impl, 'train', 'peak_rss_mb'):7.1f} MB")
print(f"  speed-up lmcore/HF: {pick('hf', 'train', 'seconds') / pick('lmcore', 'train', 'seconds'):.2f}x;"
      f" identical vocab and merges: {same}")
print("encoding every line, one thread:")
for impl in ("lmcore", "hf"):
    print(f"  {impl:7s} {pick(impl, 'encode', 'mb_per_s'):7.2f} MB/s  {pick(impl, 'encode', 'tokens'):.0f} tokens"
          f"   peak RSS {pick(impl, 'encode', 'peak_rss_mb'):7.1f} MB")
print(f"  speed-up lmcore/HF: {pick('lmcore', 'encode', 'mb_per_s') / pick('hf', 'encode', 'mb_per_s'):.2f}x;"
      f" same token count: {pick('lmcore', 'encode', 'tokens') == pick('hf', 'encode', 'tokens')}")
sys.exit(0 if same and pick('lmcore', 'encode', 'tokens') == pick('hf', 'encode', 'tokens') else 1)
PY

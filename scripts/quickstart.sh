#!/usr/bin/env bash
# Sets lmcore up on a fresh Debian/Ubuntu machine and trains GPT-2.
#   - installs the build dependencies (apt-get, when run as root);
#   - builds lmcore into build/;
#   - with the full WikiText-2 in data/wikitext-2-raw/ and a GPU: the
#     reference recipe (GPT-2 124M, 3 epochs);
#   - otherwise: a small GPT-2 on the WikiText-2 text at hand, trained on
#     wiki.test.raw and evaluated on wiki.valid.raw (a few minutes on a CPU).
# Extra key=value arguments go to scripts/gpt2_clm.lua.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config liblua5.4-dev check libsubunit-dev libopenblas-dev >/dev/null
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

if [ -f data/wikitext-2-raw/wiki.train.raw ] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  exec build/bin/lmcore run scripts/gpt2_clm.lua data=data/wikitext-2-raw device=cuda "$@"
fi

data=data/wikitext-2-raw
[ -f "$data/wiki.test.raw" ] || data=../shared/data/wikitext-2-raw
if [ ! -f "$data/wiki.test.raw" ]; then
  echo "quickstart: no WikiText-2 found: run scripts/fetch_wikitext2.sh first" >&2
  exit 1
fi
echo "quickstart: training a small GPT-2 on $data/wiki.test.raw, evaluating on wiki.valid.raw" >&2
exec build/bin/lmcore run scripts/gpt2_clm.lua preset=small data="$data" train_split=test eval_split=validation \
  output_dir=runs/gpt2_small "$@"

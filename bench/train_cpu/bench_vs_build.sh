#!/usr/bin/env bash
# CPU training throughput and peak memory of this build against another
# build of lmcore (the previous commit, a branch): the same bench_train_lm
# run from each build in turn, A B A B ..., so that a change of load on a
# shared machine hits both sides.
#
#   bench/train_cpu/bench_vs_build.sh OTHER_BUILD_DIR [BUILD_DIR]
#     MODELS="gpt2 bert" RUNS=5 STEPS=20 THREADS=2, extra bench_train_lm
#     settings in SETTINGS="batch=8 block=128 ..."
#
# Making the other build, e.g. of the commit before a change:
#   git worktree add /tmp/lmcore-prev HEAD~1
#   cmake -S /tmp/lmcore-prev -B /tmp/lmcore-prev/build -DCMAKE_BUILD_TYPE=Release -DLMCORE_CUDA=OFF
#   cmake --build /tmp/lmcore-prev/build -j2 --target bench_train_lm
#
# Prints per model: each side's median tokens/s and per-run figures, the
# median of the run-by-run ratios (this build / other; above 1 is faster),
# the ratio of the medians, peak RSS of each side and their ratio, and
# whether both sides trained the same numbers (first and last loss and the
# parameters' FNV-1a fingerprint, which must agree for a change that keeps
# the arithmetic).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OTHER=${1:?usage: bench_vs_build.sh OTHER_BUILD_DIR [BUILD_DIR]}
BUILD=${2:-$ROOT/build}
MODELS=${MODELS:-gpt2 bert}
RUNS=${RUNS:-5}
STEPS=${STEPS:-20}
THREADS=${THREADS:-2}
SETTINGS=${SETTINGS:-}

for side in "$OTHER" "$BUILD"; do
  [[ -x $side/bin/bench_train_lm ]] ||
    { echo "$side/bin/bench_train_lm is missing: build it with cmake --build $side --target bench_train_lm" >&2; exit 2; }
done
for model in $MODELS; do
  [[ $model == gpt2 || $model == bert ]] || { echo "MODELS: '$model' is unknown: use gpt2 and/or bert" >&2; exit 2; }
done

echo "this build:  $BUILD"
echo "other build: $OTHER"
echo "load before: $(uptime | sed 's/.*load average/load average/')"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for i in $(seq "$RUNS"); do
  for model in $MODELS; do
    # shellcheck disable=SC2086
    for side in other this; do
      dir=$BUILD
      [[ $side == other ]] && dir=$OTHER
      "$dir/bin/bench_train_lm" model="$model" steps="$STEPS" threads="$THREADS" $SETTINGS |
        sed "s/^{/{\"side\": \"$side\", \"run\": $i, /" >>"$TMP/results"
    done
  done
  echo "  run $i of $RUNS done, load $(uptime | sed 's/.*load average: //')"
done
echo "load after:  $(uptime | sed 's/.*load average/load average/')"

# shellcheck disable=SC2086
python3 - "$TMP/results" $MODELS <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
for model in sys.argv[2:]:
    side = {s: sorted((r for r in rows if r["side"] == s and r["model"] == model), key=lambda r: r["run"])
            for s in ("other", "this")}
    med = {s: statistics.median(r["tokens_per_s"] for r in rs) for s, rs in side.items()}
    rss = {s: max(r["peak_rss_mb"] for r in rs) for s, rs in side.items()}
    pairs = [t["tokens_per_s"] / o["tokens_per_s"] for o, t in zip(side["other"], side["this"])]
    first = side["this"][0]
    print(f"{model}: {first['n_params']:,} parameters, {first['steps']} steps a run, {first['threads']} threads, "
          f"{len(pairs)} alternating runs each")
    for s in ("other", "this"):
        runs = ", ".join(f"{r['tokens_per_s']:.0f}" for r in side[s])
        print(f"  {s:5s} build {med[s]:8.0f} tokens/s median (runs: {runs})  peak RSS {rss[s]:7.1f} MB")
    print(f"  this/other: median of run ratios {statistics.median(pairs):.3f}x, ratio of medians "
          f"{med['this'] / med['other']:.3f}x tokens/s; peak RSS {rss['this'] / rss['other']:.4f}x")
    keys = ("first_loss", "last_loss", "params_fnv1a")
    same = all(side["other"][0][k] == side["this"][0][k] for k in keys)
    print(f"  same numbers trained (first/last loss, parameter fingerprint): {'yes' if same else 'NO'}"
          + ("" if same else f" (other {[side['other'][0][k] for k in keys]}, this {[first[k] for k in keys]})"))
PY

#!/usr/bin/env bash
# Crash safety: SIGKILL a training run at random moments while it writes a
# checkpoint every step (after its first one); the newest complete checkpoint must always load and
# resume to the end of the run.
#   tests/crash/kill_loop.sh LMCORE_EXE DATA_DIR [TRIALS]
set -u
exe=$1
data=$2
trials=${LMCORE_KILL_TRIALS:-${3:-50}} # the sanitizer pass of CI runs fewer
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/lm_kill_XXXXXX)
trap 'rm -rf "$work"' EXIT
common=(preset=tiny "data=$data" train_split=test max_steps=40 save_every=1 keep_last=2 threads=1
        eval_max_batches=1 log_every=1000 "cache_dir=$work/cache")
# One tokenizer for every trial, so runs differ only by where they die.
"$exe" --log-level warn run scripts/gpt2_clm.lua "${common[@]}" max_steps=1 output_dir="$work/first" >/dev/null 2>&1 ||
  { echo "FAIL: the first run did not complete"; exit 1; }
tok="$work/first/tokenizer.json"
resumed=0
for i in $(seq 1 "$trials"); do
  rm -rf "$work/run" "$work/resumed"
  "$exe" --log-level warn run scripts/gpt2_clm.lua "${common[@]}" tokenizer="$tok" output_dir="$work/run" \
    >/dev/null 2>&1 &
  pid=$!
  # The kill lands at a random moment after the first checkpoint is in
  # place, while later ones are written (one per step): how long the run
  # takes to start (loading, a loaded machine, sanitizers) must not decide
  # whether a trial tests anything.
  for _ in $(seq 1 1200); do
    compgen -G "$work/run/checkpoints/checkpoint-*" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 90 + 10))"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  newest=$(ls -d "$work"/run/checkpoints/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -1)
  [ -n "$newest" ] || continue # killed before the first checkpoint
  [ "${newest##*-}" = 40 ] && continue # finished before the kill: nothing left to resume
  if ! "$exe" --log-level warn run scripts/gpt2_clm.lua "${common[@]}" tokenizer="$tok" resume="$newest" \
    output_dir="$work/resumed" > "$work/resume.log" 2>&1; then
    echo "FAIL: trial $i: resuming from $newest failed:"
    cat "$work/resume.log"
    exit 1
  fi
  grep -q "Perplexity:" "$work/resume.log" || { echo "FAIL: trial $i: no result"; exit 1; }
  resumed=$((resumed + 1))
done
echo "$resumed of $trials killed runs resumed from their newest checkpoint"
[ "$resumed" -ge $((trials / 3)) ] || { echo "FAIL: too few trials reached a checkpoint"; exit 1; }
echo "1 passed, 0 failed"

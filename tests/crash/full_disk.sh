#!/usr/bin/env bash
# Crash safety: the disk fills up while a checkpoint is being written.  The
# run must stop with a clear error, leave the previous checkpoint intact and
# resumable, and leave no half-written checkpoint behind.  Needs root to
# mount a small tmpfs; exits 77 (skipped) where mounting is not allowed.
#   tests/crash/full_disk.sh LMCORE_EXE DATA_DIR   (KEEP=1 prints the failed run's log)
set -u
exe=$1
data=$2
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/lm_disk_XXXXXX)
disk="$work/disk"
mkdir -p "$disk"
cleanup() { [ -n "${KEEP:-}" ] && cat "$work/run.log"; umount "$disk" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# Room for one checkpoint of the tiny model (~0.95 MB), not for two.
if ! mount -t tmpfs -o size=1400k tmpfs "$disk" 2>/dev/null; then
  echo "skipped: cannot mount a tmpfs here (needs root)"
  exit 77
fi
common=(preset=tiny "data=$data" train_split=test max_steps=5 threads=1 eval_max_batches=1 tokenizer_vocab_size=300
        "cache_dir=$work/cache")
"$exe" --log-level warn run scripts/gpt2_clm.lua "${common[@]}" save_every=1 keep_last=3 output_dir="$disk/run" \
  > "$work/run.log" 2>&1
rc=$?
fail() { echo "FAIL: $*"; cat "$work/run.log"; exit 1; }
[ $rc -eq 1 ] || fail "exit status $rc, expected 1"
grep -q "lmcore: error: .*saving checkpoint at step 2: .*No space left on device" "$work/run.log" ||
  fail "no clear disk-full error"
[ -f "$disk/run/checkpoints/checkpoint-1/trainer_state.json" ] || fail "checkpoint-1 is gone"
ls -a "$disk/run/checkpoints" | grep -q '\.tmp\.' && fail "a half-written checkpoint was left behind"
# The previous checkpoint still resumes to the end of the run.
"$exe" --log-level warn run scripts/gpt2_clm.lua "${common[@]}" tokenizer="$disk/run/checkpoints/checkpoint-1/tokenizer.json" \
  resume="$disk/run/checkpoints/checkpoint-1" output_dir="$work/resumed" > "$work/resume.log" 2>&1 ||
  { cat "$work/resume.log"; fail "resume from checkpoint-1 failed"; }
echo "disk full during a checkpoint: clear error, previous checkpoint intact and resumable"
echo "1 passed, 0 failed"

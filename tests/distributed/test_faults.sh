#!/usr/bin/env bash
# Faults and bad input across 2 ranks (docs/distributed.md): a build
# without MPI launched as 2 processes says what to install; whatever fails
# on one rank, every rank exits non-zero within 60 s, and the output names
# the failing rank and its error; a failure every rank shares (bad
# settings) is one "lmcore: error:" line, rank 0's.
#   test_faults.sh LMCORE COMPARE_WEIGHTS SOURCE_DIR DATA_DIR
set -uo pipefail
lmcore=$1 here=$3 data=$4
# Launched as 2 processes, by a build without the mpi communicator: one line
# saying what to install (no mpirun needed: the launcher's variables are set
# by hand, and the plugin folder of a copied lmcore lacks the communicator).
nompi=$(mktemp -d)
mkdir -p "$nompi/bin" "$nompi/lib/lmcore/plugins"
cp "$lmcore" "$nompi/bin/lmcore"
build_lib=$(cd "$(dirname "$lmcore")/../lib" && pwd)
cp -P "$build_lib"/liblmcore.so* "$nompi/lib/"
for p in "$build_lib"/lmcore/plugins/lm_*.so; do
  case $(basename "$p") in lm_communicator_mpi.so | lm_communicator_nccl.so) ;; *) ln -s "$p" "$nompi/lib/lmcore/plugins/" ;; esac
done
OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 timeout 60 "$nompi/bin/lmcore" run "$here/dp_train.lua" data="$data" \
  out="$nompi/out" steps=2 > "$nompi/log" 2>&1
rc=$?
if [ $rc -ne 1 ] || [ "$(grep -c 'lmcore: error: ' "$nompi/log")" -ne 1 ] ||
   ! grep -qF "this process is one of 2 launched (OMPI_COMM_WORLD_SIZE=2) but this lmcore has no 'mpi' communicator plugin: rebuild lmcore with MPI found" "$nompi/log"; then
  echo "FAIL no_mpi_build: exit $rc"
  sed 's/^/     | /' "$nompi/log" | tail -5
  rm -rf "$nompi"
  exit 1
fi
echo "ok   no_mpi_build: $(grep 'lmcore: error' "$nompi/log" | cut -c1-150)"
rm -rf "$nompi"

# Slurm, by its variables (tests/distributed/test_slurm.sh runs the real
# thing where a cluster answers): a plain `lmcore run` in an allocation's
# batch shell (SLURM_NTASKS=2, no srun step) is one process and trains; the
# tasks of `srun -n 2` without an MPI plugin (no PMIX_RANK or PMI_RANK) stop
# at once with one line saying what to type.
slurm=$(mktemp -d)
env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE SLURM_NTASKS=2 SLURM_PROCID=0 timeout 60 "$lmcore" run "$here/dp_train.lua" \
  data="$data" out="$slurm/batch" steps=2 > "$slurm/batch.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  echo "FAIL slurm_batch_shell: exit $rc"
  sed 's/^/     | /' "$slurm/batch.log" | tail -5
  rm -rf "$slurm"
  exit 1
fi
echo "ok   slurm_batch_shell: one process in an sbatch -n 2 shell trains alone"
env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE -u PMIX_RANK -u PMI_RANK SLURM_STEP_NUM_TASKS=2 SLURM_NTASKS=2 SLURM_PROCID=0 \
  timeout 60 "$lmcore" run "$here/dp_train.lua" data="$data" out="$slurm/step" steps=2 > "$slurm/step.log" 2>&1
rc=$?
if [ $rc -ne 1 ] || [ "$(grep -c 'lmcore: error: ' "$slurm/step.log")" -ne 1 ] ||
   ! grep -qF "started by srun (SLURM_STEP_NUM_TASKS=2) without an MPI plugin, so MPI cannot join them: launch with \`srun --mpi=pmix ...\`" "$slurm/step.log" ||
   [ -e "$slurm/step/model.safetensors" ]; then
  echo "FAIL srun_without_pmi: exit $rc"
  sed 's/^/     | /' "$slurm/step.log" | tail -5
  rm -rf "$slurm"
  exit 1
fi
echo "ok   srun_without_pmi: $(grep 'lmcore: error' "$slurm/step.log" | cut -c1-150)"
rm -rf "$slurm"

. "$here/mpi_env.sh"
require_mpi "$lmcore"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect NAME TEXT... -- ARGS: the run must fail (not time out) within 60 s
# and its output must hold every TEXT.
expect() {
  local name=$1; shift
  local texts=()
  while [ "$1" != "--" ]; do texts+=("$1"); shift; done
  shift
  local start=$SECONDS
  timeout 60 mpirun --allow-run-as-root --oversubscribe -np 2 "$lmcore" run "$here/dp_train.lua" data="$data" \
    out="$tmp/$name" batch=4 steps=8 "$@" > "$tmp/$name.log" 2>&1
  local rc=$? took=$((SECONDS - start))
  local ok=1
  if [ $rc -eq 0 ]; then echo "FAIL $name: exit status 0"; ok=0; fi
  # (mpirun itself exits 137 when a rank was killed: the time tells a hang)
  if [ $rc -eq 124 ] || [ $took -ge 60 ]; then echo "FAIL $name: still running after 60 s (a hang)"; ok=0; fi
  for text in "${texts[@]}"; do
    grep -qF -- "$text" "$tmp/$name.log" || { echo "FAIL $name: no '$text' in the output"; ok=0; }
  done
  if [ $ok = 1 ]; then echo "ok   $name: exit $rc after ${took} s"
  else sed 's/^/     | /' "$tmp/$name.log" | head -40; failures=$((failures + 1)); fi
}
# single_error_line NAME: exactly one "lmcore: error:" line (rank 0's).
single_error_line() {
  local n
  n=$(grep -c 'lmcore: error: ' "$tmp/$1.log")
  if [ "$n" -ne 1 ]; then echo "FAIL $1: $n 'lmcore: error:' lines, expected 1"; failures=$((failures + 1)); fi
}

# One rank fails, the other waits in a collective: it must be stopped.
expect callback_rank1 "lmcore (rank 1 of 2): error:" "injected failure on rank 1" -- fail_rank=1 fail_mode=callback
expect callback_rank0 "lmcore: error: rank 0 of 2:" "injected failure on rank 0" -- fail_rank=0 fail_mode=callback
expect killed_rank1 "rank 1" "signal 9" -- fail_rank=1 fail_mode=kill
expect bad_input_rank1 "lmcore (rank 1 of 2): error:" "no-such-data" -- fail_rank=1 fail_mode=bad_input
# Bad settings: every rank sees them; rank 0 says so, once.
expect disagree "lmcore: error: rank 0 of 2:" "ranks disagree on the run: rank 1's training settings" -- \
  fail_rank=1 fail_mode=disagree
single_error_line disagree
expect unknown_communicator "unknown communicator plugin 'nope'" -- communicator=nope
single_error_line unknown_communicator
expect zero_stage "zero_stage must be 0" "got 2" -- zero_stage=2
single_error_line zero_stage
expect single_under_mpirun "communicator 'single' has 1 rank but the launcher started 2 processes" -- communicator=single
single_error_line single_under_mpirun

[ $failures -eq 0 ] && echo PASS || { echo "$failures case(s) failed"; exit 1; }

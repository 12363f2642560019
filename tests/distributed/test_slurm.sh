#!/usr/bin/env bash
# Launching with Slurm (docs/distributed.md), where a Slurm cluster answers
# (`sinfo`); skipped (exit 77) elsewhere, CI included.  On one node:
#   1. `srun --mpi=pmix -n 2` trains to the same model.safetensors bytes and
#      the same per-step weight hashes as `mpirun -np 2`;
#   2. `srun --mpi=none -n 2` stops every task at once with the line that
#      says to add --mpi=pmix, and writes no model;
#   3. a plain `lmcore run` inside `sbatch -n 2` is one process and trains.
#   test_slurm.sh LMCORE COMPARE_WEIGHTS SOURCE_DIR DATA_DIR
set -uo pipefail
lmcore=$1 here=$3 data=$4
if ! command -v srun > /dev/null || ! timeout 10 sinfo -h -o %a 2> /dev/null | grep -q up; then
  echo "SKIP: no Slurm cluster answers here (sinfo): this test runs where srun can start 2 tasks"
  exit 77
fi
. "$here/mpi_env.sh"
require_mpi "$lmcore"
if ! srun --mpi=list 2>&1 | grep -q pmix; then
  echo "SKIP: this Slurm has no pmix plugin (srun --mpi=list)"
  exit 77
fi
tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $1"; sed 's/^/     | /' "$2" | tail -8; exit 1; }
train=("$lmcore" run "$here/dp_train.lua" data="$data" batch=4 steps=10)

timeout 300 srun --mpi=pmix -n 2 "${train[@]}" out="$tmp/srun" > "$tmp/srun.log" 2>&1 || fail "srun --mpi=pmix" "$tmp/srun.log"
timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 "${train[@]}" out="$tmp/mpirun" > "$tmp/mpirun.log" 2>&1 ||
  fail "mpirun" "$tmp/mpirun.log"
cmp -s "$tmp/srun/model.safetensors" "$tmp/mpirun/model.safetensors" || fail "srun and mpirun train different weights" /dev/null
cmp -s "$tmp/srun/hashes-rank1.txt" "$tmp/mpirun/hashes-rank1.txt" || fail "rank 1's hashes differ" /dev/null
echo "ok   srun_pmix: the same bytes as mpirun -np 2"

timeout 60 srun --mpi=none -n 2 "${train[@]}" out="$tmp/none" > "$tmp/none.log" 2>&1
rc=$?
{ [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -qF "without an MPI plugin, so MPI cannot join them" "$tmp/none.log" &&
  [ ! -e "$tmp/none/model.safetensors" ]; } || fail "srun_without_pmi: exit $rc" "$tmp/none.log"
echo "ok   srun_without_pmi: exit $rc, $(grep -m1 'lmcore: error' "$tmp/none.log" | cut -c1-120)"

cat > "$tmp/job.sh" << JOB
#!/usr/bin/env bash
${train[*]} out=$tmp/batch
JOB
chmod +x "$tmp/job.sh"
timeout 300 sbatch --wait -n 2 -o "$tmp/batch.log" "$tmp/job.sh" > /dev/null 2>&1 || fail "sbatch_one_process" "$tmp/batch.log"
grep -q "data parallel" "$tmp/batch.log" && fail "sbatch_one_process: ran data parallel" "$tmp/batch.log"
[ -s "$tmp/batch/model.safetensors" ] || fail "sbatch_one_process: no model" "$tmp/batch.log"
echo "ok   sbatch_one_process: trains alone in an allocation of 2 tasks"
echo PASS

#!/usr/bin/env bash
# run_under_mpirun.sh NP COMMAND...: COMMAND on NP ranks, or a skip (exit
# 77) with the reason when mpirun is not installed.
set -euo pipefail
np=$1
shift
if ! command -v mpirun > /dev/null; then
  echo "SKIP: mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev, then rebuild)"
  exit 77
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # Open MPI's allocations are not ours
exec timeout 300 mpirun --allow-run-as-root --oversubscribe -np "$np" "$@"

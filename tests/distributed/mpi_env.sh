# Sourced by the tests of this folder that launch ranks with mpirun:
#   . "$here/mpi_env.sh"; require_mpi "$lmcore"
# require_mpi LMCORE: skips the test (exit 77, saying what to install) when
# mpirun or this build's mpi communicator is missing, then sets what every
# run under mpirun needs here: Open MPI's allocations out of LeakSanitizer's
# report (they are not ours), root allowed (CI, containers), and more ranks
# than cores (a 2-core machine).
require_mpi() {
  if ! command -v mpirun > /dev/null; then
    echo "SKIP: mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev, then rebuild)"
    exit 77
  fi
  if ! "$1" plugins --kind communicator | grep -q '^communicator  *mpi '; then
    echo "SKIP: this build has no mpi communicator (CMake did not find MPI: install libopenmpi-dev and reconfigure)"
    exit 77
  fi
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
}

/* Joining the ranks that mpirun or srun started: what the communicators
 * bootstrapped by MPI ('mpi', and 'nccl', which carries NCCL's unique id
 * over MPI) share.  Built only when CMake found MPI. */
#ifndef LMPLUGIN_MPI_WORLD_H
#define LMPLUGIN_MPI_WORLD_H

#include <mpi.h>

#include <lmcore/status.h>

/* The error of an MPI call that returned `code`, as
 * "communicator 'PLUGIN': WHAT failed: MPI's message". */
lm_status mpi_world_failed(const char *plugin, const char *what, int code);

/* Initialises MPI once per process (MPI_Finalize then runs at a normal
 * exit) and gives this communicator its own duplicate of MPI_COMM_WORLD,
 * so that two trainers in one script do not mix their messages.  Errors
 * come back as codes, not as MPI's own abort. */
lm_status mpi_world_join(const char *plugin, MPI_Comm *comm, int *rank, int *size);

/* Frees a communicator from mpi_world_join, unless MPI has already been
 * finalized (a destroy after exit began). */
void mpi_world_leave(MPI_Comm *comm);

#endif

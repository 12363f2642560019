/* The process's place in a data-parallel run: what the launcher says
 * (mpirun, srun) before any library is loaded, and the one communicator
 * the process joins (docs/distributed.md).
 *
 * The communicator is process-wide: MPI can be initialised once per
 * process, so every trainer of a script shares the first one made, and it
 * lives until the process ends (MPI_Finalize at a normal exit; abort on a
 * failure, so that no other rank waits for this one forever). */
#ifndef LMCORE_DISTRIBUTED_H
#define LMCORE_DISTRIBUTED_H

#include <stdio.h>

#include "registry.h"

/* The launcher's world size and this process's rank in it, from
 * OMPI_COMM_WORLD_SIZE/RANK (Open MPI), PMI_SIZE/RANK (MPICH, Slurm's
 * PMI) or SLURM_STEP_NUM_TASKS/SLURM_PROCID (the tasks of an srun step);
 * 1 and 0 when not launched.  *variable
 * (may be NULL) names the variable the size came from ("" when none). */
LM_API int lm_launch_world_size(const char **variable);
LM_API int lm_launch_rank(void);

/* The process's communicator for a model on `model_device` ("cpu",
 * "cuda:0"): `name` is a communicator plugin, or "auto" (the default):
 * "mpi" for a CPU model and "nccl" for a GPU one when the launcher started
 * more than one process, none otherwise (out->plugin NULL: the trainer's
 * single-process path).  Made on the first call; later calls get the same
 * one, and refuse another name.  Refuses a communicator whose size is not
 * the launcher's. */
LM_API lm_status lm_distributed_join(const lm_registry *registry, const char *name, const char *model_device,
                                     lm_handle *out);
/* Rank and size of the joined communicator, else the launcher's. */
LM_API int lm_distributed_rank(void);
LM_API int lm_distributed_size(void);

/* Prints a failure as the CLI's one error line: "lmcore: error: MSG" on
 * rank 0 (naming the rank when there are several), "lmcore (rank R of N):
 * error: MSG" on the others, so that a failure every rank shares is read
 * once, on rank 0. */
LM_API void lm_distributed_print_error(FILE *out, const char *message);
/* With several ranks joined, ends them all with exit_code (the
 * communicator's abort): the others may be waiting for this rank in a
 * collective.  Launched as several processes, a rank other than 0 first
 * waits two seconds (communicator or not: the launcher stops the job when
 * it exits), so that rank 0's line for a failure they share is printed
 * before the processes stop.  Returns at once in a single process, and
 * when there is no communicator to abort. */
LM_API void lm_distributed_abort(int exit_code);

#endif

/* Joining the ranks of mpirun / srun (mpi_world.h). */
#include <stdio.h>
#include <stdlib.h>

#include "mpi_world.h"

#include <lmcore/lmcore.h>

lm_status mpi_world_failed(const char *plugin, const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "error %d", code);
    return lm_error_set(LM_ERR_IO, "communicator '%s': %s failed: %s", plugin, what, text);
}

static void finalize_at_exit(void) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

lm_status mpi_world_join(const char *plugin, MPI_Comm *comm, int *rank, int *size) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
        int provided = 0;
        int code = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (code != MPI_SUCCESS) return mpi_world_failed(plugin, "MPI_Init_thread", code);
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        atexit(finalize_at_exit);
    }
    int code = MPI_Comm_dup(MPI_COMM_WORLD, comm);
    if (code != MPI_SUCCESS) return mpi_world_failed(plugin, "MPI_Comm_dup", code);
    MPI_Comm_set_errhandler(*comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(*comm, rank);
    MPI_Comm_size(*comm, size);
    return LM_OK;
}

void mpi_world_leave(MPI_Comm *comm) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(comm);
}

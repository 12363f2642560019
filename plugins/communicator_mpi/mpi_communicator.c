/* Communicator 'mpi': the ranks of mpirun / srun, collectives over host
 * buffers with MPI (a CPU model's parameters and gradients are host
 * memory).
 *
 * Each instance joins the ranks through plugins/common/mpi (MPI
 * initialised once, a duplicate of MPI_COMM_WORLD of its own).
 * A rank that fails calls abort() (MPI_Abort): it ends every rank, where
 * an exit alone could leave the others waiting in a collective. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include <lmcore/lmcore.h>

#include "mpi_world.h"

typedef struct mpi_comm {
    MPI_Comm comm;
    int rank, size;
} mpi_comm;

/* Collectives take an int count: larger buffers go in chunks of this many
 * elements (every rank cuts them the same way). */
#define CHUNK_ELEMENTS ((size_t)1 << 30)

static lm_status mpi_create(void **self, lm_config *cfg) {
    (void)cfg;
    mpi_comm *m = calloc(1, sizeof *m);
    if (!m) return lm_error_set(LM_ERR_NOMEM, "out of memory creating communicator 'mpi'");
    lm_status status = mpi_world_join("mpi", &m->comm, &m->rank, &m->size);
    if (status != LM_OK) {
        free(m);
        return status;
    }
    *self = m;
    return LM_OK;
}

static void mpi_destroy(void *self) {
    mpi_comm *m = self;
    mpi_world_leave(&m->comm);
    free(m);
}

static int32_t mpi_rank(void *self) { return ((mpi_comm *)self)->rank; }
static int32_t mpi_size(void *self) { return ((mpi_comm *)self)->size; }
static int32_t mpi_memory(void *self) { (void)self; return LM_COMM_HOST_MEMORY; }

static lm_status mpi_all_reduce(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op) {
    mpi_comm *m = self;
    if (dtype != LM_F32 && dtype != LM_F64)
        return lm_error_set(LM_ERR_UNSUPPORTED, "communicator 'mpi': all_reduce takes f32 or f64 buffers");
    if (op != LM_REDUCE_SUM && op != LM_REDUCE_AVG)
        return lm_error_set(LM_ERR_INVALID, "communicator 'mpi': unknown reduction %d", (int)op);
    if (m->size == 1) return LM_OK; /* nothing to add: the buffer may even be a GPU's */
    const size_t elem = dtype == LM_F32 ? sizeof(float) : sizeof(double);
    MPI_Datatype type = dtype == LM_F32 ? MPI_FLOAT : MPI_DOUBLE;
    for (size_t first = 0; first < count; first += CHUNK_ELEMENTS) {
        size_t n = count - first < CHUNK_ELEMENTS ? count - first : CHUNK_ELEMENTS;
        int code = MPI_Allreduce(MPI_IN_PLACE, (char *)data + first * elem, (int)n, type, MPI_SUM, m->comm);
        if (code != MPI_SUCCESS) return mpi_world_failed("mpi", "MPI_Allreduce", code);
    }
    if (op == LM_REDUCE_AVG) {
        /* Divided after the sum, as DDP divides its all-reduced buckets. */
        if (dtype == LM_F32) {
            float *f = data, n = (float)m->size;
            for (size_t i = 0; i < count; i++) f[i] /= n;
        } else {
            double *d = data, n = (double)m->size;
            for (size_t i = 0; i < count; i++) d[i] /= n;
        }
    }
    return LM_OK;
}

static lm_status mpi_broadcast(void *self, void *data, size_t bytes, int32_t root) {
    mpi_comm *m = self;
    if (root < 0 || root >= m->size)
        return lm_error_set(LM_ERR_INVALID, "communicator 'mpi': broadcast from rank %d of %d", root, m->size);
    if (m->size == 1) return LM_OK;
    for (size_t first = 0; first < bytes; first += CHUNK_ELEMENTS) {
        size_t n = bytes - first < CHUNK_ELEMENTS ? bytes - first : CHUNK_ELEMENTS;
        int code = MPI_Bcast((char *)data + first, (int)n, MPI_BYTE, root, m->comm);
        if (code != MPI_SUCCESS) return mpi_world_failed("mpi", "MPI_Bcast", code);
    }
    return LM_OK;
}

static lm_status mpi_all_gather(void *self, const void *send, void *recv, size_t bytes_per_rank) {
    mpi_comm *m = self;
    if (bytes_per_rank > (size_t)INT_MAX)
        return lm_error_set(LM_ERR_UNSUPPORTED, "communicator 'mpi': all_gather of %zu bytes per rank (at most %d)",
                            bytes_per_rank, INT_MAX);
    int code = MPI_Allgather(send, (int)bytes_per_rank, MPI_BYTE, recv, (int)bytes_per_rank, MPI_BYTE, m->comm);
    if (code != MPI_SUCCESS) return mpi_world_failed("mpi", "MPI_Allgather", code);
    return LM_OK;
}

static lm_status mpi_barrier(void *self) {
    int code = MPI_Barrier(((mpi_comm *)self)->comm);
    if (code != MPI_SUCCESS) return mpi_world_failed("mpi", "MPI_Barrier", code);
    return LM_OK;
}

static void mpi_abort(void *self, int exit_code) {
    mpi_comm *m = self;
    if (m->size > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
}

static const lm_communicator_vtable mpi_vtable = {
    .create = mpi_create,
    .destroy = mpi_destroy,
    .rank = mpi_rank,
    .size = mpi_size,
    .memory = mpi_memory,
    .all_reduce = mpi_all_reduce,
    .broadcast = mpi_broadcast,
    .all_gather = mpi_all_gather,
    .barrier = mpi_barrier,
    .abort = mpi_abort,
};

LM_PLUGIN_DEFINE(LM_KIND_COMMUNICATOR, "mpi", "1.0.0", "The ranks of mpirun/srun over MPI, host buffers",
                 lm_communicator_vtable, mpi_vtable)

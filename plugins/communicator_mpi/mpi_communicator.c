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

static lm_status check_reduction(const char *what, lm_dtype dtype, lm_reduce_op op) {
    if (dtype != LM_F32 && dtype != LM_F64)
        return lm_error_set(LM_ERR_UNSUPPORTED, "communicator 'mpi': %s takes f32 or f64 buffers", what);
    if (op != LM_REDUCE_SUM && op != LM_REDUCE_AVG)
        return lm_error_set(LM_ERR_INVALID, "communicator 'mpi': unknown reduction %d", (int)op);
    return LM_OK;
}

/* Divided after the sum, as DDP divides its all-reduced buckets: the same
 * arithmetic for the blocking and the non-blocking all-reduce. */
static void divide(void *data, size_t count, lm_dtype dtype, int size) {
    if (dtype == LM_F32) {
        float *f = data, n = (float)size;
        for (size_t i = 0; i < count; i++) f[i] /= n;
    } else {
        double *d = data, n = (double)size;
        for (size_t i = 0; i < count; i++) d[i] /= n;
    }
}

static lm_status mpi_all_reduce(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op) {
    mpi_comm *m = self;
    LM_TRY(check_reduction("all_reduce", dtype, op));
    if (m->size == 1) return LM_OK; /* nothing to add: the buffer may even be a GPU's */
    const size_t elem = dtype == LM_F32 ? sizeof(float) : sizeof(double);
    MPI_Datatype type = dtype == LM_F32 ? MPI_FLOAT : MPI_DOUBLE;
    for (size_t first = 0; first < count; first += CHUNK_ELEMENTS) {
        size_t n = count - first < CHUNK_ELEMENTS ? count - first : CHUNK_ELEMENTS;
        int code = MPI_Allreduce(MPI_IN_PLACE, (char *)data + first * elem, (int)n, type, MPI_SUM, m->comm);
        if (code != MPI_SUCCESS) return mpi_world_failed("mpi", "MPI_Allreduce", code);
    }
    if (op == LM_REDUCE_AVG) divide(data, count, dtype, m->size);
    return LM_OK;
}

/* ---- non-blocking: MPI_Iallreduce per chunk, MPI_Wait each ------------------------- */

struct lm_comm_request {
    void *data;
    size_t count;
    lm_dtype dtype;
    lm_reduce_op op;
    int n_chunks;
    MPI_Request chunks[]; /* MPI_REQUEST_NULL once complete (MPI_Test/MPI_Wait set it) */
};

/* The host buffer is final when it is started (stream is NULL on the CPU). */
static lm_status mpi_all_reduce_start(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op,
                                      void *stream, lm_comm_request **request) {
    mpi_comm *m = self;
    (void)stream;
    *request = NULL;
    LM_TRY(check_reduction("all_reduce_start", dtype, op));
    const size_t n_chunks = m->size == 1 ? 0 : (count + CHUNK_ELEMENTS - 1) / CHUNK_ELEMENTS;
    lm_comm_request *r = calloc(1, sizeof *r + n_chunks * sizeof r->chunks[0]);
    if (!r) return lm_error_set(LM_ERR_NOMEM, "out of memory starting an all-reduce (communicator 'mpi')");
    r->data = data;
    r->count = count;
    r->dtype = dtype;
    r->op = op;
    const size_t elem = dtype == LM_F32 ? sizeof(float) : sizeof(double);
    MPI_Datatype type = dtype == LM_F32 ? MPI_FLOAT : MPI_DOUBLE;
    for (size_t c = 0; c < n_chunks; c++) {
        const size_t first = c * CHUNK_ELEMENTS, n = count - first < CHUNK_ELEMENTS ? count - first : CHUNK_ELEMENTS;
        int code = MPI_Iallreduce(MPI_IN_PLACE, (char *)data + first * elem, (int)n, type, MPI_SUM, m->comm,
                                  &r->chunks[c]);
        if (code != MPI_SUCCESS) {
            /* The chunks started before are left to MPI_Abort, which a failing rank calls. */
            free(r);
            return mpi_world_failed("mpi", "MPI_Iallreduce", code);
        }
        r->n_chunks++;
    }
    *request = r;
    return LM_OK;
}

/* Chunk by chunk with a status of our own: MPICH's header declares the
 * statuses array's size, and MPI_STATUSES_IGNORE then trips GCC's checks. */
static lm_status mpi_test(void *self, lm_comm_request *r, int *done) {
    (void)self;
    *done = 1;
    for (int c = 0; c < r->n_chunks; c++) {
        MPI_Status status;
        int flag = 0;
        int code = MPI_Test(&r->chunks[c], &flag, &status);
        if (code != MPI_SUCCESS) return mpi_world_failed("mpi", "MPI_Test", code);
        if (!flag) *done = 0;
    }
    return LM_OK;
}

static lm_status mpi_wait(void *self, lm_comm_request *r) {
    mpi_comm *m = self;
    int code = MPI_SUCCESS;
    for (int c = 0; c < r->n_chunks && code == MPI_SUCCESS; c++) {
        MPI_Status status;
        code = MPI_Wait(&r->chunks[c], &status);
    }
    if (code == MPI_SUCCESS && r->op == LM_REDUCE_AVG && m->size > 1) divide(r->data, r->count, r->dtype, m->size);
    free(r);
    if (code != MPI_SUCCESS) return mpi_world_failed("mpi", "MPI_Wait", code);
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
    .all_reduce_start = mpi_all_reduce_start,
    .wait = mpi_wait,
    .test = mpi_test,
};

LM_PLUGIN_DEFINE(LM_KIND_COMMUNICATOR, "mpi", "1.0.0", "The ranks of mpirun/srun over MPI, host buffers",
                 lm_communicator_vtable, mpi_vtable)

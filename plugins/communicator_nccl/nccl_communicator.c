/* Communicator 'nccl': collectives between GPUs with NCCL, one rank per
 * GPU, started by mpirun or srun.  MPI starts the processes and carries
 * NCCL's unique id from rank 0 to the others (ncclCommInitRank); NCCL then
 * reduces the model's device memory directly (NVLink, InfiniBand).
 *
 * Ordering: the trainer waits for the model's queued work before a
 * blocking collective (the model's stream is its own); each runs on this
 * communicator's stream and is waited for before returning, so the buffer
 * is ready for the next op whatever stream it runs on.  Host pointers
 * (scalars the trainer reduces: losses, counts) are staged through a small
 * device buffer.
 *
 * The non-blocking all-reduce (all_reduce_start / wait, ABI 2.1: gradient
 * buckets reduced during backward) never waits on the host: start records
 * an event on the model's stream (the bucket's gradients are final when the
 * work queued there so far completes), makes this communicator's stream
 * wait for it and queues ncclAllReduce there, so the reduction runs beside
 * the rest of backward; wait makes the model's stream wait for the
 * reduction's event, so the clipping and the update queued after it read
 * the averaged gradients. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <lmcore/lmcore.h>

#include "mpi_world.h"

typedef struct nccl_comm {
    MPI_Comm mpi;
    ncclComm_t comm;
    cudaStream_t stream;
    int rank, size, device;
    void *staging; /* device memory for host buffers */
    size_t staging_bytes;
} nccl_comm;

static lm_status cuda_failed(const char *what, cudaError_t e) {
    return lm_error_set(LM_ERR_DEVICE, "communicator 'nccl': %s failed: %s", what, cudaGetErrorString(e));
}

static lm_status nccl_failed(const char *what, ncclResult_t r) {
    return lm_error_set(LM_ERR_DEVICE, "communicator 'nccl': %s failed: %s", what, ncclGetErrorString(r));
}

/* The rank's index among the ranks of its node: its GPU by default. */
static lm_status local_rank(MPI_Comm comm, int *out) {
    MPI_Comm node;
    int code = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    if (code != MPI_SUCCESS) return mpi_world_failed("nccl", "MPI_Comm_split_type", code);
    MPI_Comm_rank(node, out);
    MPI_Comm_free(&node);
    return LM_OK;
}

static void nccl_destroy(void *self);

static lm_status nccl_create(void **self, lm_config *cfg) {
    int64_t device = lm_config_int(cfg, "device", -1);
    LM_TRY(lm_config_require_range(cfg, "device", (double)device, -1, 1024));
    nccl_comm *n = calloc(1, sizeof *n);
    if (!n) return lm_error_set(LM_ERR_NOMEM, "out of memory creating communicator 'nccl'");
    lm_status joined = mpi_world_join("nccl", &n->mpi, &n->rank, &n->size);
    if (joined != LM_OK) {
        free(n);
        return joined;
    }
    *self = n; /* destroy() releases what is made from here on */
    int devices = 0;
    cudaError_t e = cudaGetDeviceCount(&devices);
    if (e != cudaSuccess) return cuda_failed("cudaGetDeviceCount", e);
    if (devices < 1) return lm_error_set(LM_ERR_UNSUPPORTED, "communicator 'nccl': no CUDA device on this node");
    if (device < 0) {
        int local = 0;
        LM_TRY(local_rank(n->mpi, &local));
        device = local % devices;
    }
    if (device >= devices)
        return lm_error_set(LM_ERR_INVALID, "communicator 'nccl': device %lld, but this node has %d CUDA devices",
                            (long long)device, devices);
    n->device = (int)device;
    if ((e = cudaSetDevice(n->device)) != cudaSuccess) return cuda_failed("cudaSetDevice", e);
    if ((e = cudaStreamCreateWithFlags(&n->stream, cudaStreamNonBlocking)) != cudaSuccess)
        return cuda_failed("cudaStreamCreate", e);
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    ncclResult_t r = ncclSuccess;
    if (n->rank == 0 && (r = ncclGetUniqueId(&id)) != ncclSuccess) return nccl_failed("ncclGetUniqueId", r);
    int code = MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, n->mpi);
    if (code != MPI_SUCCESS)
        return mpi_world_failed("nccl", "MPI_Bcast of the NCCL unique id", code);
    if ((r = ncclCommInitRank(&n->comm, n->size, id, n->rank)) != ncclSuccess) return nccl_failed("ncclCommInitRank", r);
    return LM_OK;
}

static void nccl_destroy(void *self) {
    nccl_comm *n = self;
    if (n->comm) ncclCommDestroy(n->comm);
    if (n->staging) cudaFree(n->staging);
    if (n->stream) cudaStreamDestroy(n->stream);
    mpi_world_leave(&n->mpi);
    free(n);
}

static int32_t nccl_rank(void *self) { return ((nccl_comm *)self)->rank; }
static int32_t nccl_size(void *self) { return ((nccl_comm *)self)->size; }
static int32_t nccl_memory(void *self) { (void)self; return LM_COMM_DEVICE_MEMORY; }

static int is_device_pointer(const void *p) {
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError(); /* a plain host pointer on older runtimes */
        return 0;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

/* Device memory for `bytes` of a host buffer. */
static lm_status staging_for(nccl_comm *n, size_t bytes) {
    if (n->staging_bytes >= bytes) return LM_OK;
    if (n->staging) cudaFree(n->staging);
    n->staging = NULL;
    n->staging_bytes = 0;
    cudaError_t e = cudaMalloc(&n->staging, bytes);
    if (e != cudaSuccess) return cuda_failed("cudaMalloc of the staging buffer", e);
    n->staging_bytes = bytes;
    return LM_OK;
}

static lm_status finish(nccl_comm *n, const char *what, ncclResult_t r) {
    if (r != ncclSuccess) return nccl_failed(what, r);
    cudaError_t e = cudaStreamSynchronize(n->stream);
    if (e != cudaSuccess) return cuda_failed(what, e);
    return LM_OK;
}

/* Runs `what` on a device view of `data` (staged when it is host memory). */
static lm_status stage_in(nccl_comm *n, void *data, size_t bytes, void **device_view) {
    if (is_device_pointer(data)) {
        *device_view = data;
        return LM_OK;
    }
    LM_TRY(staging_for(n, bytes));
    cudaError_t e = cudaMemcpyAsync(n->staging, data, bytes, cudaMemcpyHostToDevice, n->stream);
    if (e != cudaSuccess) return cuda_failed("staging a host buffer", e);
    *device_view = n->staging;
    return LM_OK;
}

static lm_status stage_out(nccl_comm *n, void *data, size_t bytes, void *device_view) {
    if (device_view == data) return LM_OK;
    cudaError_t e = cudaMemcpyAsync(data, device_view, bytes, cudaMemcpyDeviceToHost, n->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(n->stream);
    if (e != cudaSuccess) return cuda_failed("copying a staged buffer back", e);
    return LM_OK;
}

static lm_status nccl_all_reduce(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op) {
    nccl_comm *n = self;
    if (dtype != LM_F32 && dtype != LM_F64)
        return lm_error_set(LM_ERR_UNSUPPORTED, "communicator 'nccl': all_reduce takes f32 or f64 buffers");
    if (op != LM_REDUCE_SUM && op != LM_REDUCE_AVG)
        return lm_error_set(LM_ERR_INVALID, "communicator 'nccl': unknown reduction %d", (int)op);
    const size_t bytes = count * (dtype == LM_F32 ? sizeof(float) : sizeof(double));
    void *view = NULL;
    LM_TRY(stage_in(n, data, bytes, &view));
    ncclResult_t r = ncclAllReduce(view, view, count, dtype == LM_F32 ? ncclFloat32 : ncclFloat64,
                                   op == LM_REDUCE_SUM ? ncclSum : ncclAvg, n->comm, n->stream);
    LM_TRY(finish(n, "ncclAllReduce", r));
    return stage_out(n, data, bytes, view);
}

/* ---- non-blocking: events between the model's stream and this one ----------------- */

struct lm_comm_request {
    cudaStream_t consumer; /* the model's stream: orders what follows after the reduction */
    cudaEvent_t ready;     /* recorded on the model's stream: the data is final */
    cudaEvent_t done;      /* recorded on this communicator's stream: the reduction is over */
};

static void free_request(lm_comm_request *r) {
    /* Destroying a recorded event is safe: CUDA releases it once it completes. */
    if (r->ready) cudaEventDestroy(r->ready);
    if (r->done) cudaEventDestroy(r->done);
    free(r);
}

static lm_status nccl_all_reduce_start(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op,
                                       void *stream, lm_comm_request **request) {
    nccl_comm *n = self;
    *request = NULL;
    if (dtype != LM_F32 && dtype != LM_F64)
        return lm_error_set(LM_ERR_UNSUPPORTED, "communicator 'nccl': all_reduce_start takes f32 or f64 buffers");
    if (op != LM_REDUCE_SUM && op != LM_REDUCE_AVG)
        return lm_error_set(LM_ERR_INVALID, "communicator 'nccl': unknown reduction %d", (int)op);
    lm_comm_request *r = calloc(1, sizeof *r);
    if (!r) return lm_error_set(LM_ERR_NOMEM, "out of memory starting an all-reduce (communicator 'nccl')");
    r->consumer = (cudaStream_t)stream;
    if (!is_device_pointer(data)) {
        /* Host memory is final now: the blocking path, complete on return. */
        lm_status status = nccl_all_reduce(self, data, count, dtype, op);
        if (status != LM_OK) {
            free(r);
            return status;
        }
        *request = r;
        return LM_OK;
    }
    cudaError_t e = cudaEventCreateWithFlags(&r->ready, cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&r->done, cudaEventDisableTiming);
    if (e == cudaSuccess && stream) e = cudaEventRecord(r->ready, r->consumer);
    if (e == cudaSuccess && stream) e = cudaStreamWaitEvent(n->stream, r->ready, 0);
    if (e != cudaSuccess) {
        free_request(r);
        return cuda_failed("ordering an all-reduce after the model's stream", e);
    }
    ncclResult_t res = ncclAllReduce(data, data, count, dtype == LM_F32 ? ncclFloat32 : ncclFloat64,
                                     op == LM_REDUCE_SUM ? ncclSum : ncclAvg, n->comm, n->stream);
    if (res != ncclSuccess) {
        free_request(r);
        return nccl_failed("ncclAllReduce", res);
    }
    if ((e = cudaEventRecord(r->done, n->stream)) != cudaSuccess) {
        free_request(r);
        return cuda_failed("cudaEventRecord after ncclAllReduce", e);
    }
    *request = r;
    return LM_OK;
}

static lm_status nccl_test(void *self, lm_comm_request *r, int *done) {
    (void)self;
    *done = 1;
    if (!r->done) return LM_OK;
    cudaError_t e = cudaEventQuery(r->done);
    if (e == cudaErrorNotReady) {
        *done = 0;
        return LM_OK;
    }
    return e == cudaSuccess ? LM_OK : cuda_failed("an all-reduce in flight", e);
}

/* Stream-ordered: the model's stream waits for the reduction, the host does
 * not (without a stream, the host waits). */
static lm_status nccl_wait(void *self, lm_comm_request *r) {
    (void)self;
    cudaError_t e = cudaSuccess;
    if (r->done) e = r->consumer ? cudaStreamWaitEvent(r->consumer, r->done, 0) : cudaEventSynchronize(r->done);
    free_request(r);
    return e == cudaSuccess ? LM_OK : cuda_failed("waiting for an all-reduce", e);
}

static lm_status nccl_broadcast(void *self, void *data, size_t bytes, int32_t root) {
    nccl_comm *n = self;
    if (root < 0 || root >= n->size)
        return lm_error_set(LM_ERR_INVALID, "communicator 'nccl': broadcast from rank %d of %d", root, n->size);
    void *view = NULL;
    LM_TRY(stage_in(n, data, bytes, &view));
    LM_TRY(finish(n, "ncclBroadcast", ncclBroadcast(view, view, bytes, ncclChar, root, n->comm, n->stream)));
    return stage_out(n, data, bytes, view);
}

static lm_status nccl_all_gather(void *self, const void *send, void *recv, size_t bytes_per_rank) {
    nccl_comm *n = self;
    if (is_device_pointer(send) && is_device_pointer(recv))
        return finish(n, "ncclAllGather",
                      ncclAllGather(send, recv, bytes_per_rank, ncclChar, n->comm, n->stream));
    /* Host buffers (the trainer's start-up hashes): MPI carries them. */
    int code = MPI_Allgather(send, (int)bytes_per_rank, MPI_BYTE, recv, (int)bytes_per_rank, MPI_BYTE, n->mpi);
    if (code != MPI_SUCCESS) return mpi_world_failed("nccl", "MPI_Allgather", code);
    return LM_OK;
}

static lm_status nccl_barrier(void *self) {
    int code = MPI_Barrier(((nccl_comm *)self)->mpi);
    if (code != MPI_SUCCESS) return mpi_world_failed("nccl", "MPI_Barrier", code);
    return LM_OK;
}

static void nccl_abort(void *self, int exit_code) {
    nccl_comm *n = self;
    if (n->size > 1) {
        if (n->comm) ncclCommAbort(n->comm);
        MPI_Abort(MPI_COMM_WORLD, exit_code);
    }
}

static const lm_communicator_vtable nccl_vtable = {
    .create = nccl_create,
    .destroy = nccl_destroy,
    .rank = nccl_rank,
    .size = nccl_size,
    .memory = nccl_memory,
    .all_reduce = nccl_all_reduce,
    .broadcast = nccl_broadcast,
    .all_gather = nccl_all_gather,
    .barrier = nccl_barrier,
    .abort = nccl_abort,
    .all_reduce_start = nccl_all_reduce_start,
    .wait = nccl_wait,
    .test = nccl_test,
};

LM_PLUGIN_DEFINE(LM_KIND_COMMUNICATOR, "nccl", "1.0.0", "GPUs over NCCL (one rank per GPU), bootstrapped through MPI",
                 lm_communicator_vtable, nccl_vtable)

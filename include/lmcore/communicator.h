/* lmcore — the communicator plugin interface (kind LM_KIND_COMMUNICATOR).
 *
 * A communicator joins the processes of a data-parallel run (one per
 * device, started by mpirun or srun): collectives over the same buffer on
 * every rank, as torch.distributed's process group does.  The core never
 * links MPI or NCCL: the engines live in plugins (`single`, `mpi`, `nccl`).
 *
 * Every collective is called by every rank, in the same order, with the
 * same count: a rank that skips one leaves the others waiting, so a rank
 * that fails calls abort() instead of returning quietly.
 *
 * Memory: `memory()` says which buffers the collectives take.  A host
 * communicator (mpi, single) takes host pointers; a device communicator
 * (nccl) takes the model's device memory, and host pointers for small
 * buffers (it stages them).  The trainer refuses a model whose memory the
 * communicator cannot reach, naming the one to use. */
#ifndef LMCORE_COMMUNICATOR_H
#define LMCORE_COMMUNICATOR_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lm_reduce_op {
    LM_REDUCE_SUM = 0,
    LM_REDUCE_AVG = 1 /* the sum divided by size(): PyTorch DDP's gradient average */
} lm_reduce_op;

typedef enum lm_comm_memory {
    LM_COMM_HOST_MEMORY = 0,   /* buffers are host memory (a CPU model's device memory is) */
    LM_COMM_DEVICE_MEMORY = 1  /* buffers are CUDA device memory; host pointers are staged */
} lm_comm_memory;

/* A collective in flight (all_reduce_start), the plugin's own. */
typedef struct lm_comm_request lm_comm_request;

typedef struct lm_communicator_vtable {
    /* Required.  Joins the run: the first instance in a process starts the
     * engine (MPI_Init), later ones share it.  cfg: the plugin's settings
     * (nccl: `device`, the CUDA device index, default the local rank). */
    lm_status (*create)(void **self, lm_config *cfg);
    /* Leaves the run's communicator; the engine itself ends with the
     * process (MPI_Finalize at a normal exit, or abort()). */
    void (*destroy)(void *self);
    int32_t (*rank)(void *self); /* 0 .. size - 1 */
    int32_t (*size)(void *self); /* the number of ranks */
    int32_t (*memory)(void *self); /* lm_comm_memory */
    /* In place over `count` elements of `dtype` (LM_F32 always; LM_F64 on
     * every shipped plugin): every rank ends with the same bits. */
    lm_status (*all_reduce)(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op);
    /* `bytes` bytes from rank `root` into `data` on every other rank. */
    lm_status (*broadcast)(void *self, void *data, size_t bytes, int32_t root);
    /* Rank r's `bytes_per_rank` bytes of `send` land at recv + r * bytes_per_rank
     * on every rank (recv holds size() * bytes_per_rank bytes). */
    lm_status (*all_gather)(void *self, const void *send, void *recv, size_t bytes_per_rank);
    lm_status (*barrier)(void *self);
    /* Ends every rank's process with exit_code, for a failure on this one
     * (MPI_Abort): the others may be waiting in a collective this rank will
     * never reach.  Does not return when size() > 1. */
    void (*abort)(void *self, int exit_code);

    /* Optional (ABI 2.1), together: a non-blocking all_reduce, so that the
     * gradients of a bucket are reduced while backward computes the next
     * ones.  all_reduce_start takes the arguments of all_reduce plus
     * `stream`: the CUDA stream (lm_device.stream) on which the work that
     * writes `data` was queued, NULL when `data` is final already (host
     * memory).  A device communicator orders the reduction after the work
     * queued there so far (an event), and wait() orders the work queued
     * there afterwards after the reduction: neither waits on the host.  A
     * host communicator starts it (MPI_Iallreduce) and wait() returns once
     * `data` holds the result.  Every rank starts the same requests in the
     * same order.  wait() also frees the request, whatever it returns; every
     * started request is waited for once.  Without these slots the caller
     * uses all_reduce after backward. */
    lm_status (*all_reduce_start)(void *self, void *data, size_t count, lm_dtype dtype, lm_reduce_op op, void *stream,
                                  lm_comm_request **request);
    lm_status (*wait)(void *self, lm_comm_request *request);
    /* Optional: lets the engine make progress on a started request (MPI
     * progresses a non-blocking collective only inside MPI calls unless it
     * has a progress thread); *done = 1 once it has completed (wait() is
     * still called).  Cheap: the trainer calls it as backward goes. */
    lm_status (*test)(void *self, lm_comm_request *request, int *done);
} lm_communicator_vtable;

#ifdef __cplusplus
}
#endif
#endif

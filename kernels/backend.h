/* lmcore kernels — a device backend behind one table of operations.
 *
 * Architecture plugins write forward and backward once, as calls through
 * lm_backend_ops.  The ops are listed once, in backend_ops.def, and their
 * members here are generated from it: each takes the backend, then the
 * list's parameters.  The CPU backend (kernels/cpu/backend_cpu.c) forwards
 * them to the lm_cpu_* references (kernels.h), the CUDA backend
 * (kernels/cuda/backend_cuda.cu) to the CUDA twins (kernels_cuda.h) on the
 * backend's stream with the backend's cuBLAS handle and workspace; both
 * forwarders are generated from the list too, and every backend's table
 * from backend_table.def.  Pointers passed to ops are device pointers of
 * that backend (host pointers for the CPU backend).
 *
 * Ops do not return a status (so that a CUDA graph can capture them); a
 * failure inside one (a launch error, a cuBLAS error) is kept by the backend
 * and returned by the next sync() or check(), with what failed named.
 *
 * Nothing an op needs changes from step to step as an argument: dropout
 * reads its key (seed and micro-batch counter) from the step state in device
 * memory (lmcore/step.h), the loss is written there, and the step_* ops
 * update it; only the host reads (download, sum_to_host,
 * sum_squares_to_host), sync and the profiler's timer_elapsed_ms wait for
 * the device.  Every backend
 * also presents itself as the public lm_device (lmcore/device.h) that a
 * model hands to the core and to optimizer plugins (device.c). */
#ifndef LM_BACKEND_H
#define LM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "lmcore/device.h"
#include "lmcore/rng.h"
#include "lmcore/status.h"
#include "lmcore/step.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_backend lm_backend; /* per-model device context */
/* A numbered set of time marks recorded in the order of queued work (on a
 * GPU: CUDA events on the backend's stream), for the op profiler. */
typedef struct lm_backend_timer lm_backend_timer;

typedef enum lm_precision { LM_PRECISION_FP32 = 0, LM_PRECISION_TF32 = 1, LM_PRECISION_BF16 = 2 } lm_precision;

/* A member added here (besides the ops and the optional graph members) is
 * added to backend_table.def too. */
typedef struct lm_backend_ops {
    /* ---- lifetime and memory ---- */
    void (*destroy)(lm_backend *be);
    /* "cpu (2 threads)", "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" */
    const char *(*describe)(lm_backend *be);
    /* Zero-filled device memory; LM_ERR_NOMEM names `what`, the size and the free memory. */
    lm_status (*alloc)(lm_backend *be, void **ptr, size_t bytes, const char *what);
    void (*free)(lm_backend *be, void *ptr);
    lm_status (*upload)(lm_backend *be, void *dst_device, const void *src_host, size_t bytes);
    lm_status (*download)(lm_backend *be, void *dst_host, const void *src_device, size_t bytes);
    lm_status (*sync)(lm_backend *be);  /* waits for queued work; returns any kept failure */
    lm_status (*check)(lm_backend *be); /* returns any kept failure without waiting */
    void (*zero)(lm_backend *be, void *ptr, size_t bytes);

    /* ---- ops: one member per entry of backend_ops.def (their semantics are
     * written there), the backend first ---- */
#define LM_OP(name, params, args, profile_key) void (*name)(lm_backend *be, LM_UNPAREN params);
#define LM_OP_CPU_ADAPTED LM_OP
#define LM_OP_HOST_READ(name, params, args, profile_key) lm_status (*name)(lm_backend *be, LM_UNPAREN params);
#include "backend_ops.def"

    /* ---- timing (the op profiler, backend_profile.c) ---- */
    /* n marks, numbered 0..n-1; a mark may be recorded again once read. */
    lm_status (*timer_create)(lm_backend *be, lm_backend_timer **out, int n);
    void (*timer_destroy)(lm_backend *be, lm_backend_timer *timer);
    /* Records mark i when the work queued so far is done (CPU: now). */
    void (*timer_record)(lm_backend *be, lm_backend_timer *timer, int i);
    /* Milliseconds from mark `from` to mark `to`, both recorded; waits for `to`. */
    lm_status (*timer_elapsed_ms)(lm_backend *be, lm_backend_timer *timer, int from, int to, double *ms);

    /* ---- what the public lm_device needs besides the above ---- */
    void (*counters)(lm_backend *be, lm_device_counters *out);
    /* Keeps a failure of work queued outside the ops (an optimizer plugin's kernel). */
    void (*keep_failure)(lm_backend *be, const char *what, const char *reason);

    /* ---- graphs: optional, NULL where the backend cannot capture (the
     * CPU; the op profiler, whose marks time each op as it runs), so not
     * in backend_table.def.  The device's graph_* slots (lmcore/device.h)
     * forward here and are NULL when these are. ---- */
    lm_status (*graph_begin)(lm_backend *be);
    lm_status (*graph_end)(lm_backend *be, lm_device_graph **out);
    lm_status (*graph_launch)(lm_backend *be, lm_device_graph *graph);
    void (*graph_destroy)(lm_backend *be, lm_device_graph *graph);
} lm_backend_ops;

struct lm_backend {
    const lm_backend_ops *ops;
    lm_precision precision;
    lm_device device; /* this backend as plugins see it (lm_backend_device_init) */
    int holders;      /* the model's hold and each lm_device_ops.retain: destroyed at 0 */
};

/* The dropout stream of site `site` in micro-batch `micro_batch`: streams
 * differ per micro-batch and per site, so no two masks of a run repeat. */
LM_HOST_DEVICE uint64_t lm_dropout_stream(uint64_t micro_batch, int site) {
    return (micro_batch << 24) | ((uint64_t)site << 8) | (uint64_t)LM_RNG_STREAM_DROPOUT;
}

/* Fills be->device so that its ops run through be->ops (device.c); the CPU
 * device also gets parallel_for.  `stream` is the cudaStream_t, or NULL. */
void lm_backend_device_init(lm_backend *be, lm_device_type type, int index, void *stream);
/* The backend of a device that lm_backend_device_init filled. */
lm_backend *lm_backend_of_device(lm_device *dev);
/* Drops the creator's hold (a model's, at its destroy): the backend is
 * destroyed now, or when the last plugin that retained its device releases
 * it.  Use this instead of ops->destroy. */
void lm_backend_release(lm_backend *be);

/* Creates the CPU backend (threads: 0 = one per core). */
lm_status lm_backend_cpu_create(lm_backend **out, int threads);

/* Creates the CUDA backend on `device_index` (LM_ERR_UNSUPPORTED when this
 * build has no CUDA, LM_ERR_DEVICE when no usable GPU is present, with the
 * reason).  Declared always; defined in kernels/cuda when built with CUDA,
 * else by a stub in kernels/cpu/backend_select.c. */
lm_status lm_backend_cuda_create(lm_backend **out, int device_index, lm_precision precision);

/* Picks a backend from a device string: "cpu", "cuda", "cuda:N", "auto"
 * (the GPU when one is usable, else the CPU; says which at info level). */
lm_status lm_backend_create(lm_backend **out, const char *device, lm_precision precision, int cpu_threads);

/* The op profiler (profile_ops=true on an architecture): replaces *be by a
 * backend that forwards every call to it and times each op with the
 * backend's timer (on a GPU, the time the op takes on the device, not the
 * launch).  Destroying it logs the table at info level and destroys the
 * wrapped backend.  On failure *be is left as it was. */
lm_status lm_backend_profile(lm_backend **be, const char *label);
/* The table so far (ops by total time: calls, total, mean, share of the
 * busy time; then busy against elapsed time on the device's clock) into
 * buf; waits for queued work.  LM_ERR_INVALID when be is not profiled. */
lm_status lm_backend_profile_report(lm_backend *be, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif

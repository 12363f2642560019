/* lmcore — the compute device a model lives on, as other plugins see it.
 *
 * A model hands out its device with its parameters (lm_param_set).  The core
 * and optimizer plugins use it to allocate memory beside the parameters
 * (optimizer state, the step state of step.h), to move bytes, and to run the
 * device side of a training step; an optimizer plugin that runs kernels of
 * its own queues them on `stream` (CUDA) or spreads its loops with
 * parallel_for (CPU).  The device is created by the model and reference
 * counted: whoever keeps memory on it beyond a call (an optimizer's state,
 * the trainer's step state) retains it and releases it after freeing that
 * memory, so the device outlives the model when the model goes first.
 *
 * Work is queued in order on one stream.  Only download and sync wait for
 * the device; every other operation returns at once, and a failure of
 * queued work (a launch error, a fault) is kept by the device and returned
 * by the next sync or check, naming what failed.  The device counts its
 * waits (counters), so that a test can show that a training step without
 * logging never waits. */
#ifndef LMCORE_DEVICE_H
#define LMCORE_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "step.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lm_device_type { LM_DEVICE_CPU = 0, LM_DEVICE_CUDA = 1 } lm_device_type;

/* What the device has done since it was created. */
typedef struct lm_device_counters {
    uint64_t downloads; /* device-to-host copies: the host read device memory */
    uint64_t syncs;     /* the host waited for the device's queued work (downloads included) */
    uint64_t uploads;   /* host-to-device copies */
} lm_device_counters;

typedef struct lm_device lm_device;
/* A captured sequence of the device's queued work, replayable (ABI 2.1). */
typedef struct lm_device_graph lm_device_graph;

/* A piece of a parallel loop: [begin, end) of [0, n). */
typedef void (*lm_task_fn)(void *ctx, long begin, long end);

typedef struct lm_device_ops {
    uint32_t struct_size; /* sizeof(lm_device_ops) of the device's build: slots beyond it are absent */
    uint32_t reserved0;

    /* ---- memory ----
     * alloc: zero-filled device memory; LM_ERR_NOMEM names `what`, the size and what is free. */
    lm_status (*alloc)(lm_device *dev, void **ptr, size_t bytes, const char *what);
    void (*free)(lm_device *dev, void *ptr);
    /* Queued: dst (device) = src (host).  `src` may be reused as soon as
     * upload returns (the device stages it).  Never waits. */
    lm_status (*upload)(lm_device *dev, void *dst, const void *src, size_t bytes);
    /* dst (host) = src (device), after the queued work: a host read, which waits. */
    lm_status (*download)(lm_device *dev, void *dst, const void *src, size_t bytes);
    void (*zero)(lm_device *dev, void *ptr, size_t bytes); /* queued */
    lm_status (*sync)(lm_device *dev);  /* waits for the queued work; returns a kept failure */
    lm_status (*check)(lm_device *dev); /* a kept failure, without waiting */
    void (*counters)(lm_device *dev, lm_device_counters *out);
    /* Keeps the device alive for one more holder; release drops the hold
     * (the last release, the model's own at its destroy included, closes
     * the device).  Free what you allocated on it before you release it. */
    void (*retain)(lm_device *dev);
    void (*release)(lm_device *dev);

    /* ---- for plugins that run work of their own on this device ----
     * CPU devices: runs fn over [0, n) in pieces of `grain` on the device's
     * threads, the caller included, and returns when all are done.  Pieces
     * are fixed by n and grain alone, so results never depend on the thread
     * count.  NULL on other devices. */
    void (*parallel_for)(lm_device *dev, long n, long grain, lm_task_fn fn, void *ctx);
    /* Keeps a failure of work the plugin queued itself (a launch error): the
     * next sync or check returns it as "<what>: <reason>". */
    void (*keep_failure)(lm_device *dev, const char *what, const char *reason);

    /* ---- the device side of a training step (step.h), all queued ----
     * After a forward that wrote state->loss (scored != 0):
     *   loss_sum += (double)loss * num / den; scored += 1; a non-finite loss
     *   sets bad_step = step + 1, bad_what = LM_BAD_LOSS (first one wins).
     * scored == 0 (a batch with nothing to predict) changes nothing. */
    lm_status (*step_micro_batch_end)(lm_device *dev, lm_step_state *state, double num, double den, int scored);
    /* grad_norm = sqrt(Σ g²) over n gradients (accumulated in double in a
     * fixed order), flagged when not finite (LM_BAD_GRAD_NORM); clip_scale =
     * max_grad_norm / (norm + 1e-6) when max_grad_norm > 0 and norm >
     * max_grad_norm, else 1 (torch.nn.utils.clip_grad_norm_).  The
     * gradients are not changed: the update multiplies by clip_scale. */
    lm_status (*step_clip)(lm_device *dev, lm_step_state *state, const void *grads, lm_dtype dtype, size_t n);
    /* lr = lm_schedule_lr(&schedule, step), unless the schedule is LM_SCHEDULE_HOST. */
    lm_status (*step_schedule)(lm_device *dev, lm_step_state *state);
    /* After the update: step_loss = loss_sum, every loss_sums[i] += step_loss,
     * loss_sum = 0, scored = 0, clip_scale = 1, step += 1. */
    lm_status (*step_finish)(lm_device *dev, lm_step_state *state);

    /* ---- graphs (ABI 2.1; NULL on devices that cannot capture, the CPU's
     * among them: check struct_size and the slot before calling) ----
     * graph_begin: from now on the work queued on the device is recorded,
     * not run (CUDA: stream capture of the device's stream, thread-local
     * mode).  Inside a capture nothing may wait for the device or upload:
     * upload, download and sync are refused, and a failure is kept.
     * graph_end: closes the capture, always (call it even when the work
     * queued in between failed), and turns what was recorded into a graph
     * that can be launched; a failure of the capture or of any op queued
     * in it is returned here, naming it, *out is NULL and none of the
     * recorded work has run (run it again without capture).
     * graph_launch: queues the recorded work once more, in order with the
     * device's other work, without waiting; the graph reads and writes the
     * same device addresses as when it was recorded, so inputs that change
     * are uploaded into those addresses before the launch.
     * graph_destroy: waits for the device's queued work (launches of the
     * graph may be among it), then frees the graph (NULL: nothing). */
    lm_status (*graph_begin)(lm_device *dev);
    lm_status (*graph_end)(lm_device *dev, lm_device_graph **out);
    lm_status (*graph_launch)(lm_device *dev, lm_device_graph *graph);
    void (*graph_destroy)(lm_device *dev, lm_device_graph *graph);
} lm_device_ops;

/* The reference arithmetic of the step_* operations on a state in host
 * memory: every device computes these, in this order of operations (a GPU
 * device in its kernels); lmcore's CPU devices call them.  step_clip is
 * lm_step_clip_from_sum of the gradients' sum of squares, accumulated in
 * double in an order of the device's own that does not depend on its
 * number of threads (lm_sum_squares: chunks of 16384 elements in order). */
LM_API double lm_sum_squares(const float *x, size_t n);
LM_API void lm_step_micro_batch_end(lm_step_state *state, double num, double den, int scored);
LM_API void lm_step_clip_from_sum(lm_step_state *state, double sum_of_squares);
LM_API void lm_step_schedule(lm_step_state *state);
LM_API void lm_step_finish(lm_step_state *state);

struct lm_device {
    uint32_t struct_size; /* sizeof(lm_device) */
    int32_t type;         /* lm_device_type */
    int32_t index;        /* the CUDA device ordinal; 0 for the CPU */
    int32_t reserved0;
    const char *description; /* "cpu (2 threads)", "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" */
    void *stream;            /* the cudaStream_t all of the model's work is queued on; NULL on the CPU */
    const lm_device_ops *ops;
};

/* A device in host memory with no threads of its own (parallel_for runs
 * the pieces in order on the caller), for an architecture plugin that
 * computes on the CPU by itself, and for tests.  Work runs at once; waits
 * and copies are counted as a GPU device's would be.  The creator holds
 * it: release it (the last release frees it). */
LM_API lm_status lm_host_device_create(lm_device **out, const char *description);

#ifdef __cplusplus
}
#endif
#endif

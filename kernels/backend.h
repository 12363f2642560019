/* lmcore kernels — a device backend behind one table of operations.
 *
 * Architecture plugins write forward and backward once, as calls through
 * lm_backend_ops; the CPU backend (kernels/cpu/backend_cpu.c) forwards to the
 * lm_cpu_* references, the CUDA backend (kernels/cuda/backend_cuda.cu) to
 * the CUDA twins on the backend's stream with the backend's cuBLAS handle and
 * workspace.  Every op has the argument order of its lm_cpu_* twin in
 * kernels.h with the backend first.  Pointers passed to ops are device
 * pointers of that backend (host pointers for the CPU backend).
 *
 * Ops do not return a status (so that a CUDA graph can capture them); a
 * failure inside one (a launch error, a cuBLAS error) is kept by the backend
 * and returned by the next sync() or check(), with what failed named.
 *
 * Nothing an op needs changes from step to step as an argument: dropout
 * reads its key (seed and micro-batch counter) from the step state in device
 * memory (lmcore/step.h), the loss is written there, and the step_* ops
 * update it; only download and sync wait for the device.  Every backend
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

    /* ---- ops (see kernels.h for the semantics) ---- */
    void (*embedding_forward)(lm_backend *be, float *out, const int32_t *ids, const int32_t *type_ids,
                              const float *wte, const float *wpe, const float *wtt, int B, int T, int C);
    void (*embedding_backward)(lm_backend *be, float *dwte, float *dwpe, float *dwtt, const float *dout,
                               const int32_t *ids, const int32_t *type_ids, int B, int T, int C);
    void (*layernorm_forward)(lm_backend *be, float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, float eps);
    void (*layernorm_backward)(lm_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean, const float *rstd, int N,
                               int C);
    void (*matmul_forward)(lm_backend *be, float *out, const float *inp, const float *weight, const float *bias,
                           int N, int IC, int OC, lm_weight_layout layout);
    void (*matmul_backward)(lm_backend *be, float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int IC, int OC, lm_weight_layout layout);
    /* Dropout (attention's, on the probabilities, and dropout_*) draws
     * its masks from (key->seed, lm_dropout_stream(key->micro_batch,
     * site)), reading the key in device memory; key may be NULL when
     * dropout_p is 0. */
    void (*attention_forward)(lm_backend *be, float *out, float *preatt, float *att, const float *q, const float *k,
                              const float *v, int stride, const int32_t *key_mask, int causal, int B, int T, int C,
                              int NH, float dropout_p, const lm_step_state *key, int site);
    void (*attention_backward)(lm_backend *be, float *dq, float *dk, float *dv, float *scratch, const float *dout,
                               const float *preatt, const float *att, const float *q, const float *k, const float *v,
                               int stride, int B, int T, int C, int NH, float dropout_p, const lm_step_state *key,
                               int site);
    void (*gelu_forward)(lm_backend *be, float *out, const float *inp, size_t n, int approx_tanh);
    void (*gelu_backward)(lm_backend *be, float *dinp, const float *inp, const float *dout, size_t n,
                          int approx_tanh);
    void (*dropout_forward)(lm_backend *be, float *out, const float *inp, size_t n, float p,
                            const lm_step_state *key, int site);
    void (*dropout_backward)(lm_backend *be, float *dinp, const float *dout, size_t n, float p,
                             const lm_step_state *key, int site);
    void (*residual_forward)(lm_backend *be, float *out, const float *a, const float *b, size_t n);
    void (*accumulate)(lm_backend *be, float *dst, const float *src, size_t n);
    /* Writes per-row losses to `losses` (device); loss_mean turns them into the batch's loss. */
    void (*crossentropy_forward)(lm_backend *be, float *losses, const float *logits, const int32_t *labels, int N,
                                 int V);
    void (*crossentropy_backward)(lm_backend *be, float *dlogits, const float *logits, const int32_t *labels,
                                  float dloss, int N, int V);
    /* *out (device) = (float)(Σ losses[0..n) / count), the sum in double. */
    void (*loss_mean)(lm_backend *be, float *out, const float *losses, size_t n, int64_t count);
    /* Σ losses[0..n) to the host (a host read: waits). */
    lm_status (*sum_to_host)(lm_backend *be, const float *x, size_t n, double *out);
    /* Σ x² over the buffer to the host (a host read: waits). */
    lm_status (*sum_squares_to_host)(lm_backend *be, const float *x, size_t n, double *out);

    /* ---- the device side of a training step: lm_device_ops.step_* (lmcore/device.h) ---- */
    void (*step_micro_batch_end)(lm_backend *be, lm_step_state *state, double num, double den, int scored);
    void (*step_clip)(lm_backend *be, lm_step_state *state, const float *grads, size_t n);
    void (*step_schedule)(lm_backend *be, lm_step_state *state);
    void (*step_finish)(lm_backend *be, lm_step_state *state);

    /* ---- incremental decoding with a key/value cache (generate_step) ---- */
    void (*kv_cache_append)(lm_backend *be, float *k_cache, float *v_cache, const float *k, const float *v,
                            int stride, int pos, int n, int C);
    void (*attention_cached_forward)(lm_backend *be, float *out, float *att, const float *q, const float *k_cache,
                                     const float *v_cache, int stride, int pos, int n, int C, int NH);
    /* matmul_forward for the few rows of a decoding step. */
    void (*matvec_forward)(lm_backend *be, float *out, const float *inp, const float *weight, const float *bias,
                           int N, int IC, int OC, lm_weight_layout layout);

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

/* lmkernels — the CPU backend: the lm_backend_ops table over the lm_cpu_*
 * kernels.  Memory is ordinary host memory (64-byte aligned, zeroed),
 * uploads and downloads are copies, and nothing is ever queued, so sync and
 * check have no failure of the ops to report; only a failure that a plugin
 * kept through lm_device_ops.keep_failure.  Downloads and syncs are counted
 * all the same: the protocol (a step without logging reads nothing back) is
 * the GPU's, and tests check it here too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "cpu_internal.h"

typedef struct cpu_backend {
    lm_backend base; /* first: the lm_backend pointer is the cpu_backend pointer */
    char description[64];
    lm_device_counters counters;
    char kept_failure[320]; /* "" or "<what>: <reason>" kept by a plugin */
} cpu_backend;

static void cpu_destroy(lm_backend *be) {
    free(be);
}

static const char *cpu_describe(lm_backend *be) {
    return ((cpu_backend *)be)->description;
}

static lm_status cpu_alloc(lm_backend *be, void **ptr, size_t bytes, const char *what) {
    (void)be;
    *ptr = NULL;
    void *memory = NULL;
    /* 64 bytes: a cache line, and enough for any vector load. */
    if (posix_memalign(&memory, 64, bytes > 0 ? bytes : 64) != 0) {
        long pages = sysconf(_SC_AVPHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
        double free_gib = pages > 0 && page_size > 0 ? (double)pages * (double)page_size / 1073741824.0 : -1.0;
        return lm_error_set(LM_ERR_NOMEM,
                            "out of host memory allocating %s (%.1f MiB, %.1f GiB free): reduce the batch size, "
                            "block size or model size",
                            what ? what : "a buffer", (double)bytes / 1048576.0, free_gib);
    }
    memset(memory, 0, bytes);
    *ptr = memory;
    return LM_OK;
}

static void cpu_free(lm_backend *be, void *ptr) {
    (void)be;
    free(ptr);
}

static lm_status cpu_upload(lm_backend *be, void *dst, const void *src, size_t bytes) {
    ((cpu_backend *)be)->counters.uploads++;
    if (bytes > 0 && dst != src) memcpy(dst, src, bytes);
    return LM_OK;
}

static lm_status cpu_kept_failure(cpu_backend *cb) {
    if (!cb->kept_failure[0]) return LM_OK;
    lm_status status = lm_error_set(LM_ERR_DEVICE, "%s", cb->kept_failure);
    cb->kept_failure[0] = '\0';
    return status;
}

static lm_status cpu_sync(lm_backend *be) {
    cpu_backend *cb = (cpu_backend *)be;
    cb->counters.syncs++;
    return cpu_kept_failure(cb);
}

static lm_status cpu_check(lm_backend *be) {
    return cpu_kept_failure((cpu_backend *)be);
}

/* A host read is counted as what it costs on a GPU: a download and a wait
 * for the queued work. */
static void count_host_read(cpu_backend *cb) {
    cb->counters.downloads++;
    cb->counters.syncs++;
}

static lm_status cpu_download(lm_backend *be, void *dst, const void *src, size_t bytes) {
    cpu_backend *cb = (cpu_backend *)be;
    count_host_read(cb);
    if (bytes > 0 && dst != src) memcpy(dst, src, bytes);
    return cpu_kept_failure(cb);
}

static void cpu_counters(lm_backend *be, lm_device_counters *out) {
    *out = ((cpu_backend *)be)->counters;
}

static void cpu_keep_failure(lm_backend *be, const char *what, const char *reason) {
    cpu_backend *cb = (cpu_backend *)be;
    if (!cb->kept_failure[0]) snprintf(cb->kept_failure, sizeof cb->kept_failure, "%s: %s", what, reason);
}

/* Zeroing the gradients (the whole parameter buffer, every step) and the
 * activation-gradient scratch is memory-bound, but split it all the same
 * (256 KiB pieces, ~10 us each): between two ops the pool's workers then
 * stay awake instead of going to sleep during a serial memset. */
#define LM_CPU_ZERO_PIECE ((long)1 << 18)

static void zero_task(void *ctx, long begin, long end) {
    memset((char *)ctx + begin, 0, (size_t)(end - begin));
}

static void cpu_zero(lm_backend *be, void *ptr, size_t bytes) {
    (void)be;
    if (bytes > 0) lm_cpu_parallel_for((long)bytes, LM_CPU_ZERO_PIECE, zero_task, ptr);
}

/* The (seed, stream) pair the CPU kernels draw dropout masks with, from
 * the op's (key, site).  Dropout without a key would draw the same masks
 * for every batch: kept as a failure (reported by the next check), as the
 * CUDA backend does, and the op does nothing (returns 0). */
typedef struct dropout_draw {
    uint64_t seed, stream;
} dropout_draw;

static int dropout_draw_of(lm_backend *be, const lm_step_state *key, int site, float p, const char *op,
                           dropout_draw *draw) {
    draw->seed = key ? key->seed : 0;
    draw->stream = key ? lm_dropout_stream(key->micro_batch, site) : 0;
    if (key || !(p > 0.0f && p < 1.0f)) return 1;
    cpu_keep_failure(be, op, "dropout with p > 0 needs the step state's dropout key, and none was given");
    return 0;
}

/* ---- ops (backend_ops.def): the backend dropped, everything else passed
 * on; the table calls these directly, so a call costs what it did when
 * each was written out ---- */
#define LM_OP(name, params, args, profile_key)                                                                         \
    static void cpu_##name(lm_backend *be, LM_UNPAREN params) {                                                        \
        (void)be;                                                                                                      \
        lm_cpu_##name args;                                                                                            \
    }
#define LM_OP_CPU_ADAPTED(name, params, args, profile_key) /* written below */
#define LM_OP_HOST_READ(name, params, args, profile_key)   /* written below */
#include "backend_ops.def"

/* ---- the ops whose CPU kernels take other arguments (LM_OP_CPU_ADAPTED) ---- */

static void cpu_attention_forward(lm_backend *be, float *out, float *preatt, float *att, const float *q,
                                  const float *k, const float *v, int stride, const int32_t *key_mask, int causal,
                                  int B, int T, int C, int NH, float dropout_p, const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, dropout_p, "attention_forward", &draw)) return;
    lm_cpu_attention_forward(out, preatt, att, q, k, v, stride, key_mask, causal, B, T, C, NH, dropout_p, draw.seed,
                             draw.stream);
}

static void cpu_attention_backward(lm_backend *be, float *dq, float *dk, float *dv, float *scratch,
                                   const float *dout, const float *preatt, const float *att, const float *q,
                                   const float *k, const float *v, int stride, int B, int T, int C, int NH,
                                   float dropout_p, const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, dropout_p, "attention_backward", &draw)) return;
    lm_cpu_attention_backward(dq, dk, dv, scratch, dout, preatt, att, q, k, v, stride, B, T, C, NH, dropout_p,
                              draw.seed, draw.stream);
}

static void cpu_attention_fused_forward(lm_backend *be, float *out, float *lse, const float *q, const float *k,
                                        const float *v, int stride, const int32_t *key_mask, int causal, int B, int T,
                                        int C, int NH, float dropout_p, const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, dropout_p, "attention_fused_forward", &draw)) return;
    lm_cpu_attention_fused_forward(out, lse, q, k, v, stride, key_mask, causal, B, T, C, NH, dropout_p, draw.seed,
                                   draw.stream);
}

static void cpu_attention_fused_backward(lm_backend *be, float *dq, float *dk, float *dv, float *scratch,
                                         const float *dout, const float *out, const float *lse, const float *q,
                                         const float *k, const float *v, int stride, const int32_t *key_mask,
                                         int causal, int B, int T, int C, int NH, float dropout_p,
                                         const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, dropout_p, "attention_fused_backward", &draw)) return;
    lm_cpu_attention_fused_backward(dq, dk, dv, scratch, dout, out, lse, q, k, v, stride, key_mask, causal, B, T, C,
                                    NH, dropout_p, draw.seed, draw.stream);
}

static void cpu_dropout_forward(lm_backend *be, float *out, const float *inp, size_t n, float p,
                                const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, p, "dropout_forward", &draw)) return;
    lm_cpu_dropout_forward(out, inp, n, p, draw.seed, draw.stream);
}

static void cpu_dropout_backward(lm_backend *be, float *dinp, const float *dout, size_t n, float p,
                                 const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, p, "dropout_backward", &draw)) return;
    lm_cpu_dropout_backward(dinp, dout, n, p, draw.seed, draw.stream);
}

static void cpu_residual_layernorm_forward(lm_backend *be, float *residual, float *out, float *mean, float *rstd,
                                           const float *a, const float *branch, const float *weight,
                                           const float *bias, int N, int C, float eps, float p,
                                           const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, p, "residual_layernorm_forward", &draw)) return;
    lm_cpu_residual_layernorm_forward(residual, out, mean, rstd, a, branch, weight, bias, N, C, eps, p, draw.seed,
                                      draw.stream);
}

static void cpu_crossentropy_forward(lm_backend *be, float *losses, const float *logits, const int32_t *labels,
                                     int N, int V, int stride) {
    (void)be;
    (void)lm_cpu_crossentropy_forward(losses, logits, labels, N, V, stride); /* the sum comes from loss_mean */
}

/* dloss as the op defines it (backend_ops.def): the float division a host
 * computed before the count moved to the device, so the same bits. */
static float loss_gradient_scale(float loss_scale, const int64_t *n_targets) {
    return loss_scale / (float)*n_targets;
}

static void cpu_crossentropy_backward(lm_backend *be, float *dlogits, const float *logits, const int32_t *labels,
                                      float loss_scale, const int64_t *n_targets, int N, int V, int stride) {
    (void)be;
    lm_cpu_crossentropy_backward(dlogits, logits, labels, loss_gradient_scale(loss_scale, n_targets), N, V,
                                 stride);
}

static void cpu_crossentropy_forward_backward(lm_backend *be, float *losses, float *logits, const int32_t *labels,
                                              float loss_scale, const int64_t *n_targets, int N, int V,
                                              int stride) {
    (void)be;
    lm_cpu_crossentropy_forward_backward(losses, logits, labels, loss_gradient_scale(loss_scale, n_targets), N,
                                         V, stride);
}

/* The bf16 classifier's references allocate scratch: without memory
 * they write nothing and the failure is kept for the next check. */
static void keep_if_no_memory(lm_backend *be, int result, const char *op) {
    if (result != 0)
        cpu_keep_failure(be, op, "out of host memory for the fp32 scratch of the bf16 reference op: reduce the "
                                 "batch size, or use logits_dtype=fp32 activation_dtype=fp32 on the CPU");
}

static void cpu_matmul_forward_bf16(lm_backend *be, uint16_t *out, const uint16_t *inp, const uint16_t *weight,
                                    const float *bias, int N, int IC, int OC, lm_weight_layout layout) {
    keep_if_no_memory(be, lm_cpu_matmul_forward_bf16(out, inp, weight, bias, N, IC, OC, layout),
                      "matmul_forward_bf16");
}

static void cpu_matmul_backward_bf16(lm_backend *be, float *dinp, float *dweight, float *dbias, const uint16_t *dout,
                                     const uint16_t *inp, const uint16_t *weight, int N, int IC, int OC,
                                     lm_weight_layout layout, lm_grad_store dinp_store, lm_grad_store dparam_store) {
    keep_if_no_memory(be,
                      lm_cpu_matmul_backward_bf16(dinp, dweight, dbias, dout, inp, weight, N, IC, OC, layout,
                                                  dinp_store, dparam_store),
                      "matmul_backward_bf16");
}

static void cpu_matmul_forward_bf16_to_fp32(lm_backend *be, float *out, const uint16_t *inp, const uint16_t *weight,
                                            const float *bias, int N, int IC, int OC, lm_weight_layout layout) {
    keep_if_no_memory(be, lm_cpu_matmul_forward_bf16_to_fp32(out, inp, weight, bias, N, IC, OC, layout),
                      "matmul_forward_bf16_to_fp32");
}

static void cpu_matmul_gelu_forward_bf16(lm_backend *be, uint16_t *out, uint16_t *pre_gelu, const uint16_t *inp,
                                         const uint16_t *weight, const float *bias, int N, int IC, int OC,
                                         lm_weight_layout layout) {
    keep_if_no_memory(be, lm_cpu_matmul_gelu_forward_bf16(out, pre_gelu, inp, weight, bias, N, IC, OC, layout),
                      "matmul_gelu_forward_bf16");
}

static void cpu_gelu_matmul_backward_bf16(lm_backend *be, uint16_t *dpre_gelu, float *dweight, float *dbias,
                                          float *dbias_pre, const uint16_t *dout, const uint16_t *gelu_out,
                                          const uint16_t *pre_gelu, const uint16_t *weight, int N, int IC, int OC,
                                          lm_weight_layout layout, lm_grad_store dparam_store) {
    keep_if_no_memory(be,
                      lm_cpu_gelu_matmul_backward_bf16(dpre_gelu, dweight, dbias, dbias_pre, dout, gelu_out,
                                                       pre_gelu, weight, N, IC, OC, layout, dparam_store),
                      "gelu_matmul_backward_bf16");
}

static void cpu_attention_forward_bf16(lm_backend *be, uint16_t *out, float *preatt, float *att, const uint16_t *q,
                                       const uint16_t *k, const uint16_t *v, int stride, const int32_t *key_mask,
                                       int causal, int B, int T, int C, int NH, float dropout_p,
                                       const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, dropout_p, "attention_forward_bf16", &draw)) return;
    keep_if_no_memory(be,
                      lm_cpu_attention_forward_bf16(out, preatt, att, q, k, v, stride, key_mask, causal, B, T, C, NH,
                                                    dropout_p, draw.seed, draw.stream),
                      "attention_forward_bf16");
}

static void cpu_attention_backward_bf16(lm_backend *be, float *dq, float *dk, float *dv, float *scratch,
                                        const float *dout, const float *preatt, const float *att, const uint16_t *q,
                                        const uint16_t *k, const uint16_t *v, int stride, int B, int T, int C, int NH,
                                        float dropout_p, const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, dropout_p, "attention_backward_bf16", &draw)) return;
    keep_if_no_memory(be,
                      lm_cpu_attention_backward_bf16(dq, dk, dv, scratch, dout, preatt, att, q, k, v, stride, B, T, C,
                                                     NH, dropout_p, draw.seed, draw.stream),
                      "attention_backward_bf16");
}

static void cpu_attention_fused_forward_bf16(lm_backend *be, uint16_t *out, float *lse, const uint16_t *q,
                                             const uint16_t *k, const uint16_t *v, int stride,
                                             const int32_t *key_mask, int causal, int B, int T, int C, int NH,
                                             float dropout_p, const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, dropout_p, "attention_fused_forward_bf16", &draw)) return;
    keep_if_no_memory(be,
                      lm_cpu_attention_fused_forward_bf16(out, lse, q, k, v, stride, key_mask, causal, B, T, C, NH,
                                                          dropout_p, draw.seed, draw.stream),
                      "attention_fused_forward_bf16");
}

static void cpu_attention_fused_backward_bf16(lm_backend *be, float *dq, float *dk, float *dv, float *scratch,
                                              const float *dout, const uint16_t *out, const float *lse,
                                              const uint16_t *q, const uint16_t *k, const uint16_t *v, int stride,
                                              const int32_t *key_mask, int causal, int B, int T, int C, int NH,
                                              float dropout_p, const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, dropout_p, "attention_fused_backward_bf16", &draw)) return;
    keep_if_no_memory(be,
                      lm_cpu_attention_fused_backward_bf16(dq, dk, dv, scratch, dout, out, lse, q, k, v, stride,
                                                           key_mask, causal, B, T, C, NH, dropout_p, draw.seed,
                                                           draw.stream),
                      "attention_fused_backward_bf16");
}

static void cpu_layernorm_forward_bf16(lm_backend *be, uint16_t *out_bf16, float *out, float *mean, float *rstd,
                                       const float *inp, const float *weight, const float *bias, int N, int C,
                                       float eps) {
    keep_if_no_memory(be, lm_cpu_layernorm_forward_bf16(out_bf16, out, mean, rstd, inp, weight, bias, N, C, eps),
                      "layernorm_forward_bf16");
}

static void cpu_residual_layernorm_forward_bf16(lm_backend *be, float *residual, uint16_t *out_bf16, float *out,
                                                float *mean, float *rstd, const float *a, const float *branch,
                                                const float *weight, const float *bias, int N, int C, float eps,
                                                float p, const lm_step_state *key, int site) {
    dropout_draw draw;
    if (!dropout_draw_of(be, key, site, p, "residual_layernorm_forward_bf16", &draw)) return;
    keep_if_no_memory(be,
                      lm_cpu_residual_layernorm_forward_bf16(residual, out_bf16, out, mean, rstd, a, branch, weight,
                                                             bias, N, C, eps, p, draw.seed, draw.stream),
                      "residual_layernorm_forward_bf16");
}

static void cpu_crossentropy_forward_bf16(lm_backend *be, float *losses, const uint16_t *logits,
                                          const int32_t *labels, int N, int V, int stride) {
    keep_if_no_memory(be, lm_cpu_crossentropy_forward_bf16(losses, logits, labels, N, V, stride),
                      "crossentropy_forward_bf16");
}

static void cpu_crossentropy_backward_bf16(lm_backend *be, uint16_t *dlogits, const uint16_t *logits,
                                           const int32_t *labels, float loss_scale, const int64_t *n_targets, int N,
                                           int V, int stride) {
    keep_if_no_memory(be,
                      lm_cpu_crossentropy_backward_bf16(dlogits, logits, labels,
                                                        loss_gradient_scale(loss_scale, n_targets), N, V, stride),
                      "crossentropy_backward_bf16");
}

static void cpu_crossentropy_forward_backward_bf16(lm_backend *be, float *losses, uint16_t *logits,
                                                   const int32_t *labels, float loss_scale, const int64_t *n_targets,
                                                   int N, int V, int stride) {
    keep_if_no_memory(be,
                      lm_cpu_crossentropy_forward_backward_bf16(losses, logits, labels,
                                                                loss_gradient_scale(loss_scale, n_targets), N, V,
                                                                stride),
                      "crossentropy_forward_backward_bf16");
}

/* ---- the host reads (LM_OP_HOST_READ) ---- */

static lm_status cpu_sum_to_host(lm_backend *be, const float *x, size_t n, double *out) {
    count_host_read((cpu_backend *)be);
    *out = lm_cpu_sum(x, n);
    return LM_OK;
}

static lm_status cpu_sum_squares_to_host(lm_backend *be, const float *x, size_t n, double *out) {
    count_host_read((cpu_backend *)be);
    *out = lm_cpu_sum_squares(x, n);
    return LM_OK;
}

/* ---- timer: ops run to completion before they return, so a mark is the
 * monotonic clock when it is recorded ---- */

struct lm_backend_timer {
    int n;
    double seconds[]; /* -1 until recorded */
};

static lm_status cpu_timer_create(lm_backend *be, lm_backend_timer **out, int n) {
    (void)be;
    *out = NULL;
    if (n < 1) return lm_error_set(LM_ERR_INVALID, "timer_create: %d marks (at least 1)", n);
    lm_backend_timer *t = malloc(sizeof *t + (size_t)n * sizeof t->seconds[0]);
    if (!t) return lm_error_set(LM_ERR_NOMEM, "out of host memory for a timer of %d marks", n);
    t->n = n;
    for (int i = 0; i < n; i++) t->seconds[i] = -1.0;
    *out = t;
    return LM_OK;
}

static void cpu_timer_destroy(lm_backend *be, lm_backend_timer *timer) {
    (void)be;
    free(timer);
}

static void cpu_timer_record(lm_backend *be, lm_backend_timer *timer, int i) {
    (void)be;
    if (i < 0 || i >= timer->n) return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    timer->seconds[i] = (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static lm_status cpu_timer_elapsed_ms(lm_backend *be, lm_backend_timer *timer, int from, int to, double *ms) {
    (void)be;
    *ms = 0.0;
    if (from < 0 || to < 0 || from >= timer->n || to >= timer->n || timer->seconds[from] < 0.0 ||
        timer->seconds[to] < 0.0)
        return lm_error_set(LM_ERR_INVALID, "timer_elapsed_ms: marks %d and %d of %d are not both recorded", from, to,
                            timer->n);
    *ms = 1e3 * (timer->seconds[to] - timer->seconds[from]);
    return LM_OK;
}

static const lm_backend_ops cpu_ops = {
#define LM_BACKEND_ENTRY(member) .member = cpu_##member,
#include "backend_table.def"
};

lm_status lm_backend_cpu_create(lm_backend **out, int threads) {
    *out = NULL;
    if (threads < 0)
        return lm_error_set(LM_ERR_INVALID, "CPU thread count %d is negative: use 0 (all cores) or a positive count",
                            threads);
    cpu_backend *be = calloc(1, sizeof *be);
    if (!be) return lm_error_set(LM_ERR_NOMEM, "out of host memory creating the CPU backend");
    /* The thread count is process-wide: the last backend created wins. */
    lm_cpu_set_threads(threads);
    int used = lm_cpu_thread_count();
    snprintf(be->description, sizeof be->description, "cpu (%d thread%s)", used, used == 1 ? "" : "s");
    be->base.ops = &cpu_ops;
    be->base.precision = LM_PRECISION_FP32;
    lm_backend_device_init(&be->base, LM_DEVICE_CPU, 0, NULL);
    *out = &be->base;
    return LM_OK;
}

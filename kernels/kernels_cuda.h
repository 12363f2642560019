/* lmcore kernels — CUDA twins of the ops in kernels.h.
 *
 * Every lm_cpu_<op>(args...) has an lm_cuda_<op>(ctx, args...) here with the
 * same arguments in the same order and the same semantics (outputs first,
 * backward ops accumulate, dropout masks from lmcore/rng.h).  The one
 * difference from the brief's "trailing cudaStream_t": a context comes FIRST
 * instead.  It carries the stream, the cuBLASLt/cuBLAS handles and their
 * workspaces, a scratch area for deterministic reductions and the first
 * failure of an op (ops return nothing so that a CUDA graph can capture
 * them; the failure is reported by lm_cuda_ctx_check / lm_cuda_ctx_sync).
 *
 * All pointers are device pointers.  Ops are asynchronous on the context's
 * stream.  The calling thread must have the context's device current (the
 * context sets it when created and in lm_cuda_ctx_sync; ops do not).
 *
 * Where the CUDA twin differs from the CPU signature:
 *   - lm_cuda_crossentropy_forward returns nothing: it writes the per-row
 *     losses, and lm_cuda_sum adds them up on the device;
 *   - lm_cuda_sum_squares / lm_cuda_sum write their double result to device
 *     memory (deterministic two-stage reductions; no host round trip);
 *   - dropout (lm_cuda_dropout_*, attention's) takes the backend op's
 *     (const lm_step_state *key, int site) instead of the CPU's (seed,
 *     stream): the kernels read key->seed and key->micro_batch from device
 *     memory and draw with stream lm_dropout_stream(micro_batch, site), so a
 *     captured graph replays with the key of the moment, not the key of the
 *     capture.  The masks are the CPU's for (seed, lm_dropout_stream(...)).
 *   - the step twins (lm_cuda_step_*, lm_cuda_loss_mean) take a device
 *     lm_step_state / device output and only queue kernels.
 *
 * Precision (lm_precision of backend.h): FP32 runs true fp32 GEMMs; TF32 uses
 * CUBLAS_COMPUTE_32F_FAST_TF32; BF16 currently means fp32 storage with bf16
 * tensor-core math in the GEMMs (CUBLAS_COMPUTE_32F_FAST_16BF); bf16 storage
 * of activations is not implemented yet.  Non-GEMM kernels are fp32 always.
 *
 * Determinism: every op gives bit-identical results run to run on the same
 * GPU (no float atomics; reductions in a fixed order; cuBLAS is
 * deterministic on a fixed GPU model and toolkit). */
#ifndef LM_KERNELS_CUDA_H
#define LM_KERNELS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "backend.h"
#include "kernels.h"
#include "lmcore/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_cuda_ctx lm_cuda_ctx;

/* ---- context ---------------------------------------------------------------- */
/* Selects `device_index`, creates the stream, the cuBLASLt and cuBLAS handles,
 * a 32 MiB GEMM workspace, the reduction scratch and the device double that
 * loss_mean / step_clip / the backend's sum_to_host reduce into.  LM_ERR_DEVICE (with the
 * CUDA reason) when no usable device exists or the driver is too old;
 * LM_ERR_NOMEM when the workspaces do not fit. */
lm_status lm_cuda_ctx_create(lm_cuda_ctx **out, int device_index, lm_precision precision);
void lm_cuda_ctx_destroy(lm_cuda_ctx *ctx); /* NULL is fine */
cudaStream_t lm_cuda_ctx_stream(const lm_cuda_ctx *ctx);
int lm_cuda_ctx_device(const lm_cuda_ctx *ctx);
lm_precision lm_cuda_ctx_precision(const lm_cuda_ctx *ctx);
/* Returns (and forgets) the first failure kept since the last report, as
 * lm_error_set(LM_ERR_DEVICE, "CUDA error in <op>: <reason>"); LM_OK if none. */
lm_status lm_cuda_ctx_check(lm_cuda_ctx *ctx);
/* Whether a failure is kept and not yet reported; it stays kept (for code,
 * like the op profiler, that must stop without taking the model's error). */
int lm_cuda_ctx_failed(const lm_cuda_ctx *ctx);
/* Waits for the stream, then reports like lm_cuda_ctx_check. */
lm_status lm_cuda_ctx_sync(lm_cuda_ctx *ctx);
/* Keeps a failure found outside the ops (first one wins).  For backends. */
void lm_cuda_ctx_keep_error(lm_cuda_ctx *ctx, const char *op, const char *reason);

/* ---- embeddings ----------------------------------------------------------------- */
void lm_cuda_embedding_forward(lm_cuda_ctx *ctx, float *out, const int32_t *ids, const int32_t *type_ids,
                               const float *wte, const float *wpe, const float *wtt, int B, int T, int C);
/* Deterministic: each table row sums its occurrences in (b,t) order, no atomics. */
void lm_cuda_embedding_backward(lm_cuda_ctx *ctx, float *dwte, float *dwpe, float *dwtt, const float *dout,
                                const int32_t *ids, const int32_t *type_ids, int B, int T, int C);

/* ---- layer norm --------------------------------------------------------------------- */
/* mean/rstd may be NULL (inference). */
void lm_cuda_layernorm_forward(lm_cuda_ctx *ctx, float *out, float *mean, float *rstd, const float *inp,
                               const float *weight, const float *bias, int N, int C, float eps);
void lm_cuda_layernorm_backward(lm_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, const float *mean, const float *rstd,
                                int N, int C);

/* ---- linear (cuBLASLt) ------------------------------------------------------------------ */
void lm_cuda_matmul_forward(lm_cuda_ctx *ctx, float *out, const float *inp, const float *weight, const float *bias,
                            int N, int IC, int OC, lm_weight_layout layout);
void lm_cuda_matmul_backward(lm_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, int N, int IC, int OC,
                             lm_weight_layout layout);

/* ---- attention (cuBLAS batched GEMMs + softmax kernels) --------------------------------- */
void lm_cuda_attention_forward(lm_cuda_ctx *ctx, float *out, float *preatt, float *att, const float *q,
                               const float *k, const float *v, int stride, const int32_t *key_mask, int causal,
                               int B, int T, int C, int NH, float dropout_p, const lm_step_state *key, int site);
/* The dropout mask is read back from att (A = P ⊙ keep/(1-p)): key and site
 * are not read; they keep the backend op's argument list. */
void lm_cuda_attention_backward(lm_cuda_ctx *ctx, float *dq, float *dk, float *dv, float *scratch,
                                const float *dout, const float *preatt, const float *att, const float *q,
                                const float *k, const float *v, int stride, int B, int T, int C, int NH,
                                float dropout_p, const lm_step_state *key, int site);

/* ---- pointwise ------------------------------------------------------------------------------ */
void lm_cuda_gelu_forward(lm_cuda_ctx *ctx, float *out, const float *inp, size_t n, int approx_tanh);
void lm_cuda_gelu_backward(lm_cuda_ctx *ctx, float *dinp, const float *inp, const float *dout, size_t n,
                           int approx_tanh);
/* key: device memory; may be NULL when p <= 0 or p >= 1 (no draw), else a
 * failure is kept ("dropout_forward: ... no step state"). */
void lm_cuda_dropout_forward(lm_cuda_ctx *ctx, float *out, const float *inp, size_t n, float p,
                             const lm_step_state *key, int site);
void lm_cuda_dropout_backward(lm_cuda_ctx *ctx, float *dinp, const float *dout, size_t n, float p,
                              const lm_step_state *key, int site);
void lm_cuda_residual_forward(lm_cuda_ctx *ctx, float *out, const float *a, const float *b, size_t n);
void lm_cuda_accumulate(lm_cuda_ctx *ctx, float *dst, const float *src, size_t n);

/* ---- loss ----------------------------------------------------------------------------------- */
/* losses[i] as in lm_cpu_crossentropy_forward (a label outside [0, V), the
 * ignore index -100 included, scores nothing); sum them with lm_cuda_sum. */
void lm_cuda_crossentropy_forward(lm_cuda_ctx *ctx, float *losses, const float *logits, const int32_t *labels,
                                  int N, int V);
void lm_cuda_crossentropy_backward(lm_cuda_ctx *ctx, float *dlogits, const float *logits, const int32_t *labels,
                                   float dloss, int N, int V);

/* ---- reductions ------------------------------------------------------------------------------- */
/* *out_device = Σ x (resp. Σ x²) accumulated in double, deterministic (a
 * fixed grid from n: not the CPU's order, so equal to lm_cpu_sum /
 * lm_cpu_sum_squares within double rounding, not bit for bit). */
void lm_cuda_sum(lm_cuda_ctx *ctx, double *out_device, const float *x, size_t n);
void lm_cuda_sum_squares(lm_cuda_ctx *ctx, double *out_device, const float *x, size_t n);
/* *out (device) = (float)(Σ losses[0..n) / (double)count): lm_cuda_sum into
 * the context's device double, then one thread divides and rounds. */
void lm_cuda_loss_mean(lm_cuda_ctx *ctx, float *out, const float *losses, size_t n, int64_t count);

/* ---- the device side of a training step (lmcore/device.h; twins of kernels/cpu/step.c) ---------
 * `state` is device memory.  Each is one or two kernels on the stream, no
 * wait.  The scalar updates are one thread each with the CPU's operations in
 * the CPU's order (explicit round-to-nearest intrinsics: no FMA
 * contraction), so they match lm_cpu_step_* bit for bit given the same
 * inputs; step_clip's sum of squares is lm_cuda_sum_squares (see above). */
void lm_cuda_step_micro_batch_end(lm_cuda_ctx *ctx, lm_step_state *state, double num, double den, int scored);
void lm_cuda_step_clip(lm_cuda_ctx *ctx, lm_step_state *state, const float *grads, size_t n);
void lm_cuda_step_schedule(lm_cuda_ctx *ctx, lm_step_state *state);
void lm_cuda_step_finish(lm_cuda_ctx *ctx, lm_step_state *state);

/* ---- incremental decoding (key/value cache) ------------------------------------------------ */
void lm_cuda_kv_cache_append(lm_cuda_ctx *ctx, float *k_cache, float *v_cache, const float *k, const float *v,
                             int stride, int pos, int n, int C);
void lm_cuda_attention_cached_forward(lm_cuda_ctx *ctx, float *out, float *att, const float *q, const float *k_cache,
                                      const float *v_cache, int stride, int pos, int n, int C, int NH);
/* cuBLASLt already runs a one-row product well: this is lm_cuda_matmul_forward. */
void lm_cuda_matvec_forward(lm_cuda_ctx *ctx, float *out, const float *inp, const float *weight, const float *bias,
                            int N, int IC, int OC, lm_weight_layout layout);

#ifdef __cplusplus
}
#endif
#endif

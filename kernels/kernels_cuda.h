/* lmcore kernels — CUDA twins of the ops in backend_ops.def.
 *
 * Every op of the list has an lm_cuda_<op>(ctx, args...) here, declared
 * from the list: the op's arguments in the same order and with the same
 * semantics as its CPU reference (outputs first, backward ops accumulate,
 * dropout masks from lmcore/rng.h), preceded by a context.  The context
 * carries the stream, the cuBLASLt/cuBLAS handles and their workspaces, a
 * scratch area for deterministic reductions and the first failure of an op
 * (ops return nothing so that a CUDA graph can capture them; the failure is
 * reported by lm_cuda_ctx_check / lm_cuda_ctx_sync).
 *
 * All pointers are device pointers.  Ops are asynchronous on the context's
 * stream.  The calling thread must have the context's device current (the
 * context sets it when created and in lm_cuda_ctx_sync; ops do not).
 *
 * Where the CUDA twin differs from the CPU reference (the list's
 * LM_OP_CPU_ADAPTED ops, whose CUDA twins take the op's arguments):
 *   - lm_cuda_crossentropy_forward returns nothing: it writes the per-row
 *     losses, and lm_cuda_loss_mean adds them up on the device;
 *   - dropout (lm_cuda_dropout_*, attention's) takes the backend op's
 *     (const lm_step_state *key, int site) instead of the CPU's (seed,
 *     stream): the kernels read key->seed and key->micro_batch from device
 *     memory and draw with stream lm_dropout_stream(micro_batch, site), so a
 *     captured graph replays with the key of the moment, not the key of the
 *     capture.  The masks are the CPU's for (seed, lm_dropout_stream(...)).
 * The host reads (sum_to_host, sum_squares_to_host) have no twin: the
 * backend runs lm_cuda_sum / lm_cuda_sum_squares into device memory
 * (deterministic two-stage reductions) and downloads the result.  The step
 * twins (lm_cuda_step_*, lm_cuda_loss_mean) take a device lm_step_state /
 * device output and only queue kernels.
 *
 * Precision (lm_precision of backend.h): FP32 runs true fp32 GEMMs; TF32 uses
 * CUBLAS_COMPUTE_32F_FAST_TF32; BF16 currently means fp32 storage with bf16
 * tensor-core math in the GEMMs (CUBLAS_COMPUTE_32F_FAST_16BF); bf16 storage
 * is written for the classifier's logits only (the *_bf16 ops, logits_dtype,
 * NOTES.md); the other activations stay fp32.  Non-GEMM kernels compute in
 * fp32 always.
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

/* ---- the ops of backend_ops.def (semantics there), the context first ---- */
#define LM_OP(name, params, args, profile_key) void lm_cuda_##name(lm_cuda_ctx *ctx, LM_UNPAREN params);
#define LM_OP_CPU_ADAPTED LM_OP
#define LM_OP_HOST_READ(name, params, args, profile_key)
#include "backend_ops.def"

/* ---- reductions: what sum_to_host, sum_squares_to_host, loss_mean and step_clip add up with ---- */
/* *out_device = Σ x (resp. Σ x²) accumulated in double, deterministic (a
 * fixed grid from n: not the CPU's order, so equal to lm_cpu_sum /
 * lm_cpu_sum_squares within double rounding, not bit for bit). */
void lm_cuda_sum(lm_cuda_ctx *ctx, double *out_device, const float *x, size_t n);
void lm_cuda_sum_squares(lm_cuda_ctx *ctx, double *out_device, const float *x, size_t n);

#ifdef __cplusplus
}
#endif
#endif

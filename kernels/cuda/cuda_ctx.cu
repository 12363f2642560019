/* The CUDA context shared by every lm_cuda_* op: device, stream, cuBLAS(Lt)
 * handles and workspaces, reduction scratch, and the first failure kept
 * (ops return nothing, so that a CUDA graph can capture them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"
#include "gemm.cuh"
#include "lmcore/log.h"
#include "lmcore/status.h"

/* 32 MiB: what cuBLASLt's fastest Hopper kernels ask for at most. */
static const size_t LM_CUDA_LT_WORKSPACE_BYTES = (size_t)32 << 20;
static const size_t LM_CUDA_BLAS_WORKSPACE_BYTES = (size_t)8 << 20;
/* Partial sums of column reductions (32 chunks x 2 x 50257-wide rows fit)
 * and of the sum/sum-of-squares first stage. */
static const size_t LM_CUDA_SCRATCH_BYTES = (size_t)16 << 20;

static void keep_error(lm_cuda_ctx *ctx, const char *op, const char *reason) {
    if (ctx->has_error) return; /* the first failure explains the rest */
    ctx->has_error = 1;
    snprintf(ctx->error_op, sizeof ctx->error_op, "%s", op);
    snprintf(ctx->error_reason, sizeof ctx->error_reason, "%s", reason);
}

extern "C" void lm_cuda_ctx_keep_error(lm_cuda_ctx *ctx, const char *op, const char *reason) {
    keep_error(ctx, op, reason);
}

void lm_cuda_check_launch(lm_cuda_ctx *ctx, const char *op) {
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) keep_error(ctx, op, cudaGetErrorString(err));
}

int lm_cuda_keep_cuda(lm_cuda_ctx *ctx, const char *op, cudaError_t err) {
    if (err == cudaSuccess) return 0;
    (void)cudaGetLastError(); /* clear it so that the next launch check does not repeat it */
    keep_error(ctx, op, cudaGetErrorString(err));
    return 1;
}

int lm_cuda_keep_cublas(lm_cuda_ctx *ctx, const char *op, cublasStatus_t status) {
    if (status == CUBLAS_STATUS_SUCCESS) return 0;
    char reason[200];
    snprintf(reason, sizeof reason, "cuBLAS %s (%s)", cublasGetStatusName(status), cublasGetStatusString(status));
    keep_error(ctx, op, reason);
    return 1;
}

cublasComputeType_t lm_cuda_compute_type(const lm_cuda_ctx *ctx) {
    switch (ctx->precision) {
    case LM_PRECISION_TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case LM_PRECISION_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    case LM_PRECISION_FP32:
    default: return CUBLAS_COMPUTE_32F;
    }
}

static lm_status device_error(const char *what, cudaError_t err) {
    (void)cudaGetLastError();
    return lm_error_set(LM_ERR_DEVICE, "CUDA error in %s: %s", what, cudaGetErrorString(err));
}

static lm_status alloc_workspace(void **ptr, size_t bytes, const char *what) {
    cudaError_t err = cudaMalloc(ptr, bytes);
    if (err == cudaSuccess) return LM_OK;
    (void)cudaGetLastError();
    *ptr = NULL;
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    return lm_error_set(LM_ERR_NOMEM, "out of GPU memory allocating the %s: %.1f MiB requested, %.1f MiB free of %.1f MiB",
                        what, bytes / 1048576.0, free_bytes / 1048576.0, total_bytes / 1048576.0);
}

extern "C" lm_status lm_cuda_ctx_create(lm_cuda_ctx **out, int device_index, lm_precision precision) {
    *out = NULL;
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return lm_error_set(LM_ERR_DEVICE, "no usable CUDA device: %s (cudaGetDeviceCount); use device=cpu",
                            cudaGetErrorString(err));
    }
    if (count == 0) return lm_error_set(LM_ERR_DEVICE, "no CUDA device found; use device=cpu");
    if (device_index < 0 || device_index >= count)
        return lm_error_set(LM_ERR_DEVICE, "CUDA device %d does not exist (this machine has %d: cuda:0..cuda:%d)",
                            device_index, count, count - 1);
    if (precision != LM_PRECISION_FP32 && precision != LM_PRECISION_TF32 && precision != LM_PRECISION_BF16)
        return lm_error_set(LM_ERR_INVALID, "unknown precision %d for the CUDA backend", (int)precision);
    if ((err = cudaSetDevice(device_index)) != cudaSuccess) return device_error("cudaSetDevice", err);

    lm_cuda_ctx *ctx = (lm_cuda_ctx *)calloc(1, sizeof *ctx);
    if (!ctx) return lm_error_set(LM_ERR_NOMEM, "out of host memory creating the CUDA context");
    ctx->device = device_index;
    ctx->precision = precision;
    lm_status status = LM_OK;
    cublasStatus_t cs;
    if ((err = cudaDeviceGetAttribute(&ctx->sm_count, cudaDevAttrMultiProcessorCount, device_index)) != cudaSuccess) {
        status = device_error("cudaDeviceGetAttribute", err);
        goto fail;
    }
    if ((err = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        status = device_error("cudaStreamCreate", err);
        goto fail;
    }
    if ((cs = cublasLtCreate(&ctx->lt)) != CUBLAS_STATUS_SUCCESS) {
        status = lm_error_set(LM_ERR_DEVICE, "cuBLASLt could not start: %s", cublasGetStatusString(cs));
        goto fail;
    }
    if ((cs = cublasCreate(&ctx->blas)) != CUBLAS_STATUS_SUCCESS) {
        status = lm_error_set(LM_ERR_DEVICE, "cuBLAS could not start: %s", cublasGetStatusString(cs));
        goto fail;
    }
    LM_CHECK(alloc_workspace(&ctx->lt_workspace, LM_CUDA_LT_WORKSPACE_BYTES, "cuBLASLt workspace"));
    ctx->lt_workspace_bytes = LM_CUDA_LT_WORKSPACE_BYTES;
    LM_CHECK(alloc_workspace(&ctx->blas_workspace, LM_CUDA_BLAS_WORKSPACE_BYTES, "cuBLAS workspace"));
    ctx->blas_workspace_bytes = LM_CUDA_BLAS_WORKSPACE_BYTES;
    LM_CHECK(alloc_workspace(&ctx->scratch, LM_CUDA_SCRATCH_BYTES, "reduction scratch"));
    ctx->scratch_bytes = LM_CUDA_SCRATCH_BYTES;
    LM_CHECK(alloc_workspace((void **)&ctx->sum_result, sizeof(double), "reduction result"));
    /* Our own workspace keeps cuBLAS from allocating during graph capture. */
    if ((cs = cublasSetStream(ctx->blas, ctx->stream)) != CUBLAS_STATUS_SUCCESS ||
        (cs = cublasSetWorkspace(ctx->blas, ctx->blas_workspace, ctx->blas_workspace_bytes)) !=
            CUBLAS_STATUS_SUCCESS ||
        (cs = cublasSetPointerMode(ctx->blas, CUBLAS_POINTER_MODE_HOST)) != CUBLAS_STATUS_SUCCESS) {
        status = lm_error_set(LM_ERR_DEVICE, "cuBLAS setup failed: %s", cublasGetStatusString(cs));
        goto fail;
    }
    *out = ctx;
    return LM_OK;
fail:
    lm_cuda_ctx_destroy(ctx);
    return status;
}

extern "C" void lm_cuda_ctx_destroy(lm_cuda_ctx *ctx) {
    if (!ctx) return;
    cudaSetDevice(ctx->device);
    if (ctx->stream) cudaStreamSynchronize(ctx->stream);
    lm_cuda_gemm_plans_free(ctx);
    lm_cuda_gemm_pointer_arrays_free(ctx);
    lm_cuda_embedding_sort_free(ctx);
    lm_cuda_attention_widened_free(ctx);
    if (ctx->blas) cublasDestroy(ctx->blas);
    if (ctx->lt) cublasLtDestroy(ctx->lt);
    cudaFree(ctx->lt_workspace);
    cudaFree(ctx->blas_workspace);
    cudaFree(ctx->scratch);
    cudaFree(ctx->sum_result);
    if (ctx->stream) cudaStreamDestroy(ctx->stream);
    (void)cudaGetLastError();
    free(ctx);
}

extern "C" cudaStream_t lm_cuda_ctx_stream(const lm_cuda_ctx *ctx) { return ctx->stream; }
extern "C" int lm_cuda_ctx_device(const lm_cuda_ctx *ctx) { return ctx->device; }
extern "C" lm_precision lm_cuda_ctx_precision(const lm_cuda_ctx *ctx) { return ctx->precision; }

extern "C" lm_status lm_cuda_ctx_check(lm_cuda_ctx *ctx) {
    /* Launch-configuration errors not yet seen by an op's own check. */
    lm_cuda_check_launch(ctx, "a queued kernel");
    if (!ctx->has_error) return LM_OK;
    ctx->has_error = 0;
    return lm_error_set(LM_ERR_DEVICE, "CUDA error in %s: %s", ctx->error_op, ctx->error_reason);
}

extern "C" int lm_cuda_ctx_failed(const lm_cuda_ctx *ctx) { return ctx->has_error; }

extern "C" lm_status lm_cuda_ctx_sync(lm_cuda_ctx *ctx) {
    cudaError_t err = cudaSetDevice(ctx->device);
    if (err == cudaSuccess) err = cudaStreamSynchronize(ctx->stream);
    /* An asynchronous fault surfaces here; name it unless an op already failed. */
    if (err != cudaSuccess) lm_cuda_keep_cuda(ctx, "a kernel (reported at stream synchronize)", err);
    return lm_cuda_ctx_check(ctx);
}

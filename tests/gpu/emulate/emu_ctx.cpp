/* The context helpers of kernels/cuda/cuda_ctx.cu that the kernels' host
 * side calls (failure keeping, launch checks), with the real lm_cuda_ctx
 * of cuda_common.cuh, and the emulated context the tests hand to the ops:
 * its scratch as large as cuda_ctx.cu makes it (the size is read from
 * that file at build time: emu_constants.h), in guarded host memory. */
#include <stdio.h>
#include <string.h>

#include "cuda_common.cuh"
#include "emu_constants.h"
#include "emulate_util.h"

static void keep_error(lm_cuda_ctx *ctx, const char *op, const char *reason) {
    if (ctx->has_error) return; /* the first failure wins, as cuda_ctx.cu's */
    ctx->has_error = 1;
    snprintf(ctx->error_op, sizeof ctx->error_op, "%s", op);
    snprintf(ctx->error_reason, sizeof ctx->error_reason, "%s", reason);
}

extern "C" void lm_cuda_ctx_keep_error(lm_cuda_ctx *ctx, const char *op, const char *reason) {
    keep_error(ctx, op, reason);
}

void lm_cuda_check_launch(lm_cuda_ctx *ctx, const char *op) {
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) keep_error(ctx, op, cudaGetErrorString(err));
}

int lm_cuda_keep_cuda(lm_cuda_ctx *ctx, const char *op, cudaError_t err) {
    if (err == cudaSuccess) return 0;
    (void)cudaGetLastError();
    keep_error(ctx, op, cudaGetErrorString(err));
    return 1;
}

lm_cuda_ctx *emu_ctx_create(void) {
    lm_cuda_ctx *ctx = new lm_cuda_ctx();
    memset((void *)ctx, 0, sizeof *ctx);
    ctx->scratch = emu_alloc(EMU_CUDA_SCRATCH_BYTES, 0);
    ctx->scratch_bytes = EMU_CUDA_SCRATCH_BYTES;
    ctx->sum_result = (double *)emu_alloc(sizeof(double), 0);
    return ctx;
}

void emu_ctx_destroy(lm_cuda_ctx *ctx) {
    lm_cuda_embedding_sort_free(ctx); /* embedding_backward's sort scratch */
    emu_free(ctx->scratch);
    emu_free(ctx->sum_result);
    delete ctx;
}

size_t emu_ctx_scratch_bytes(const lm_cuda_ctx *ctx) { return ctx->scratch_bytes; }
void emu_ctx_set_scratch_bytes(lm_cuda_ctx *ctx, size_t bytes) { ctx->scratch_bytes = bytes; }
void emu_ctx_poison_scratch(lm_cuda_ctx *ctx) { memset(ctx->scratch, 0xff, EMU_CUDA_SCRATCH_BYTES); }

int emu_ctx_take_error(lm_cuda_ctx *ctx, char *message, size_t size) {
    if (!ctx->has_error) return 0;
    snprintf(message, size, "CUDA error in %s: %s", ctx->error_op, ctx->error_reason);
    ctx->has_error = 0;
    return 1;
}

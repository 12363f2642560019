/* Σ x and Σ x² over a buffer, in double, deterministic: a first stage of a
 * fixed number of blocks (a function of n only, never of the GPU) writes
 * one partial per block into the context's scratch, a second single block
 * adds them in a fixed order and writes the result to device memory.
 * The batch's mean loss (loss_mean) is Σ losses into the context's device
 * double, then one thread that divides: the host never reads the loss. */
#include "cuda_common.cuh"

#define LM_REDUCE_MAX_BLOCKS 1024
#define LM_REDUCE_PER_THREAD 16

template <bool SQUARE> __global__ void lm_reduce_partial_kernel(double *partial, const float *x, size_t n) {
    __shared__ double shared[32];
    double acc = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const double v = (double)x[i];
        acc += SQUARE ? v * v : v;
    }
    acc = lm_block_sum<double>(acc, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void lm_reduce_finish_kernel(double *out, const double *partial, int count) {
    __shared__ double shared[32];
    double acc = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
    acc = lm_block_sum<double>(acc, shared);
    if (threadIdx.x == 0) *out = acc;
}

template <bool SQUARE> static void reduce(lm_cuda_ctx *ctx, const char *op, double *out_device, const float *x, size_t n) {
    if (n == 0) {
        lm_cuda_keep_cuda(ctx, op, cudaMemsetAsync(out_device, 0, sizeof *out_device, ctx->stream));
        return;
    }
    size_t blocks = (n + (size_t)LM_CUDA_BLOCK * LM_REDUCE_PER_THREAD - 1) / ((size_t)LM_CUDA_BLOCK * LM_REDUCE_PER_THREAD);
    if (blocks > LM_REDUCE_MAX_BLOCKS) blocks = LM_REDUCE_MAX_BLOCKS;
    double *partial = (double *)ctx->scratch; /* 8 KiB of the scratch area */
    lm_reduce_partial_kernel<SQUARE><<<(unsigned)blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(partial, x, n);
    lm_reduce_finish_kernel<<<1, LM_CUDA_BLOCK, 0, ctx->stream>>>(out_device, partial, (int)blocks);
    lm_cuda_check_launch(ctx, op);
}

extern "C" void lm_cuda_sum(lm_cuda_ctx *ctx, double *out_device, const float *x, size_t n) {
    reduce<false>(ctx, "sum", out_device, x, n);
}

extern "C" void lm_cuda_sum_squares(lm_cuda_ctx *ctx, double *out_device, const float *x, size_t n) {
    reduce<true>(ctx, "sum_squares", out_device, x, n);
}

/* lm_cpu_loss_mean's arithmetic: the double sum divided by the count in
 * double (IEEE division, no contraction possible), rounded to float. */
__global__ void lm_loss_mean_kernel(float *out, const double *sum, const int64_t *count) {
    *out = (float)__ddiv_rn(*sum, (double)*count);
}

/* count is on the device (the batch's scored labels, uploaded with it), so
 * that a captured graph reads each batch's. */
extern "C" void lm_cuda_loss_mean(lm_cuda_ctx *ctx, float *out, const float *losses, size_t n,
                                  const int64_t *count) {
    reduce<false>(ctx, "loss_mean", ctx->sum_result, losses, n);
    lm_loss_mean_kernel<<<1, 1, 0, ctx->stream>>>(out, ctx->sum_result, count);
    lm_cuda_check_launch(ctx, "loss_mean");
}

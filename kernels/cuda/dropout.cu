/* Inverted dropout with counter-based masks, the CPU twin's semantics
 * (kernels/cpu/dropout.c, dropout_mask.h): element i is kept when
 * lm_rng_uniform(seed, stream, i) >= p and then scaled by 1/(1-p); p <= 0
 * copies, p >= 1 drops everything (no 0·inf).  Backward redraws the mask. */
#include "cuda_common.cuh"
#include "lmcore/rng.h"

/* 1/(1-p) for a kept element, 0 for a dropped one (0 < p < 1). */
__device__ __forceinline__ float lm_dropout_multiplier(uint64_t seed, uint64_t stream, uint64_t i, float p,
                                                       float scale) {
    return lm_rng_uniform(seed, stream, i) >= p ? scale : 0.0f;
}

__global__ void lm_dropout_forward_kernel(float *out, const float *inp, size_t n, float p, float scale, uint64_t seed,
                                          uint64_t stream) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = inp[i] * lm_dropout_multiplier(seed, stream, i, p, scale);
}

__global__ void lm_dropout_backward_kernel(float *dinp, const float *dout, size_t n, float p, float scale,
                                           uint64_t seed, uint64_t stream) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dinp[i] += dout[i] * lm_dropout_multiplier(seed, stream, i, p, scale);
}

extern "C" void lm_cuda_dropout_forward(lm_cuda_ctx *ctx, float *out, const float *inp, size_t n, float p,
                                        uint64_t seed, uint64_t stream) {
    if (n == 0) return;
    if (p <= 0.0f) {
        if (out != inp)
            lm_cuda_keep_cuda(ctx, "dropout_forward",
                              cudaMemcpyAsync(out, inp, n * sizeof *out, cudaMemcpyDeviceToDevice, ctx->stream));
        return;
    }
    if (p >= 1.0f) {
        lm_cuda_keep_cuda(ctx, "dropout_forward", cudaMemsetAsync(out, 0, n * sizeof *out, ctx->stream));
        return;
    }
    const float scale = 1.0f / (1.0f - p);
    lm_dropout_forward_kernel<<<lm_cuda_grid_for(n, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(out, inp, n, p,
                                                                                                    scale, seed, stream);
    lm_cuda_check_launch(ctx, "dropout_forward");
}

extern "C" void lm_cuda_dropout_backward(lm_cuda_ctx *ctx, float *dinp, const float *dout, size_t n, float p,
                                         uint64_t seed, uint64_t stream) {
    if (n == 0) return;
    if (p <= 0.0f) {
        lm_cuda_accumulate(ctx, dinp, dout, n);
        return;
    }
    if (p >= 1.0f) return;
    const float scale = 1.0f / (1.0f - p);
    lm_dropout_backward_kernel<<<lm_cuda_grid_for(n, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(
        dinp, dout, n, p, scale, seed, stream);
    lm_cuda_check_launch(ctx, "dropout_backward");
}

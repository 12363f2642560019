/* Element-wise sums: residual connections, and gradient merges (out may be
 * a: dinp += dout is lm_cuda_residual_forward(ctx, dinp, dinp, dout)). */
#include "cuda_common.cuh"

__global__ void lm_residual_forward_kernel(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}

extern "C" void lm_cuda_residual_forward(lm_cuda_ctx *ctx, float *out, const float *a, const float *b, size_t n) {
    if (n == 0) return;
    lm_residual_forward_kernel<<<lm_cuda_grid_for(n, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(out, a, b, n);
    lm_cuda_check_launch(ctx, "residual_forward");
}

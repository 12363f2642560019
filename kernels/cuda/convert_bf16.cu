/* convert_to_bf16: out[i] = bf16(in[i]) by kernels/bf16.h's rule (torch's:
 * round to nearest even, NaN -> 0x7FC0), as the CPU twin. */
#include "bf16.h"
#include "cuda_common.cuh"

__global__ void lm_convert_to_bf16_kernel(uint16_t *out, const float *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = lm_bf16_rne(__float_as_uint(in[i]));
}

extern "C" void lm_cuda_convert_to_bf16(lm_cuda_ctx *ctx, uint16_t *out, const float *in, size_t n) {
    if (n == 0) return;
    lm_convert_to_bf16_kernel<<<lm_cuda_grid_for(n, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(out, in, n);
    lm_cuda_check_launch(ctx, "convert_to_bf16");
}

/* GELU and its gradient on fp32 storage, both Hugging Face flavours
 * (gelu_math.cuh: the CPU twin's formulas, kernels/cpu/gelu.c); float4
 * loads where the pointers allow (pointwise_map.cuh).  The bf16-storage
 * twins are gelu_bf16.cu. */
#include "gelu_math.cuh"
#include "pointwise_map.cuh"

extern "C" void lm_cuda_gelu_forward(lm_cuda_ctx *ctx, float *out, const float *inp, size_t n, int approx_tanh) {
    lm_pointwise_map(ctx, "gelu_forward", out, inp, (const float *)NULL, n, lm_gelu_forward_op{approx_tanh});
}

extern "C" void lm_cuda_gelu_backward(lm_cuda_ctx *ctx, float *dinp, const float *inp, const float *dout, size_t n,
                                      int approx_tanh) {
    lm_pointwise_map(ctx, "gelu_backward", dinp, inp, dout, n, lm_gelu_backward_op{approx_tanh});
}

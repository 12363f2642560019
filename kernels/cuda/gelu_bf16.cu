/* GELU and its gradient on bf16 storage (gelu_forward_bf16,
 * gelu_backward_bf16: BERT's exact-erf GELU, and GPT-2's when it is
 * rebuilt): gelu.cu's maps with uint16_t (bf16, kernels/bf16.h) inputs
 * and outputs.  The arithmetic is gelu_math.cuh's, the fp32 kernels' own,
 * on the widened values; each output is rounded once (act_storage.cuh's
 * rounding, torch's), so an output is the fp32 kernel's on the widened
 * input, rounded.  dout stays fp32 (matmul_backward_bf16's dinp).  Four
 * elements per access (8 bytes of bf16, 16 of fp32) where every pointer is
 * aligned for it (pointwise_map.cuh); dinp must not alias dout (the types
 * differ). */
#include "gelu_math.cuh"
#include "pointwise_map.cuh"

extern "C" void lm_cuda_gelu_forward_bf16(lm_cuda_ctx *ctx, uint16_t *out, const uint16_t *inp, size_t n,
                                          int approx_tanh) {
    lm_pointwise_map(ctx, "gelu_forward_bf16", out, inp, (const float *)NULL, n, lm_gelu_forward_op{approx_tanh});
}

extern "C" void lm_cuda_gelu_backward_bf16(lm_cuda_ctx *ctx, uint16_t *dinp, const uint16_t *inp, const float *dout,
                                           size_t n, int approx_tanh) {
    lm_pointwise_map(ctx, "gelu_backward_bf16", dinp, inp, dout, n, lm_gelu_backward_op{approx_tanh});
}

/* The linear layers on bf16 inputs (matmul_forward_bf16,
 * matmul_forward_bf16_to_fp32, matmul_backward_bf16): matmul.cu's mapping
 * of row-major buffers onto column-major GEMMs, with bf16 A and B
 * (lm_cuda_gemm_bf16: cuBLASLt, CUDA_R_16BF, true fp32 compute).  The
 * classifier's forward stores bf16 logits, the bias in the epilogue before
 * the one rounding; the feed-forward block's c_proj (_to_fp32) stores fp32
 * (C CUDA_R_32F, no rounding: the residual stream is fp32), the bias in
 * the epilogue too.  The backward's dinp and dweight are fp32 (C
 * CUDA_R_32F), dbias the deterministic column reduction of the widened
 * dout. */
#include "bf16.h"
#include "column_reduce.cuh"
#include "gemm.cuh"

extern "C" void lm_cuda_matmul_forward_bf16(lm_cuda_ctx *ctx, uint16_t *out, const uint16_t *inp,
                                            const uint16_t *weight, const float *bias, int N, int IC, int OC,
                                            lm_weight_layout layout) {
    const bool in_out = layout == LM_W_IN_OUT;
    lm_cuda_gemm_bf16(ctx, "matmul_forward_bf16", !in_out, false, OC, N, IC, weight, in_out ? OC : IC, inp, IC, 0.0f,
                      out, true, OC, bias);
}

extern "C" void lm_cuda_matmul_forward_bf16_to_fp32(lm_cuda_ctx *ctx, float *out, const uint16_t *inp,
                                                    const uint16_t *weight, const float *bias, int N, int IC, int OC,
                                                    lm_weight_layout layout) {
    const bool in_out = layout == LM_W_IN_OUT;
    lm_cuda_gemm_bf16(ctx, "matmul_forward_bf16_to_fp32", !in_out, false, OC, N, IC, weight, in_out ? OC : IC, inp,
                      IC, 0.0f, out, false, OC, bias);
}

extern "C" void lm_cuda_matmul_backward_bf16(lm_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                             const uint16_t *dout, const uint16_t *inp, const uint16_t *weight, int N,
                                             int IC, int OC, lm_weight_layout layout, lm_grad_store dinp_store,
                                             lm_grad_store dparam_store) {
    const bool in_out = layout == LM_W_IN_OUT;
    const float dinp_beta = dinp_store == LM_GRAD_WRITE ? 0.0f : 1.0f;
    const float dweight_beta = dparam_store == LM_GRAD_WRITE ? 0.0f : 1.0f;
    if (dinp)
        lm_cuda_gemm_bf16(ctx, "matmul_backward_bf16 (dinp)", in_out, false, IC, N, OC, weight, in_out ? OC : IC,
                          dout, OC, dinp_beta, dinp, false, IC, NULL);
    if (dweight) {
        if (in_out) {
            lm_cuda_gemm_bf16(ctx, "matmul_backward_bf16 (dweight)", false, true, OC, IC, N, dout, OC, inp, IC,
                              dweight_beta, dweight, false, OC, NULL);
        } else {
            lm_cuda_gemm_bf16(ctx, "matmul_backward_bf16 (dweight)", false, true, IC, OC, N, inp, IC, dout, OC,
                              dweight_beta, dweight, false, IC, NULL);
        }
    }
    if (dbias) {
        lm_column_outputs<1> outs = {{dbias}, dparam_store == LM_GRAD_WRITE};
        lm_stored_column<uint16_t> value = {dout, OC};
        lm_column_reduce<1>(ctx, "matmul_backward_bf16 (dbias)", outs, value, N, OC);
    }
}

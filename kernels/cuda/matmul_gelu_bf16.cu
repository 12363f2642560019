/* GPT-2's c_fc and its tanh GELU on bf16 storage (matmul_gelu_forward_bf16):
 * matmul_gelu.cu's fused GEMM with bf16 inputs, outputs and aux matrix
 * (lm_cuda_gemm_gelu_bf16: CUBLASLT_EPILOGUE_GELU_AUX_BIAS, true fp32
 * compute, fp32 bias).  The epilogue adds the bias to the fp32 product p,
 * writes pre_gelu = bf16(p) and out = bf16(gelu_tanh(p)): the GELU reads
 * the unrounded product, as the op's contract and its CPU twin say.
 *
 * Where cuBLASLt cannot (pre_gelu not 16-byte aligned, OC not a multiple of
 * 8, a bias not 16-byte aligned, no algorithm), the two unfused bf16 ops
 * run: matmul_forward_bf16 into pre_gelu, then gelu_forward_bf16 on it.
 * pre_gelu is the same (one rounding, unless that GEMM's own fallback adds
 * the bias in a second pass: matmul_bf16.cu), but out is then the GELU of
 * the ROUNDED product.  Before out's rounding the two differ by at most
 * max|gelu'|·|bf16(p) - p| <= 1.13·2^-8·|p|: for p >= 0 (gelu(p) >= p/2)
 * that is 2.26·2^-8·gelu(p), so out is within two bf16 steps of the
 * contract's; for p < 0 only the absolute bound holds (gelu(p) is small
 * there, and the difference may be many of its own steps).
 * NOTES_bf16_storage.md, point 8. */
#include "gemm.cuh"

extern "C" void lm_cuda_matmul_gelu_forward_bf16(lm_cuda_ctx *ctx, uint16_t *out, uint16_t *pre_gelu,
                                                 const uint16_t *inp, const uint16_t *weight, const float *bias, int N,
                                                 int IC, int OC, lm_weight_layout layout) {
    if (N <= 0 || OC <= 0) return;
    const bool in_out = layout == LM_W_IN_OUT;
    const int done = lm_cuda_gemm_gelu_bf16(ctx, "matmul_gelu_forward_bf16", !in_out, false, OC, N, IC, weight,
                                            in_out ? OC : IC, inp, IC, out, OC, bias, pre_gelu);
    if (done != 0) return; /* queued, or a failure kept */
    lm_cuda_matmul_forward_bf16(ctx, pre_gelu, inp, weight, bias, N, IC, OC, layout);
    lm_cuda_gelu_forward_bf16(ctx, out, pre_gelu, (size_t)N * (size_t)OC, 1);
}

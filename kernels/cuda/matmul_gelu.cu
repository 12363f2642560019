/* A linear layer with the tanh GELU in cuBLASLt's epilogue
 * (CUBLASLT_EPILOGUE_GELU_AUX_BIAS): one GEMM writes both the GELU output
 * and the pre-GELU values that backward needs, instead of a GEMM plus a
 * GELU kernel reading and writing [N, OC] again.  The layouts map as in
 * matmul.cu (out' = OC x N, bias per row).  Where cuBLASLt cannot (an aux
 * matrix not 16-byte aligned or OC not a multiple of 8, no algorithm for
 * the pointers) the two unfused ops run instead. */
#include "gemm.cuh"

extern "C" void lm_cuda_matmul_gelu_forward(lm_cuda_ctx *ctx, float *out, float *pre_gelu, const float *inp,
                                            const float *weight, const float *bias, int N, int IC, int OC,
                                            lm_weight_layout layout) {
    if (N <= 0 || OC <= 0) return;
    const bool in_out = layout == LM_W_IN_OUT;
    const int done = lm_cuda_gemm_gelu(ctx, "matmul_gelu_forward", !in_out, false, OC, N, IC, weight, in_out ? OC : IC,
                                       inp, IC, out, OC, bias, pre_gelu);
    if (done != 0) return; /* queued, or a failure kept */
    lm_cuda_matmul_forward(ctx, pre_gelu, inp, weight, bias, N, IC, OC, layout);
    lm_cuda_gelu_forward(ctx, out, pre_gelu, (size_t)N * (size_t)OC, 1);
}

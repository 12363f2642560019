/* The CUDA twin of lm_cpu_matvec_forward (kernels/cpu/matvec.c).  The CPU
 * needs a separate path for one-row products because OpenBLAS packs the
 * weight even for M = 1; cuBLASLt picks a suitable kernel for a one-row
 * GEMM by itself, so this is the ordinary matmul. */
#include "cuda_common.cuh"

extern "C" void lm_cuda_matvec_forward(lm_cuda_ctx *ctx, float *out, const float *inp, const float *weight,
                                       const float *bias, int N, int IC, int OC, lm_weight_layout layout) {
    lm_cuda_matmul_forward(ctx, out, inp, weight, bias, N, IC, OC, layout);
}

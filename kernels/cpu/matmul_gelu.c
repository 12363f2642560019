/* lmkernels — a linear layer followed by the tanh GELU: the CPU twin of
 * the CUDA op that puts the GELU in the GEMM's epilogue.  It is the
 * composition GPT-2 ran before (matmul_forward, gelu_forward), so the CPU
 * trains to the same bits. */
#include "kernels.h"

void lm_cpu_matmul_gelu_forward(float *out, float *pre_gelu, const float *inp, const float *weight, const float *bias,
                                int N, int IC, int OC, lm_weight_layout layout) {
    lm_cpu_matmul_forward(pre_gelu, inp, weight, bias, N, IC, OC, layout);
    lm_cpu_gelu_forward(out, pre_gelu, (size_t)N * (size_t)OC, 1);
}

/* lmkernels — a residual add (with dropout on the branch) and the LayerNorm
 * that reads it: the CPU twin of the fused CUDA kernel.
 *
 * It is the composition the architectures ran before the fusion
 * (dropout_forward, residual_forward, layernorm_forward), op for op, so the
 * CPU trains to the same bits as before; the dropped branch goes through
 * `residual` itself instead of a scratch buffer (a + d and d + a are the
 * same float). */
#include "kernels.h"

void lm_cpu_residual_layernorm_forward(float *residual, float *out, float *mean, float *rstd, const float *a,
                                       const float *branch, const float *weight, const float *bias, int N, int C,
                                       float eps, float p, uint64_t seed, uint64_t stream) {
    const size_t n = (size_t)N * (size_t)C;
    if (p > 0.0f) {
        lm_cpu_dropout_forward(residual, branch, n, p, seed, stream);
        lm_cpu_residual_forward(residual, a, residual, n);
    } else {
        /* No dropout: the architectures skipped the op (no copy). */
        lm_cpu_residual_forward(residual, a, branch, n);
    }
    lm_cpu_layernorm_forward(out, mean, rstd, residual, weight, bias, N, C, eps);
}

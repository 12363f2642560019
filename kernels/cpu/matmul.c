/* lmkernels — linear layers through BLAS, for both weight layouts:
 *   LM_W_IN_OUT  W[IC,OC] (Hugging Face Conv1D): out = inp · W
 *   LM_W_OUT_IN  W[OC,IC] (torch.nn.Linear):     out = inp · Wᵀ */
#include <string.h>

#include "cpu_internal.h"
#include "kernels.h"

void lm_cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                           int OC, lm_weight_layout layout) {
    float beta = 0.0f;
    if (bias) {
        /* The bias goes in first and the GEMM adds onto it (beta = 1): one
         * pass over `out` instead of a GEMM pass plus a bias pass. */
#pragma omp parallel for schedule(static) if ((long)N * OC >= LM_CPU_PARALLEL_MIN)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof *out);
        beta = 1.0f;
    }
    if (layout == LM_W_IN_OUT) {
        lm_cpu_sgemm(CblasNoTrans, CblasNoTrans, N, OC, IC, 1.0f, inp, IC, weight, OC, beta, out, OC);
    } else {
        lm_cpu_sgemm(CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, weight, IC, beta, out, OC);
    }
}

/* dbias is a sum over rows: split by column blocks, rows in order, so the
 * result is independent of the thread count. */
#define LM_MATMUL_BIAS_BLOCK 128

static void bias_backward(float *dbias, const float *dout, int N, int OC) {
    int blocks = (OC + LM_MATMUL_BIAS_BLOCK - 1) / LM_MATMUL_BIAS_BLOCK;
#pragma omp parallel for schedule(static) if ((long)N * OC >= LM_CPU_PARALLEL_MIN)
    for (int block = 0; block < blocks; block++) {
        int o0 = block * LM_MATMUL_BIAS_BLOCK;
        int o1 = o0 + LM_MATMUL_BIAS_BLOCK < OC ? o0 + LM_MATMUL_BIAS_BLOCK : OC;
        float acc[LM_MATMUL_BIAS_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *g = dout + (size_t)n * OC;
            for (int o = o0; o < o1; o++) acc[o - o0] += g[o];
        }
        for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
    }
}

void lm_cpu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int N, int IC, int OC, lm_weight_layout layout) {
    if (layout == LM_W_IN_OUT) {
        /* dinp[N,IC] += dout[N,OC] · W[IC,OC]ᵀ;  dW[IC,OC] += inp[N,IC]ᵀ · dout */
        if (dinp) lm_cpu_sgemm(CblasNoTrans, CblasTrans, N, IC, OC, 1.0f, dout, OC, weight, OC, 1.0f, dinp, IC);
        if (dweight) lm_cpu_sgemm(CblasTrans, CblasNoTrans, IC, OC, N, 1.0f, inp, IC, dout, OC, 1.0f, dweight, OC);
    } else {
        /* dinp[N,IC] += dout[N,OC] · W[OC,IC];  dW[OC,IC] += dout[N,OC]ᵀ · inp */
        if (dinp) lm_cpu_sgemm(CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
        if (dweight) lm_cpu_sgemm(CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
    }
    if (dbias) bias_backward(dbias, dout, N, OC);
}

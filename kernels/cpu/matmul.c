/* lmkernels — linear layers through BLAS, for both weight layouts:
 *   LM_W_IN_OUT  W[IC,OC] (Hugging Face Conv1D): out = inp · W
 *   LM_W_OUT_IN  W[OC,IC] (torch.nn.Linear):     out = inp · Wᵀ */
#include <string.h>

#include "cpu_internal.h"
#include "kernels.h"

typedef struct bias_job {
    float *out;
    const float *bias, *dout;
    int N, OC;
    int write; /* backward: out = Σ, not += */
} bias_job;

static void bias_broadcast_task(void *ctx, long begin, long end) {
    const bias_job *j = ctx;
    for (long n = begin; n < end; n++) memcpy(j->out + (size_t)n * j->OC, j->bias, (size_t)j->OC * sizeof(float));
}

void lm_cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                           int OC, lm_weight_layout layout) {
    float beta = 0.0f;
    if (bias) {
        /* The bias goes in first and the GEMM adds onto it (beta = 1): one
         * pass over `out` instead of a GEMM pass plus a bias pass. */
        bias_job j = {out, bias, NULL, N, OC, 0};
        lm_cpu_parallel_for(N, lm_cpu_rows_per_task(OC), bias_broadcast_task, &j);
        beta = 1.0f;
    }
    if (layout == LM_W_IN_OUT) {
        lm_cpu_sgemm(CblasNoTrans, CblasNoTrans, N, OC, IC, 1.0f, inp, IC, weight, OC, beta, out, OC);
    } else {
        lm_cpu_sgemm(CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, weight, IC, beta, out, OC);
    }
}

/* dbias is a sum over rows: split by column blocks, rows in order, so the
 * result is independent of the thread count.  Written, the sum is added
 * onto a 0 that is not read: zeroing then adding's bits. */
#define LM_MATMUL_BIAS_BLOCK 128

static void bias_backward_task(void *ctx, long begin, long end) {
    const bias_job *j = ctx;
    const int OC = j->OC, o0 = (int)begin, width = (int)(end - begin);
    float acc[LM_MATMUL_BIAS_BLOCK] = {0};
    for (int n = 0; n < j->N; n++) {
        const float *g = j->dout + (size_t)n * OC + o0;
#pragma omp simd
        for (int o = 0; o < width; o++) acc[o] += g[o];
    }
    float *out = j->out + o0;
    if (j->write) {
        for (int o = 0; o < width; o++) out[o] = 0.0f + acc[o];
    } else {
        for (int o = 0; o < width; o++) out[o] += acc[o];
    }
}

void lm_cpu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int N, int IC, int OC, lm_weight_layout layout,
                            lm_grad_store dinp_store, lm_grad_store dparam_store) {
    /* beta = 0 never reads dinp or dweight (BLAS semantics: NaN there stays
     * out); OpenBLAS zeroes C and adds the product, as after a memset. */
    const float dinp_beta = dinp_store == LM_GRAD_WRITE ? 0.0f : 1.0f;
    const float dweight_beta = dparam_store == LM_GRAD_WRITE ? 0.0f : 1.0f;
    if (layout == LM_W_IN_OUT) {
        /* dinp[N,IC] (+)= dout[N,OC] · W[IC,OC]ᵀ;  dW[IC,OC] (+)= inp[N,IC]ᵀ · dout */
        if (dinp) lm_cpu_sgemm(CblasNoTrans, CblasTrans, N, IC, OC, 1.0f, dout, OC, weight, OC, dinp_beta, dinp, IC);
        if (dweight)
            lm_cpu_sgemm(CblasTrans, CblasNoTrans, IC, OC, N, 1.0f, inp, IC, dout, OC, dweight_beta, dweight, OC);
    } else {
        /* dinp[N,IC] (+)= dout[N,OC] · W[OC,IC];  dW[OC,IC] (+)= dout[N,OC]ᵀ · inp */
        if (dinp)
            lm_cpu_sgemm(CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, weight, IC, dinp_beta, dinp, IC);
        if (dweight)
            lm_cpu_sgemm(CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, dweight_beta, dweight, IC);
    }
    if (dbias) lm_cpu_bias_backward(dbias, dout, N, OC, dparam_store);
}

void lm_cpu_bias_backward(float *dbias, const float *dout, int N, int C, lm_grad_store store) {
    bias_job j = {dbias, NULL, dout, N, C, store == LM_GRAD_WRITE};
    lm_cpu_parallel_for_if((long)N * C >= LM_CPU_PARALLEL_MIN, C, LM_MATMUL_BIAS_BLOCK, bias_backward_task, &j);
}

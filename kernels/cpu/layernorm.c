/* lmkernels — layer normalisation over the last dimension (torch.nn.LayerNorm:
 * biased variance, eps inside the square root). */
#include <math.h>

#include "cpu_internal.h"
#include "kernels.h"

void lm_cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                              const float *bias, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((long)N * C >= LM_CPU_PARALLEL_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        /* Two passes (mean, then squared deviations) rather than E[x²]-E[x]²,
         * which cancels badly when |mean| >> std. */
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < C; c++) sum += x[c];
        float m = sum / (float)C;
        float sum_sq = 0.0f;
#pragma omp simd reduction(+ : sum_sq)
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            sum_sq += d * d;
        }
        float s = 1.0f / sqrtf(sum_sq / (float)C + eps);
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

/* dweight/dbias are sums over rows: computed in a second pass split by channel
 * blocks (each thread owns columns, rows visited in order) so the result does
 * not depend on the thread count and needs no atomics. */
#define LM_LAYERNORM_CHANNEL_BLOCK 64

void lm_cpu_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static) if ((long)N * C >= LM_CPU_PARALLEL_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        const float *g = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        /* dx = s * (dy·w - mean(dy·w) - x̂ · mean(dy·w·x̂)) */
        float sum_dnorm = 0.0f, sum_dnorm_xhat = 0.0f;
#pragma omp simd reduction(+ : sum_dnorm, sum_dnorm_xhat)
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            float dnorm = weight[c] * g[c];
            sum_dnorm += dnorm;
            sum_dnorm_xhat += dnorm * xhat;
        }
        float mean_dnorm = sum_dnorm / (float)C;
        float mean_dnorm_xhat = sum_dnorm_xhat / (float)C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            float dnorm = weight[c] * g[c];
            dx[c] += s * (dnorm - mean_dnorm - xhat * mean_dnorm_xhat);
        }
    }
    int blocks = (C + LM_LAYERNORM_CHANNEL_BLOCK - 1) / LM_LAYERNORM_CHANNEL_BLOCK;
#pragma omp parallel for schedule(static) if ((long)N * C >= LM_CPU_PARALLEL_MIN)
    for (int block = 0; block < blocks; block++) {
        int c0 = block * LM_LAYERNORM_CHANNEL_BLOCK;
        int c1 = c0 + LM_LAYERNORM_CHANNEL_BLOCK < C ? c0 + LM_LAYERNORM_CHANNEL_BLOCK : C;
        float acc_w[LM_LAYERNORM_CHANNEL_BLOCK] = {0}, acc_b[LM_LAYERNORM_CHANNEL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C;
            const float *g = dout + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            for (int c = c0; c < c1; c++) {
                acc_w[c - c0] += g[c] * ((x[c] - m) * s);
                acc_b[c - c0] += g[c];
            }
        }
        for (int c = c0; c < c1; c++) {
            dweight[c] += acc_w[c - c0];
            dbias[c] += acc_b[c - c0];
        }
    }
}

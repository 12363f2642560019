/* lmkernels — layer normalisation over the last dimension (torch.nn.LayerNorm:
 * biased variance, eps inside the square root). */
#include <math.h>

#include "cpu_internal.h"
#include "kernels.h"

typedef struct layernorm_job {
    float *out, *mean, *rstd;                   /* forward outputs; backward: out = dinp */
    float *dweight, *dbias;
    const float *inp, *weight, *bias, *dout;
    const float *saved_mean, *saved_rstd;
    int N, C;
    float eps;
    lm_grad_store dinp_store, dparam_store; /* backward */
} layernorm_job;

static void layernorm_forward_task(void *ctx, long begin, long end) {
    const layernorm_job *j = ctx;
    const int C = j->C;
    const float *weight = j->weight, *bias = j->bias;
    for (long n = begin; n < end; n++) {
        const float *x = j->inp + (size_t)n * C;
        float *y = j->out + (size_t)n * C;
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
        float s = 1.0f / sqrtf(sum_sq / (float)C + j->eps);
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
        j->mean[n] = m;
        j->rstd[n] = s;
    }
}

void lm_cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                              const float *bias, int N, int C, float eps) {
    layernorm_job j = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .weight = weight, .bias = bias,
                       .N = N, .C = C, .eps = eps};
    lm_cpu_parallel_for(N, lm_cpu_rows_per_task(C), layernorm_forward_task, &j);
}

/* dx = s * (dy·w - mean(dy·w) - x̂ · mean(dy·w·x̂)), row by row: added
 * (dx +=) or written.  Written, it is added onto a 0 that is not read: the
 * bits of zeroing then adding, -0 included (0 + -0 is +0; an unscored row,
 * all of whose dy are 0, gives such zeros), so the CPU trains to the same
 * numbers and its gradients keep their bits. */
static void layernorm_backward_rows_task(void *ctx, long begin, long end) {
    const layernorm_job *j = ctx;
    const int C = j->C;
    const float *weight = j->weight;
    const int write = j->dinp_store == LM_GRAD_WRITE;
    for (long n = begin; n < end; n++) {
        const float *x = j->inp + (size_t)n * C;
        const float *g = j->dout + (size_t)n * C;
        float *dx = j->out + (size_t)n * C;
        float m = j->saved_mean[n], s = j->saved_rstd[n];
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
        if (write) {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float xhat = (x[c] - m) * s;
                float dnorm = weight[c] * g[c];
                dx[c] = 0.0f + s * (dnorm - mean_dnorm - xhat * mean_dnorm_xhat);
            }
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float xhat = (x[c] - m) * s;
                float dnorm = weight[c] * g[c];
                dx[c] += s * (dnorm - mean_dnorm - xhat * mean_dnorm_xhat);
            }
        }
    }
}

/* dweight/dbias are sums over rows: each task owns a block of channels and
 * visits the rows in order, so the result does not depend on the thread
 * count and needs no atomics.  Written, each sum is added onto a 0 that is
 * not read, as dinp is. */
#define LM_LAYERNORM_CHANNEL_BLOCK 64

static void layernorm_backward_params_task(void *ctx, long begin, long end) {
    const layernorm_job *j = ctx;
    const int C = j->C, N = j->N;
    const int c0 = (int)begin, width = (int)(end - begin);
    float acc_w[LM_LAYERNORM_CHANNEL_BLOCK] = {0}, acc_b[LM_LAYERNORM_CHANNEL_BLOCK] = {0};
    for (int n = 0; n < N; n++) {
        const float *x = j->inp + (size_t)n * C + c0;
        const float *g = j->dout + (size_t)n * C + c0;
        float m = j->saved_mean[n], s = j->saved_rstd[n];
#pragma omp simd
        for (int c = 0; c < width; c++) {
            acc_w[c] += g[c] * ((x[c] - m) * s);
            acc_b[c] += g[c];
        }
    }
    float *dweight = j->dweight + c0, *dbias = j->dbias + c0;
    if (j->dparam_store == LM_GRAD_WRITE) {
        for (int c = 0; c < width; c++) {
            dweight[c] = 0.0f + acc_w[c];
            dbias[c] = 0.0f + acc_b[c];
        }
    } else {
        for (int c = 0; c < width; c++) {
            dweight[c] += acc_w[c];
            dbias[c] += acc_b[c];
        }
    }
}

void lm_cpu_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, const float *mean, const float *rstd, int N, int C,
                               lm_grad_store dinp_store, lm_grad_store dparam_store) {
    layernorm_job j = {.out = dinp, .dweight = dweight, .dbias = dbias, .inp = inp, .weight = weight, .dout = dout,
                       .saved_mean = mean, .saved_rstd = rstd, .N = N, .C = C, .dinp_store = dinp_store,
                       .dparam_store = dparam_store};
    if (dinp) lm_cpu_parallel_for(N, lm_cpu_rows_per_task(C), layernorm_backward_rows_task, &j);
    lm_cpu_parallel_for_if((long)N * C >= LM_CPU_PARALLEL_MIN, C, LM_LAYERNORM_CHANNEL_BLOCK,
                           layernorm_backward_params_task, &j);
}

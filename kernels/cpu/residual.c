/* lmkernels — element-wise sums (residual connections, gradient merges). */
#include "cpu_internal.h"
#include "kernels.h"

typedef struct sum_job {
    float *out;
    const float *a, *b;
} sum_job;

static void residual_task(void *ctx, long begin, long end) {
    const sum_job *j = ctx;
    float *out = j->out;
    const float *a = j->a, *b = j->b;
#pragma omp simd
    for (long i = begin; i < end; i++) out[i] = a[i] + b[i];
}

static void accumulate_task(void *ctx, long begin, long end) {
    const sum_job *j = ctx;
    float *dst = j->out;
    const float *src = j->a;
#pragma omp simd
    for (long i = begin; i < end; i++) dst[i] += src[i];
}

void lm_cpu_residual_forward(float *out, const float *a, const float *b, size_t n) {
    sum_job j = {out, a, b};
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN, residual_task, &j);
}

void lm_cpu_accumulate(float *dst, const float *src, size_t n) {
    sum_job j = {dst, src, NULL};
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN, accumulate_task, &j);
}

/* lmkernels — element-wise sums: residual connections, and gradient merges
 * (out may be a: dinp += dout is lm_cpu_residual_forward(dinp, dinp, dout)). */
#include "cpu_internal.h"
#include "kernels.h"

typedef struct sum_job {
    float *out; /* may be a or b */
    const float *a, *b;
} sum_job;

static void residual_task(void *ctx, long begin, long end) {
    const sum_job *j = ctx;
    float *out = j->out;
    const float *a = j->a, *b = j->b;
#pragma omp simd
    for (long i = begin; i < end; i++) out[i] = a[i] + b[i];
}

void lm_cpu_residual_forward(float *out, const float *a, const float *b, size_t n) {
    sum_job j = {out, a, b};
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN, residual_task, &j);
}

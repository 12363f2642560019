/* lmkernels — element-wise sums (residual connections, gradient merges). */
#include "cpu_internal.h"
#include "kernels.h"

void lm_cpu_residual_forward(float *out, const float *a, const float *b, size_t n) {
    long count = (long)n;
#pragma omp parallel for simd schedule(static) if (count >= LM_CPU_PARALLEL_MIN)
    for (long i = 0; i < count; i++) out[i] = a[i] + b[i];
}

void lm_cpu_accumulate(float *dst, const float *src, size_t n) {
    long count = (long)n;
#pragma omp parallel for simd schedule(static) if (count >= LM_CPU_PARALLEL_MIN)
    for (long i = 0; i < count; i++) dst[i] += src[i];
}

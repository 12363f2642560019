/* lmkernels — sums over a whole buffer: the global gradient norm's sum of
 * squares, and the loss sums. */
#include "cpu_internal.h"
#include "kernels.h"

/* Fixed-size chunks summed in order: the result does not depend on how many
 * threads share the chunks. */
#define LM_SUM_CHUNK 16384
/* Chunk sums go through a small stack buffer, a window at a time. */
#define LM_SUM_WINDOW 256

typedef struct sum_squares_job {
    const float *x;
    size_t n, first_chunk;
    double partial[LM_SUM_WINDOW];
} sum_squares_job;

static void sum_squares_task(void *ctx, long begin, long end) {
    sum_squares_job *j = ctx;
    for (long c = begin; c < end; c++) {
        size_t first = (j->first_chunk + (size_t)c) * LM_SUM_CHUNK;
        size_t last = first + LM_SUM_CHUNK < j->n ? first + LM_SUM_CHUNK : j->n;
        const float *x = j->x;
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (size_t i = first; i < last; i++) sum += (double)x[i] * (double)x[i];
        j->partial[c] = sum;
    }
}

double lm_cpu_sum_squares(const float *x, size_t n) {
    long chunks = (long)((n + LM_SUM_CHUNK - 1) / LM_SUM_CHUNK);
    double total = 0.0;
    sum_squares_job j;
    j.x = x;
    j.n = n;
    for (long first = 0; first < chunks; first += LM_SUM_WINDOW) {
        long count = chunks - first < LM_SUM_WINDOW ? chunks - first : LM_SUM_WINDOW;
        j.first_chunk = (size_t)first;
        /* Two chunks per task: 32768 elements, the usual task size. */
        lm_cpu_parallel_for(count, LM_CPU_PARALLEL_MIN / LM_SUM_CHUNK, sum_squares_task, &j);
        for (long c = 0; c < count; c++) total += j.partial[c];
    }
    return total;
}

double lm_cpu_sum(const float *x, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)x[i];
    return sum;
}

void lm_cpu_loss_mean(float *out, const float *losses, size_t n, const int64_t *count) {
    *out = (float)(lm_cpu_sum(losses, n) / (double)*count);
}

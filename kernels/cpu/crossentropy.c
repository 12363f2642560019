/* lmkernels — softmax cross-entropy over the vocabulary, per row, with
 * Hugging Face's ignore index (LM_IGNORE_INDEX = -100).
 *
 * Rows are independent (one OpenMP iteration each); within a row the
 * log-sum-exp is max-shifted, the exp is the vectorised one and the sum of
 * exps is accumulated in double.  A label outside [0, V) other than -100 is
 * a caller bug (the objective validates labels); it is treated like -100
 * here rather than read out of bounds. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "kernels.h"
#include "vec_math.h"

typedef struct row_stats {
    float max;
    double sum_exp; /* Σ exp(x - max) */
} row_stats;

static row_stats softmax_stats(const float *x, int V) {
    float max_logit = -INFINITY;
#pragma omp simd reduction(max : max_logit)
    for (int j = 0; j < V; j++) max_logit = x[j] > max_logit ? x[j] : max_logit;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; j++) sum += (double)lm_vexpf(x[j] - max_logit);
    row_stats stats = {max_logit, sum};
    return stats;
}

static int is_scored(int32_t label, int V) {
    return label >= 0 && label < V;
}

double lm_cpu_crossentropy_forward(float *losses, const float *logits, const int32_t *labels, int N, int V) {
#pragma omp parallel for schedule(static) if ((long)N * V >= LM_CPU_PARALLEL_MIN)
    for (int n = 0; n < N; n++) {
        if (!is_scored(labels[n], V)) {
            losses[n] = 0.0f;
            continue;
        }
        const float *x = logits + (size_t)n * V;
        row_stats stats = softmax_stats(x, V);
        losses[n] = (float)(log(stats.sum_exp) + (double)stats.max - (double)x[labels[n]]);
    }
    /* Summed in row order by one thread: the same result for any team size. */
    double total = 0.0;
    for (int n = 0; n < N; n++) total += (double)losses[n];
    return total;
}

void lm_cpu_crossentropy_backward(float *dlogits, const float *logits, const int32_t *labels, float dloss, int N,
                                  int V) {
    int in_place = dlogits == logits;
#pragma omp parallel for schedule(static) if ((long)N * V >= LM_CPU_PARALLEL_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits + (size_t)n * V;
        int32_t label = labels[n];
        if (!is_scored(label, V)) {
            if (in_place) memset(dx, 0, (size_t)V * sizeof *dx);
            continue;
        }
        if (in_place) {
            /* The row is free to overwrite: keep the exps from the sum pass
             * there and scale them, one exp per element instead of two. */
            float max_logit = -INFINITY;
#pragma omp simd reduction(max : max_logit)
            for (int j = 0; j < V; j++) max_logit = dx[j] > max_logit ? dx[j] : max_logit;
            double sum = 0.0;
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < V; j++) {
                float e = lm_vexpf(dx[j] - max_logit);
                dx[j] = e;
                sum += (double)e;
            }
            float inv_sum = (float)(1.0 / sum);
            float label_prob = dx[label] * inv_sum;
#pragma omp simd
            for (int j = 0; j < V; j++) dx[j] = dloss * (dx[j] * inv_sum);
            dx[label] = dloss * (label_prob - 1.0f);
        } else {
            row_stats stats = softmax_stats(x, V);
            float inv_sum = (float)(1.0 / stats.sum_exp);
            float max_logit = stats.max;
            float label_prob = lm_vexpf(x[label] - max_logit) * inv_sum;
            float label_before = dx[label];
#pragma omp simd
            for (int j = 0; j < V; j++) dx[j] += dloss * (lm_vexpf(x[j] - max_logit) * inv_sum);
            dx[label] = label_before + dloss * (label_prob - 1.0f);
        }
    }
}

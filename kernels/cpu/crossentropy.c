/* lmkernels — softmax cross-entropy over the vocabulary, per row, with
 * Hugging Face's ignore index (LM_IGNORE_INDEX = -100).
 *
 * Rows are independent (tasks of whole rows); within a row the
 * log-sum-exp is max-shifted, the exp is the vectorised one and the sum of
 * exps is accumulated in double.  A label outside [0, V) other than -100 is
 * a caller bug (the objective validates labels); it is treated like -100
 * here rather than read out of bounds.
 *
 * crossentropy_forward_backward (the fused classifier of a training step)
 * is the in-place backward with the loss taken from its sum on the way:
 * the same helpers in the same order as the forward then the in-place
 * backward, so the losses and the gradients are those two ops' bits.
 *
 * Rows lie `stride` floats apart and only their first V columns are
 * scored (a vocabulary padded inside the model: backend_ops.def).  Every
 * loop below runs over V; the padding columns are only ever written 0 (in
 * place), so a padded call gives the unpadded call's bits in the first V
 * columns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "kernels.h"
#include "vec_math.h"

typedef struct row_stats {
    float max;
    double sum_exp; /* Σ exp(x - max) */
} row_stats;

static float row_max(const float *x, int V) {
    float max_logit = -INFINITY;
#pragma omp simd reduction(max : max_logit)
    for (int j = 0; j < V; j++) max_logit = x[j] > max_logit ? x[j] : max_logit;
    return max_logit;
}

/* e[j] = exp(x[j] - shift); e may be x.  Element-wise, so it gets the wide
 * clone; the double sum stays a separate loop, of the same shape as when
 * the two were one loop (same bits, checked on several row lengths). */
LM_CPU_WIDE_CLONES static void shifted_exps(float *e, const float *x, int V, float shift) {
#pragma omp simd
    for (int j = 0; j < V; j++) e[j] = lm_vexpf(x[j] - shift);
}

static double sum_in_double(const float *e, int V) {
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; j++) sum += (double)e[j];
    return sum;
}

LM_CPU_WIDE_CLONES static void scale_row(float *x, int V, float dloss, float inv_sum) {
#pragma omp simd
    for (int j = 0; j < V; j++) x[j] = dloss * (x[j] * inv_sum);
}

/* scratch: V floats for the exps, or NULL (then they are not kept). */
static row_stats softmax_stats(const float *x, int V, float *scratch) {
    float max_logit = row_max(x, V);
    double sum = 0.0;
    if (scratch) {
        shifted_exps(scratch, x, V, max_logit);
        sum = sum_in_double(scratch, V);
    } else {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < V; j++) sum += (double)lm_vexpf(x[j] - max_logit);
    }
    row_stats stats = {max_logit, sum};
    return stats;
}

static int is_scored(int32_t label, int V) {
    return label >= 0 && label < V;
}

typedef struct crossentropy_job {
    float *out; /* losses (forward) or dlogits (backward) */
    const float *logits;
    const int32_t *labels;
    float dloss;
    int V, stride;
} crossentropy_job;

/* Rows up to this long keep their exps on the stack (32 KiB); longer ones
 * in one allocation per task, of several rows (see the grain below). */
#define LM_CE_STACK_FLOATS 8192
#define LM_CE_HEAP_ROWS_PER_TASK 8

static void crossentropy_forward_task(void *ctx, long begin, long end) {
    const crossentropy_job *j = ctx;
    const int V = j->V;
    float on_stack[LM_CE_STACK_FLOATS];
    /* NULL (no memory): the slower one-loop path, same result. */
    float *scratch = V <= LM_CE_STACK_FLOATS ? on_stack : malloc((size_t)V * sizeof *scratch);
    for (long n = begin; n < end; n++) {
        int32_t label = j->labels[n];
        if (!is_scored(label, V)) {
            j->out[n] = 0.0f;
            continue;
        }
        const float *x = j->logits + (size_t)n * (size_t)j->stride;
        row_stats stats = softmax_stats(x, V, scratch);
        j->out[n] = (float)(log(stats.sum_exp) + (double)stats.max - (double)x[label]);
    }
    if (scratch != on_stack) free(scratch);
}

double lm_cpu_crossentropy_forward(float *losses, const float *logits, const int32_t *labels, int N, int V,
                                   int stride) {
    crossentropy_job j = {losses, logits, labels, 0.0f, V, stride};
    long rows = lm_cpu_rows_per_task(V);
    if (V > LM_CE_STACK_FLOATS && rows < LM_CE_HEAP_ROWS_PER_TASK) rows = LM_CE_HEAP_ROWS_PER_TASK;
    lm_cpu_parallel_for(N, rows, crossentropy_forward_task, &j);
    /* Summed in row order by one thread: the same result for any team size. */
    double total = 0.0;
    for (int n = 0; n < N; n++) total += (double)losses[n];
    return total;
}

static void crossentropy_backward_task(void *ctx, long begin, long end) {
    const crossentropy_job *j = ctx;
    const int V = j->V;
    const float dloss = j->dloss;
    const int in_place = j->out == j->logits;
    const size_t stride = (size_t)j->stride, padding = stride - (size_t)V;
    for (long n = begin; n < end; n++) {
        const float *x = j->logits + (size_t)n * stride;
        float *dx = j->out + (size_t)n * stride;
        int32_t label = j->labels[n];
        if (!is_scored(label, V)) {
            if (in_place) memset(dx, 0, stride * sizeof *dx);
            continue;
        }
        /* The padding columns' gradient is 0: written in place (they held
         * padded logits), left as they are (+0) out of place. */
        if (in_place && padding) memset(dx + V, 0, padding * sizeof *dx);
        if (in_place) {
            /* The row is free to overwrite: keep the exps from the sum pass
             * there and scale them, one exp per element instead of two. */
            float max_logit = row_max(dx, V);
            shifted_exps(dx, dx, V, max_logit);
            double sum = sum_in_double(dx, V);
            float inv_sum = (float)(1.0 / sum);
            float label_prob = dx[label] * inv_sum;
            scale_row(dx, V, dloss, inv_sum);
            dx[label] = dloss * (label_prob - 1.0f);
        } else {
            row_stats stats = softmax_stats(x, V, NULL);
            float inv_sum = (float)(1.0 / stats.sum_exp);
            float max_logit = stats.max;
            float label_prob = lm_vexpf(x[label] - max_logit) * inv_sum;
            float label_before = dx[label];
#pragma omp simd
            for (int k = 0; k < V; k++) dx[k] += dloss * (lm_vexpf(x[k] - max_logit) * inv_sum);
            dx[label] = label_before + dloss * (label_prob - 1.0f);
        }
    }
}

void lm_cpu_crossentropy_backward(float *dlogits, const float *logits, const int32_t *labels, float dloss, int N,
                                  int V, int stride) {
    crossentropy_job j = {dlogits, logits, labels, dloss, V, stride};
    lm_cpu_parallel_for(N, lm_cpu_rows_per_task(V), crossentropy_backward_task, &j);
}

typedef struct forward_backward_job {
    float *losses;
    float *logits; /* overwritten with the gradients */
    const int32_t *labels;
    float dloss;
    int V, stride;
} forward_backward_job;

static void crossentropy_forward_backward_task(void *ctx, long begin, long end) {
    const forward_backward_job *j = ctx;
    const int V = j->V;
    const float dloss = j->dloss;
    const size_t stride = (size_t)j->stride, padding = stride - (size_t)V;
    for (long n = begin; n < end; n++) {
        float *x = j->logits + (size_t)n * stride;
        int32_t label = j->labels[n];
        if (!is_scored(label, V)) {
            j->losses[n] = 0.0f;
            memset(x, 0, stride * sizeof *x);
            continue;
        }
        if (padding) memset(x + V, 0, padding * sizeof *x); /* their gradient: the padded rows' stays 0 */
        /* The forward's loss from the backward's pass: row_max, the exps
         * and their double sum are the forward's (softmax_stats) operations
         * on the same floats, only kept in the row instead of a scratch. */
        const float label_logit = x[label];
        float max_logit = row_max(x, V);
        shifted_exps(x, x, V, max_logit);
        double sum = sum_in_double(x, V);
        j->losses[n] = (float)(log(sum) + (double)max_logit - (double)label_logit);
        /* From here on, the in-place backward's lines. */
        float inv_sum = (float)(1.0 / sum);
        float label_prob = x[label] * inv_sum;
        scale_row(x, V, dloss, inv_sum);
        x[label] = dloss * (label_prob - 1.0f);
    }
}

void lm_cpu_crossentropy_forward_backward(float *losses, float *logits, const int32_t *labels, float dloss, int N,
                                          int V, int stride) {
    forward_backward_job j = {losses, logits, labels, dloss, V, stride};
    lm_cpu_parallel_for(N, lm_cpu_rows_per_task(V), crossentropy_forward_backward_task, &j);
}

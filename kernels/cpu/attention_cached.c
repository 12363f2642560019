/* lmkernels — attention over a key/value cache, for incremental decoding.
 *
 * Generation appends a few positions at a time (the prompt, then one token
 * per step) to per-layer caches of keys and values, and only the new
 * positions are queried.  Query i of a step sits at position pos+i and
 * sees keys 0..pos+i: the rows pos..pos+n-1 of a full causal attention
 * (attention.c) over the pos+n positions, without recomputing the others.
 *
 * Each head is independent: one task computes its n × (pos+n) scores with
 * one BLAS call, the softmax of each row, and its output with a second
 * call, the way attention.c handles one (batch, head) pair. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "kernels.h"
#include "vec_math.h"

void lm_cpu_kv_cache_append(float *k_cache, float *v_cache, const float *k, const float *v, int stride, int pos,
                            int n, int C) {
    for (int i = 0; i < n; i++) {
        memcpy(k_cache + (size_t)(pos + i) * C, k + (size_t)i * stride, (size_t)C * sizeof(float));
        memcpy(v_cache + (size_t)(pos + i) * C, v + (size_t)i * stride, (size_t)C * sizeof(float));
    }
}

/* Scores -> probabilities over the first `visible` keys; the keys after them
 * (later positions of the same step) get exactly 0, as under the finfo.min
 * mask of Hugging Face.  A causal query always sees at least itself. */
static void causal_softmax_row(float *row, int visible, int T) {
    float max_score = -INFINITY;
#pragma omp simd reduction(max : max_score)
    for (int j = 0; j < visible; j++) max_score = row[j] > max_score ? row[j] : max_score;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < visible; j++) {
        row[j] = lm_vexpf(row[j] - max_score);
        sum += row[j];
    }
    const float inv_sum = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < visible; j++) row[j] *= inv_sum;
    for (int j = visible; j < T; j++) row[j] = 0.0f;
}

typedef struct cached_attention_job {
    float *out, *att;
    const float *q, *k_cache, *v_cache;
    int stride, pos, n, C, NH;
    float scale;
} cached_attention_job;

static void cached_attention_task(void *ctx, long begin, long end) {
    const cached_attention_job *j = ctx;
    const int n = j->n, T = j->pos + j->n, C = j->C, hs = C / j->NH;
    for (long h = begin; h < end; h++) {
        const size_t head = (size_t)h * hs;
        float *S = j->att + (size_t)h * n * T;
        /* S[i, t] = scale · q_i · k_t over every cached key; the ones a query
         * may not see are zeroed by the softmax. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, T, hs, j->scale, j->q + head, j->stride,
                    j->k_cache + head, C, 0.0f, S, T);
        for (int i = 0; i < n; i++) causal_softmax_row(S + (size_t)i * T, j->pos + i + 1, T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, T, 1.0f, S, T, j->v_cache + head, C, 0.0f,
                    j->out + head, C);
    }
}

void lm_cpu_attention_cached_forward(float *out, float *att, const float *q, const float *k_cache,
                                     const float *v_cache, int stride, int pos, int n, int C, int NH) {
    if (n <= 0 || C <= 0 || NH <= 0) return;
    const int hs = C / NH, T = pos + n;
    cached_attention_job j = {.out = out, .att = att, .q = q, .k_cache = k_cache, .v_cache = v_cache,
                              .stride = stride, .pos = pos, .n = n, .C = C, .NH = NH,
                              .scale = (float)(1.0 / sqrt((double)hs))};
    /* Heads per task: at least LM_CPU_PARALLEL_MIN multiply-adds (two
     * products of n·T·hs each), so that a one-token step on a short cache
     * runs on the caller rather than paying for hand-offs. */
    long macs = 2L * n * T * hs;
    long heads_per_task = LM_CPU_PARALLEL_MIN / (macs > 0 ? macs : 1);
    lm_cpu_blas_init();
    lm_cpu_parallel_for(NH, heads_per_task > 0 ? heads_per_task : 1, cached_attention_task, &j);
}

/* lmkernels — multi-head scaled dot-product attention (Hugging Face eager
 * attention: scores = q·kᵀ · head_dim^-0.5, masked, softmax, dropout, · v).
 *
 * Masking follows Hugging Face, which adds finfo(float32).min to the score
 * of every key a query may not see (future keys when causal, padding keys
 * from key_mask): such keys get probability exactly 0.  When a query sees
 * no key at all (every visible key is padding, e.g. a fully padded row or
 * left padding under a causal mask), all its scores equal finfo.min and the
 * softmax is uniform over all T keys, future ones included: we reproduce
 * that (probability 1/T everywhere), and the backward pass propagates
 * through those rows the way autograd does.
 *
 * Each (batch, head) pair is independent: one task computes its
 * T×T scores with one single-threaded BLAS call, its softmax rows, and its
 * output with a second BLAS call. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "dropout_mask.h"
#include "kernels.h"
#include "vec_math.h"

/* Turns the raw scores of one query row into probabilities in place: keys
 * j < visible with key_mask[j] != 0 are shown.  Keys j >= visible (the
 * future, under a causal mask) cost no exp: they all get exp(-inf - max),
 * computed once (0, or NaN when max is -inf, as the full computation
 * gives).  The sum still runs over the whole row, in the same order, so the
 * result is the same to the bit as exp'ing every key.
 * Returns 1 for a row without any shown key (uniform, see the file comment). */
static int softmax_row(float *row, const int32_t *key_mask, int visible, int T) {
    float max_score = -INFINITY;
    int shown_count = 0;
    /* Hidden keys become -inf: exp(-inf - max) = 0, as exp(finfo.min - max)
     * is in float.  (Bitwise & rather than &&: no branch in the loop.) */
    if (key_mask) {
#pragma omp simd reduction(max : max_score) reduction(+ : shown_count)
        for (int j = 0; j < visible; j++) {
            int shown = key_mask[j] != 0;
            float s = shown ? row[j] : -INFINITY;
            row[j] = s;
            max_score = s > max_score ? s : max_score;
            shown_count += shown;
        }
    } else {
#pragma omp simd reduction(max : max_score)
        for (int j = 0; j < visible; j++) max_score = row[j] > max_score ? row[j] : max_score;
        shown_count = visible;
    }
    /* Counted rather than read off max_score, so that NaN scores stay NaN. */
    if (shown_count == 0) { /* no visible key: uniform, see the file comment */
        float uniform = 1.0f / (float)T;
        for (int j = 0; j < T; j++) row[j] = uniform;
        return 1;
    }
#pragma omp simd
    for (int j = 0; j < visible; j++) row[j] = lm_vexpf(row[j] - max_score);
    const float hidden = lm_vexpf(-INFINITY - max_score);
    for (int j = visible; j < T; j++) row[j] = hidden;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < T; j++) sum += row[j];
    float inv_sum = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < T; j++) row[j] *= inv_sum;
    return 0;
}

typedef struct attention_job {
    float *out, *preatt, *att;      /* forward outputs */
    float *dq, *dk, *dv, *scratch;  /* backward outputs */
    const float *q, *k, *v, *dout;
    const float *saved_preatt, *saved_att;
    const int32_t *key_mask;
    int stride, causal, T, C, NH, drop_some, drop_all;
    float scale;
    lm_dropout_mask drop;
    uint64_t seed, stream;
} attention_job;

/* a[k] = p[k] · keep/(1-p) with the mask of flat index first + k. */
LM_CPU_WIDE_CLONES static void dropout_row(float *a, const float *p, int n, lm_dropout_mask drop, uint64_t seed,
                                           uint64_t stream, uint64_t first) {
#pragma omp simd
    for (int k = 0; k < n; k++) a[k] = p[k] * lm_dropout_multiplier(drop, seed, stream, first + (uint64_t)k);
}

static void attention_forward_task(void *ctx, long begin, long end) {
    const attention_job *j = ctx;
    const int T = j->T, C = j->C, NH = j->NH, hs = C / NH, stride = j->stride;
    for (long bh = begin; bh < end; bh++) {
        int b = (int)(bh / NH), h = (int)(bh % NH);
        size_t qkv_offset = (size_t)b * T * stride + (size_t)h * hs;
        const float *Q = j->q + qkv_offset, *K = j->k + qkv_offset, *V = j->v + qkv_offset;
        float *P = j->preatt + (size_t)bh * T * T;
        float *A = j->att + (size_t)bh * T * T;
        const int32_t *mask = j->key_mask ? j->key_mask + (size_t)b * T : NULL;

        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, j->scale, Q, stride, K, stride, 0.0f, P, T);
        for (int i = 0; i < T; i++) {
            float *p_row = P + (size_t)i * T, *a_row = A + (size_t)i * T;
            int visible = j->causal ? i + 1 : T;
            int uniform = softmax_row(p_row, mask, visible, T);
            if (j->drop_some) {
                /* The mask index is the flat index into [B, NH, T, T].  Keys
                 * past `visible` have probability 0 (or NaN) in a row with a
                 * shown key, so their draw cannot matter: p · keep/(1-p) is
                 * p · 0 for them, without drawing. */
                int drawn = uniform ? T : visible;
                dropout_row(a_row, p_row, drawn, j->drop, j->seed, j->stream, ((uint64_t)bh * T + (uint64_t)i) * T);
                for (int k = drawn; k < T; k++) a_row[k] = p_row[k] * 0.0f;
            } else if (j->drop_all) { /* torch: everything dropped, no 0·inf */
                memset(a_row, 0, (size_t)T * sizeof *a_row);
            } else if (a_row != p_row) {
                memcpy(a_row, p_row, (size_t)T * sizeof *a_row);
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, A, T, V, stride, 0.0f,
                    j->out + (size_t)b * T * C + (size_t)h * hs, C);
    }
}

/* (batch, head) pairs per task: at least LM_CPU_PARALLEL_MIN multiply-adds
 * (4 of them per score: two GEMMs forward, four backward). */
static long pairs_per_task(int T, int hs) {
    long macs = 4L * T * T * hs;
    long pairs = LM_CPU_PARALLEL_MIN / (macs > 0 ? macs : 1);
    return pairs > 0 ? pairs : 1;
}

void lm_cpu_attention_forward(float *out, float *preatt, float *att, const float *q, const float *k,
                              const float *v, int stride, const int32_t *key_mask, int causal, int B, int T,
                              int C, int NH, float dropout_p, uint64_t seed, uint64_t stream) {
    int hs = C / NH;
    int drop_some = dropout_p > 0.0f && dropout_p < 1.0f, drop_all = dropout_p >= 1.0f;
    attention_job j = {.out = out, .preatt = preatt, .att = att, .q = q, .k = k, .v = v, .key_mask = key_mask,
                       .stride = stride, .causal = causal, .T = T, .C = C, .NH = NH, .drop_some = drop_some,
                       .drop_all = drop_all, .scale = (float)(1.0 / sqrt((double)hs)),
                       .drop = lm_dropout_mask_make(drop_some ? dropout_p : 0.5f), .seed = seed, .stream = stream};
    lm_cpu_blas_init();
    lm_cpu_parallel_for((long)B * NH, pairs_per_task(T, hs), attention_forward_task, &j);
}

/* With att = P ⊙ keep/(1-p):  dP_j = dA_j · keep_j/(1-p), and the softmax
 * backward dS_j = P_j (dP_j - Σ_k P_k dP_k) becomes
 * dS_j = A_j dA_j - P_j Σ_k A_k dA_k, so the mask never has to be redrawn. */
static void attention_backward_task(void *ctx, long begin, long end) {
    const attention_job *j = ctx;
    const int T = j->T, C = j->C, NH = j->NH, hs = C / NH, stride = j->stride;
    const float scale = j->scale;
    for (long bh = begin; bh < end; bh++) {
        int b = (int)(bh / NH), h = (int)(bh % NH);
        size_t qkv_offset = (size_t)b * T * stride + (size_t)h * hs;
        const float *Q = j->q + qkv_offset, *K = j->k + qkv_offset, *V = j->v + qkv_offset;
        float *dQ = j->dq + qkv_offset, *dK = j->dk + qkv_offset, *dV = j->dv + qkv_offset;
        const float *dO = j->dout + (size_t)b * T * C + (size_t)h * hs;
        const float *P = j->saved_preatt + (size_t)bh * T * T;
        const float *A = j->saved_att + (size_t)bh * T * T;
        float *D = j->scratch + (size_t)bh * T * T;

        /* dA = dO · Vᵀ;  dV += Aᵀ · dO */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, dO, C, V, stride, 0.0f, D, T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, A, T, dO, C, 1.0f, dV, stride);
        /* dA -> dS (scores after scaling), row by row.  Every key is visited:
         * rows without a visible key have non-zero probabilities everywhere. */
        for (int i = 0; i < T; i++) {
            float *d = D + (size_t)i * T;
            const float *a = A + (size_t)i * T, *p = P + (size_t)i * T;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int k = 0; k < T; k++) dot += a[k] * d[k];
#pragma omp simd
            for (int k = 0; k < T; k++) d[k] = a[k] * d[k] - p[k] * dot;
        }
        /* scores = scale · Q Kᵀ:  dQ += scale · dS · K;  dK += scale · dSᵀ · Q */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale, D, T, K, stride, 1.0f, dQ, stride);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale, D, T, Q, stride, 1.0f, dK, stride);
    }
}

void lm_cpu_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                               const float *preatt, const float *att, const float *q, const float *k,
                               const float *v, int stride, int B, int T, int C, int NH, float dropout_p,
                               uint64_t seed, uint64_t stream) {
    (void)dropout_p; /* the dropout mask is read off att, see above */
    (void)seed;
    (void)stream;
    int hs = C / NH;
    attention_job j = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .q = q, .k = k, .v = v, .dout = dout,
                       .saved_preatt = preatt, .saved_att = att, .stride = stride, .T = T, .C = C, .NH = NH,
                       .scale = (float)(1.0 / sqrt((double)hs))};
    lm_cpu_blas_init();
    lm_cpu_parallel_for((long)B * NH, pairs_per_task(T, hs), attention_backward_task, &j);
}

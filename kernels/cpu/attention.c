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
 * Each (batch, head) pair is independent: one OpenMP iteration computes its
 * T×T scores with one single-threaded BLAS call, its softmax rows, and its
 * output with a second BLAS call. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "dropout_mask.h"
#include "kernels.h"
#include "vec_math.h"

/* Turns the raw scores of one query row into probabilities in place: keys
 * j < visible with key_mask[j] != 0 are shown. */
static void softmax_row(float *row, const int32_t *key_mask, int visible, int T) {
    float max_score = -INFINITY;
    int shown_count = 0;
    /* Hidden keys become -inf: exp(-inf - max) = 0, as exp(finfo.min - max)
     * is in float.  (Bitwise & rather than &&: no branch in the loop.) */
    if (key_mask) {
#pragma omp simd reduction(max : max_score) reduction(+ : shown_count)
        for (int j = 0; j < T; j++) {
            int shown = (j < visible) & (key_mask[j] != 0);
            float s = shown ? row[j] : -INFINITY;
            row[j] = s;
            max_score = s > max_score ? s : max_score;
            shown_count += shown;
        }
    } else {
#pragma omp simd reduction(max : max_score)
        for (int j = 0; j < T; j++) {
            float s = j < visible ? row[j] : -INFINITY;
            row[j] = s;
            max_score = s > max_score ? s : max_score;
        }
        shown_count = visible;
    }
    /* Counted rather than read off max_score, so that NaN scores stay NaN. */
    if (shown_count == 0) { /* no visible key: uniform, see the file comment */
        float uniform = 1.0f / (float)T;
        for (int j = 0; j < T; j++) row[j] = uniform;
        return;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < T; j++) {
        float e = lm_vexpf(row[j] - max_score);
        row[j] = e;
        sum += e;
    }
    float inv_sum = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < T; j++) row[j] *= inv_sum;
}

void lm_cpu_attention_forward(float *out, float *preatt, float *att, const float *q, const float *k,
                              const float *v, int stride, const int32_t *key_mask, int causal, int B, int T,
                              int C, int NH, float dropout_p, uint64_t seed, uint64_t stream) {
    int hs = C / NH;
    float scale = (float)(1.0 / sqrt((double)hs));
    int drop_some = dropout_p > 0.0f && dropout_p < 1.0f, drop_all = dropout_p >= 1.0f;
    lm_dropout_mask drop = lm_dropout_mask_make(drop_some ? dropout_p : 0.5f);
    long macs = (long)B * NH * T * T * hs;
    lm_cpu_blas_init();
#pragma omp parallel for schedule(static) if (macs >= 4 * LM_CPU_PARALLEL_MIN)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t qkv_offset = (size_t)b * T * stride + (size_t)h * hs;
        const float *Q = q + qkv_offset, *K = k + qkv_offset, *V = v + qkv_offset;
        float *P = preatt + (size_t)bh * T * T;
        float *A = att + (size_t)bh * T * T;
        const int32_t *mask = key_mask ? key_mask + (size_t)b * T : NULL;

        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, Q, stride, K, stride, 0.0f, P, T);
        for (int i = 0; i < T; i++) softmax_row(P + (size_t)i * T, mask, causal ? i + 1 : T, T);

        if (drop_some) {
            /* The mask index is the flat index into [B, NH, T, T]. */
            uint64_t base = (uint64_t)bh * T * T;
#pragma omp simd
            for (int ij = 0; ij < T * T; ij++)
                A[ij] = P[ij] * lm_dropout_multiplier(drop, seed, stream, base + (uint64_t)ij);
        } else if (drop_all) { /* torch: everything dropped, no 0·inf */
            memset(A, 0, (size_t)T * T * sizeof *A);
        } else if (A != P) {
            memcpy(A, P, (size_t)T * T * sizeof *A);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, A, T, V, stride, 0.0f,
                    out + (size_t)b * T * C + (size_t)h * hs, C);
    }
}

/* With att = P ⊙ keep/(1-p):  dP_j = dA_j · keep_j/(1-p), and the softmax
 * backward dS_j = P_j (dP_j - Σ_k P_k dP_k) becomes
 * dS_j = A_j dA_j - P_j Σ_k A_k dA_k, so the mask never has to be redrawn. */
void lm_cpu_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                               const float *preatt, const float *att, const float *q, const float *k,
                               const float *v, int stride, int B, int T, int C, int NH, float dropout_p,
                               uint64_t seed, uint64_t stream) {
    (void)dropout_p; /* the dropout mask is read off att, see above */
    (void)seed;
    (void)stream;
    int hs = C / NH;
    float scale = (float)(1.0 / sqrt((double)hs));
    long macs = (long)B * NH * T * T * hs;
    lm_cpu_blas_init();
#pragma omp parallel for schedule(static) if (macs >= 4 * LM_CPU_PARALLEL_MIN)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t qkv_offset = (size_t)b * T * stride + (size_t)h * hs;
        const float *Q = q + qkv_offset, *K = k + qkv_offset, *V = v + qkv_offset;
        float *dQ = dq + qkv_offset, *dK = dk + qkv_offset, *dV = dv + qkv_offset;
        const float *dO = dout + (size_t)b * T * C + (size_t)h * hs;
        const float *P = preatt + (size_t)bh * T * T;
        const float *A = att + (size_t)bh * T * T;
        float *D = scratch + (size_t)bh * T * T;

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
            for (int j = 0; j < T; j++) dot += a[j] * d[j];
#pragma omp simd
            for (int j = 0; j < T; j++) d[j] = a[j] * d[j] - p[j] * dot;
        }
        /* scores = scale · Q Kᵀ:  dQ += scale · dS · K;  dK += scale · dSᵀ · Q */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale, D, T, K, stride, 1.0f, dQ, stride);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale, D, T, Q, stride, 1.0f, dK, stride);
    }
}

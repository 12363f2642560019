/* lmkernels — fused multi-head attention, the CPU twin of the CUDA kernels
 * (kernels/cuda/attention_fused*.cu) and the same algorithm:
 * FlashAttention-2 (Dao, 2023) in fp32.
 *
 * Forward: per (batch row, head), queries in tiles of FUSED_TILE rows; for
 * each query tile, keys in tiles of FUSED_TILE with an online softmax (a
 * running maximum and sum per query; the output rows accumulate unnormalised
 * and are rescaled when the maximum grows), so that no [T, T] matrix exists.
 * Kept for backward: lse = log Σ_shown exp(score) per query.  Backward
 * recomputes each probability tile as exp(score - lse), redraws the dropout
 * mask, and accumulates dq, dk, dv tile by tile.
 *
 * The rules are attention_forward's (attention.c, backend_ops.def):
 *   - a key is shown to query i when it is not in the future (causal) and
 *     key_mask shows it; hidden keys get probability 0;
 *   - a query that sees no key at all gets 1/T on every one of the T keys,
 *     future ones included.  Which queries those are follows from the first
 *     key the mask shows (first_shown): query i sees none exactly when
 *     first_shown >= its visible count (i + 1 when causal, else T).  Such a
 *     row is computed as if every key were shown with score 0 (so the
 *     online softmax gives exactly 1/T), and its lse is -inf (log of the
 *     empty sum), which backward reads as "uniform";
 *   - dropout keeps probability (b, h, i, j) by the draw at the flat index
 *     ((b·NH + h)·T + i)·T + j, the index attention_forward uses, so both
 *     implementations drop the same elements and agree to rounding.
 *
 * Causal tiles wholly above the diagonal are skipped, except for a tile
 * holding a query that sees no key (it needs every key).
 *
 * Backward uses, per query i, D_i = Σ_d dout_i,d · out_i,d (into scratch):
 * with A = P ⊙ keep/(1-p) the probabilities after dropout, the softmax
 * backward dS_j = A_j dA_j - P_j Σ_k A_k dA_k has Σ_k A_k dA_k = dout_i ·
 * Σ_k A_k v_k = dout_i · out_i (attention.c's form, with the sum read off
 * the output instead of a row of T probabilities). */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "dropout_mask.h"
#include "kernels.h"
#include "vec_math.h"

/* Queries and keys per tile: the three tiles of backward (scores,
 * probabilities after dropout, their gradient) are 48 KiB on a task's
 * stack and stay in L2. */
#define FUSED_TILE 64

typedef enum fused_drop { FUSED_DROP_NONE, FUSED_DROP_SOME, FUSED_DROP_ALL } fused_drop;

typedef struct fused_job {
    float *out, *lse;                     /* forward outputs */
    float *dq, *dk, *dv, *scratch;        /* backward outputs */
    const float *q, *k, *v;
    const float *dout, *saved_out, *saved_lse;
    const int32_t *key_mask;
    int stride, causal, T, C, NH;
    float scale;
    fused_drop drop_mode;
    lm_dropout_mask drop;
    uint64_t seed, stream;
} fused_job;

static fused_job fused_job_make(const float *q, const float *k, const float *v, int stride, const int32_t *key_mask,
                                int causal, int T, int C, int NH, float dropout_p, uint64_t seed, uint64_t stream) {
    fused_job j = {.q = q, .k = k, .v = v, .key_mask = key_mask, .stride = stride, .causal = causal, .T = T, .C = C,
                   .NH = NH, .scale = (float)(1.0 / sqrt((double)(C / NH))), .seed = seed, .stream = stream};
    j.drop_mode = dropout_p >= 1.0f ? FUSED_DROP_ALL : dropout_p > 0.0f ? FUSED_DROP_SOME : FUSED_DROP_NONE;
    j.drop = lm_dropout_mask_make(j.drop_mode == FUSED_DROP_SOME ? dropout_p : 0.5f);
    return j;
}

/* keep/(1-p) of the element at flat index `index` (1 without dropout, 0
 * when everything is dropped: torch's p = 1, no 0·inf). */
static inline float keep_multiplier(const fused_job *j, uint64_t index) {
    if (j->drop_mode == FUSED_DROP_NONE) return 1.0f;
    if (j->drop_mode == FUSED_DROP_ALL) return 0.0f;
    return lm_dropout_multiplier(j->drop, j->seed, j->stream, index);
}

/* The first key that key_mask shows in this batch row (T when none; 0
 * without a mask). */
static int first_shown_key(const int32_t *mask, int T) {
    if (!mask) return 0;
    for (int j = 0; j < T; j++)
        if (mask[j] != 0) return j;
    return T;
}

static int visible_keys(const fused_job *j, int query) { return j->causal ? query + 1 : j->T; }

/* One past the last key a query tile [first, first + rows) needs: under a
 * causal mask the keys after its last query are hidden from all its rows,
 * unless one of them sees no key (then it needs all T; the first query of
 * the tile is the one that sees the fewest). */
static int tile_key_end(const fused_job *j, int first_shown, int first, int rows) {
    if (!j->causal || first_shown >= visible_keys(j, first)) return j->T;
    return first + rows;
}

static inline int key_shown(const int32_t *mask, int key, int visible) {
    return key < visible && (!mask || mask[key] != 0);
}

/* Scores of the tile (rows first.., keys key0..) after masking: hidden keys
 * -inf, and 0 everywhere in a row that sees no key (see the file comment). */
static void mask_scores(const fused_job *j, float *S, int rows, int cols, int first, int key0, const int32_t *mask,
                        int first_shown) {
    for (int r = 0; r < rows; r++) {
        float *s = S + (size_t)r * FUSED_TILE;
        const int visible = visible_keys(j, first + r);
        if (first_shown >= visible) {
            for (int c = 0; c < cols; c++) s[c] = 0.0f;
            continue;
        }
        for (int c = 0; c < cols; c++)
            if (!key_shown(mask, key0 + c, visible)) s[c] = -INFINITY;
    }
}

/* The online softmax step of one query row over one key tile: its scores
 * s[0..cols) become the probabilities after dropout relative to the new
 * running maximum (unnormalised: the sum is kept in *sum), and the output
 * row accumulated so far is rescaled to that maximum.  `index` is the flat
 * [B, NH, T, T] index of s[0]. */
static void online_softmax_row(const fused_job *j, float *s, int cols, float *max, float *sum, float *out_row,
                               int hs, uint64_t index) {
    float tile_max = -INFINITY;
    for (int c = 0; c < cols; c++) tile_max = s[c] > tile_max ? s[c] : tile_max;
    const float new_max = tile_max > *max ? tile_max : *max;
    if (new_max == -INFINITY) { /* no shown key yet: nothing to add */
        for (int c = 0; c < cols; c++) s[c] = 0.0f;
        return;
    }
    const float correction = lm_vexpf(*max - new_max); /* 0 for the first shown tile */
    float tile_sum = 0.0f;
    for (int c = 0; c < cols; c++) {
        const float p = lm_vexpf(s[c] - new_max);
        tile_sum += p;
        s[c] = p * keep_multiplier(j, index + (uint64_t)c);
    }
    *sum = *sum * correction + tile_sum;
    if (correction != 1.0f)
        for (int d = 0; d < hs; d++) out_row[d] *= correction;
    *max = new_max;
}

static void fused_forward_task(void *ctx, long begin, long end) {
    const fused_job *j = ctx;
    const int T = j->T, C = j->C, NH = j->NH, hs = C / NH, stride = j->stride;
    float S[FUSED_TILE * FUSED_TILE], row_max[FUSED_TILE], row_sum[FUSED_TILE];
    for (long bh = begin; bh < end; bh++) {
        const int b = (int)(bh / NH), h = (int)(bh % NH);
        const size_t qkv_offset = (size_t)b * T * stride + (size_t)h * hs;
        const float *Q = j->q + qkv_offset, *K = j->k + qkv_offset, *V = j->v + qkv_offset;
        float *O = j->out + (size_t)b * T * C + (size_t)h * hs;
        const int32_t *mask = j->key_mask ? j->key_mask + (size_t)b * T : NULL;
        const int first_shown = first_shown_key(mask, T);
        for (int first = 0; first < T; first += FUSED_TILE) {
            const int rows = T - first < FUSED_TILE ? T - first : FUSED_TILE;
            float *O_tile = O + (size_t)first * C;
            for (int r = 0; r < rows; r++) {
                memset(O_tile + (size_t)r * C, 0, (size_t)hs * sizeof(float));
                row_max[r] = -INFINITY;
                row_sum[r] = 0.0f;
            }
            const int key_end = tile_key_end(j, first_shown, first, rows);
            for (int key0 = 0; key0 < key_end; key0 += FUSED_TILE) {
                const int cols = key_end - key0 < FUSED_TILE ? key_end - key0 : FUSED_TILE;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, j->scale, Q + (size_t)first * stride,
                            stride, K + (size_t)key0 * stride, stride, 0.0f, S, FUSED_TILE);
                mask_scores(j, S, rows, cols, first, key0, mask, first_shown);
                for (int r = 0; r < rows; r++) {
                    const uint64_t index = ((uint64_t)bh * T + (uint64_t)(first + r)) * T + (uint64_t)key0;
                    online_softmax_row(j, S + (size_t)r * FUSED_TILE, cols, &row_max[r], &row_sum[r],
                                       O_tile + (size_t)r * C, hs, index);
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, cols, 1.0f, S, FUSED_TILE,
                            V + (size_t)key0 * stride, stride, 1.0f, O_tile, C);
            }
            for (int r = 0; r < rows; r++) {
                const float inv_sum = 1.0f / row_sum[r];
                float *o = O_tile + (size_t)r * C;
                for (int d = 0; d < hs; d++) o[d] *= inv_sum;
                const int uniform = first_shown >= visible_keys(j, first + r);
                j->lse[(size_t)bh * T + (size_t)(first + r)] = uniform ? -INFINITY : row_max[r] + logf(row_sum[r]);
            }
        }
    }
}

/* (batch, head) pairs per task, as attention.c counts them. */
static long fused_pairs_per_task(int T, int hs) {
    long macs = 4L * T * T * hs;
    long pairs = LM_CPU_PARALLEL_MIN / (macs > 0 ? macs : 1);
    return pairs > 0 ? pairs : 1;
}

void lm_cpu_attention_fused_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                    int stride, const int32_t *key_mask, int causal, int B, int T, int C, int NH,
                                    float dropout_p, uint64_t seed, uint64_t stream) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    fused_job j = fused_job_make(q, k, v, stride, key_mask, causal, T, C, NH, dropout_p, seed, stream);
    j.out = out;
    j.lse = lse;
    lm_cpu_blas_init();
    lm_cpu_parallel_for((long)B * NH, fused_pairs_per_task(T, C / NH), fused_forward_task, &j);
}

/* One tile of backward: S holds the scaled scores, dA = dout · vᵀ; on
 * return A holds the probabilities after dropout and S the score gradient
 * dS = A ⊙ dA - P · D (P recomputed from lse; 1/T in a row that sees no
 * key). */
static void tile_score_gradient(const fused_job *j, float *S, float *A, const float *dA, int rows, int cols, int first,
                                int key0, const int32_t *mask, int first_shown, const float *lse, const float *D,
                                long bh) {
    const int T = j->T;
    const float uniform_p = 1.0f / (float)T;
    for (int r = 0; r < rows; r++) {
        const int query = first + r, visible = visible_keys(j, query);
        const int uniform = first_shown >= visible;
        const float row_lse = lse[query], row_D = D[query];
        float *s = S + (size_t)r * FUSED_TILE, *a = A + (size_t)r * FUSED_TILE;
        const float *da = dA + (size_t)r * FUSED_TILE;
        const uint64_t index = ((uint64_t)bh * T + (uint64_t)query) * T + (uint64_t)key0;
        for (int c = 0; c < cols; c++) {
            const int shown = uniform || key_shown(mask, key0 + c, visible);
            const float p = !shown ? 0.0f : uniform ? uniform_p : lm_vexpf(s[c] - row_lse);
            a[c] = p * keep_multiplier(j, index + (uint64_t)c);
            s[c] = a[c] * da[c] - p * row_D;
        }
    }
}

static void fused_backward_task(void *ctx, long begin, long end) {
    const fused_job *j = ctx;
    const int T = j->T, C = j->C, NH = j->NH, hs = C / NH, stride = j->stride;
    const float scale = j->scale;
    float S[FUSED_TILE * FUSED_TILE], A[FUSED_TILE * FUSED_TILE], dA[FUSED_TILE * FUSED_TILE];
    for (long bh = begin; bh < end; bh++) {
        const int b = (int)(bh / NH), h = (int)(bh % NH);
        const size_t qkv_offset = (size_t)b * T * stride + (size_t)h * hs, out_offset = (size_t)b * T * C + (size_t)h * hs;
        const float *Q = j->q + qkv_offset, *K = j->k + qkv_offset, *V = j->v + qkv_offset;
        float *dQ = j->dq + qkv_offset, *dK = j->dk + qkv_offset, *dV = j->dv + qkv_offset;
        const float *dO = j->dout + out_offset, *O = j->saved_out + out_offset;
        const float *lse = j->saved_lse + (size_t)bh * T;
        float *D = j->scratch + (size_t)bh * T;
        const int32_t *mask = j->key_mask ? j->key_mask + (size_t)b * T : NULL;
        const int first_shown = first_shown_key(mask, T);
        for (int i = 0; i < T; i++) {
            const float *o = O + (size_t)i * C, *d_o = dO + (size_t)i * C;
            float dot = 0.0f;
            for (int d = 0; d < hs; d++) dot += d_o[d] * o[d];
            D[i] = dot;
        }
        for (int first = 0; first < T; first += FUSED_TILE) {
            const int rows = T - first < FUSED_TILE ? T - first : FUSED_TILE;
            const int key_end = tile_key_end(j, first_shown, first, rows);
            const float *Q_tile = Q + (size_t)first * stride, *dO_tile = dO + (size_t)first * C;
            for (int key0 = 0; key0 < key_end; key0 += FUSED_TILE) {
                const int cols = key_end - key0 < FUSED_TILE ? key_end - key0 : FUSED_TILE;
                const float *K_tile = K + (size_t)key0 * stride, *V_tile = V + (size_t)key0 * stride;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, scale, Q_tile, stride, K_tile,
                            stride, 0.0f, S, FUSED_TILE);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, 1.0f, dO_tile, C, V_tile, stride,
                            0.0f, dA, FUSED_TILE);
                tile_score_gradient(j, S, A, dA, rows, cols, first, key0, mask, first_shown, lse, D, bh);
                /* dV += Aᵀ·dO;  dQ += scale·dS·K;  dK += scale·dSᵀ·Q */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, 1.0f, A, FUSED_TILE, dO_tile, C,
                            1.0f, dV + (size_t)key0 * stride, stride);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, cols, scale, S, FUSED_TILE, K_tile,
                            stride, 1.0f, dQ + (size_t)first * stride, stride);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, scale, S, FUSED_TILE, Q_tile,
                            stride, 1.0f, dK + (size_t)key0 * stride, stride);
            }
        }
    }
}

void lm_cpu_attention_fused_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                     const float *out, const float *lse, const float *q, const float *k,
                                     const float *v, int stride, const int32_t *key_mask, int causal, int B, int T,
                                     int C, int NH, float dropout_p, uint64_t seed, uint64_t stream) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    fused_job j = fused_job_make(q, k, v, stride, key_mask, causal, T, C, NH, dropout_p, seed, stream);
    j.dq = dq;
    j.dk = dk;
    j.dv = dv;
    j.scratch = scratch;
    j.dout = dout;
    j.saved_out = out;
    j.saved_lse = lse;
    lm_cpu_blas_init();
    lm_cpu_parallel_for((long)B * NH, fused_pairs_per_task(T, C / NH), fused_backward_task, &j);
}

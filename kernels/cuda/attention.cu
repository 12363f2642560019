/* Multi-head scaled dot-product attention, the CPU twin's semantics exactly
 * (kernels/cpu/attention.c): scores = q·kᵀ·hd^-0.5, hidden keys (future ones
 * when causal, key_mask == 0) get probability 0, a query that sees no key at
 * all gets the uniform 1/T over every key (Hugging Face's finfo.min
 * additive mask), dropout on the probabilities with the mask of element
 * ((b·NH + h)·T + t)·T + t2 drawn from the step state's key (seed and
 * lm_dropout_stream(micro_batch, site), read on the device: dropout.cu),
 * then · v.
 *
 * Each product is one cuBLAS call over all B x NH (batch row, head) pairs
 * (lm_cuda_gemm_batched_2d): head h of q/k/v starts hd floats after head
 * h-1 with rows `stride` apart (lda = stride) and batch row b T·stride
 * floats after b-1, which covers both GPT-2's interleaved qkv and BERT's
 * separate buffers without a permute.
 * Softmax and its backward are one warp per query row.
 *
 * Column-major views used below (hd = head size; one (b, h) slice):
 *   Q', K', V'  = hd x T, ld stride   (element (d, t) = q[t, d])
 *   dO'         = hd x T, ld C
 *   S'          = T x T,  ld T        (element (t2, t) = scores[t, t2]) */
#include <math.h>
#include <stdio.h>

#include "gemm.cuh"
#include "lmcore/rng.h"

#define LM_ATT_ROWS_PER_BLOCK (LM_CUDA_BLOCK / 32)

/* Raw scaled scores (in att) -> preatt = softmax, att = dropout(preatt). */
__global__ void lm_attention_softmax_kernel(float *preatt, float *att, const int32_t *key_mask, int causal, int NH,
                                            int T, size_t rows, float dropout_p, float keep_scale,
                                            const lm_step_state *key, int site) {
    const int lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * LM_ATT_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= rows) return;
    const int t = (int)(row % T);
    const size_t b = row / T / NH;
    const int visible = causal ? t + 1 : T;
    const int32_t *mask = key_mask ? key_mask + b * T : NULL;
    const float *scores = att + row * T; /* read before each element is overwritten, by the same lane */
    float *p_out = preatt + row * T;
    float *a_out = att + row * T;

    float max_score = -INFINITY;
    for (int j = lane; j < visible; j += 32) {
        if (!mask || mask[j] != 0) max_score = fmaxf(max_score, scores[j]);
    }
    max_score = lm_warp_max(max_score);
    float inv_sum = 0.0f;
    const bool uniform = max_score == -INFINITY; /* no visible key (see the file comment) */
    if (!uniform) {
        float sum = 0.0f;
        for (int j = lane; j < visible; j += 32) {
            if (!mask || mask[j] != 0) sum += expf(scores[j] - max_score);
        }
        inv_sum = 1.0f / lm_warp_sum(sum);
    }
    const uint64_t base = (uint64_t)row * (uint64_t)T;
    /* key is NULL unless 0 < dropout_p < 1 (the host checked). */
    lm_dropout_key dk = {0, 0};
    if (dropout_p > 0.0f && dropout_p < 1.0f) dk = lm_dropout_key_load(key, site);
    for (int j = lane; j < T; j += 32) {
        float prob;
        if (uniform) {
            prob = 1.0f / (float)T;
        } else {
            const bool shown = j < visible && (!mask || mask[j] != 0);
            prob = shown ? expf(scores[j] - max_score) * inv_sum : 0.0f;
        }
        float dropped = prob;
        if (dropout_p >= 1.0f) { /* torch: everything dropped, no 0·inf */
            dropped = 0.0f;
        } else if (dropout_p > 0.0f) {
            const float keep = lm_rng_uniform(dk.seed, dk.stream, base + (uint64_t)j) >= dropout_p ? 1.0f : 0.0f;
            dropped = prob * (keep * keep_scale);
        }
        p_out[j] = prob;
        a_out[j] = dropped;
    }
}

/* dA (in scratch) -> dS = A ⊙ dA - P · Σ_k A_k dA_k: the softmax backward
 * with the dropout folded in (A = P ⊙ keep/(1-p)), so no mask is redrawn. */
__global__ void lm_attention_softmax_backward_kernel(float *scratch, const float *preatt, const float *att, int T,
                                                     size_t rows) {
    const int lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * LM_ATT_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= rows) return;
    float *d = scratch + row * T;
    const float *a = att + row * T;
    const float *p = preatt + row * T;
    float dot = 0.0f;
    for (int j = lane; j < T; j += 32) dot += a[j] * d[j];
    dot = lm_warp_sum(dot);
    for (int j = lane; j < T; j += 32) d[j] = a[j] * d[j] - p[j] * dot;
}

extern "C" void lm_cuda_attention_forward(lm_cuda_ctx *ctx, float *out, float *preatt, float *att, const float *q,
                                          const float *k, const float *v, int stride, const int32_t *key_mask,
                                          int causal, int B, int T, int C, int NH, float dropout_p,
                                          const lm_step_state *key, int site) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    if (dropout_p > 0.0f && dropout_p < 1.0f && !key) {
        /* kept, not dereferenced on the GPU: the caller's bug, named at the next sync */
        char reason[160];
        snprintf(reason, sizeof reason, "dropout p=%g needs the step state (its key), and none was given",
                 (double)dropout_p);
        lm_cuda_ctx_keep_error(ctx, "attention_forward", reason);
        return;
    }
    const int hd = C / NH;
    const float scale = (float)(1.0 / sqrt((double)hd));
    const float keep_scale = dropout_p > 0.0f && dropout_p < 1.0f ? 1.0f / (1.0f - dropout_p) : 1.0f;
    const long long TT = (long long)T * T;
    const long long row = (long long)T * stride, heads_tt = (long long)NH * TT, out_row = (long long)T * C;
    /* S' = scale · K'ᵀ·Q'  (scores[t, t2] = scale · q_t·k_t2), written to att. */
    lm_cuda_gemm_batched_2d(ctx, "attention_forward (scores)", true, false, T, T, hd, scale, k, stride, row, hd, q,
                            stride, row, hd, 0.0f, att, T, heads_tt, TT, B, NH);
    const size_t rows = (size_t)B * NH * T;
    const unsigned blocks = (unsigned)((rows + LM_ATT_ROWS_PER_BLOCK - 1) / LM_ATT_ROWS_PER_BLOCK);
    lm_attention_softmax_kernel<<<blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(preatt, att, key_mask, causal, NH, T, rows,
                                                                          dropout_p, keep_scale, key, site);
    lm_cuda_check_launch(ctx, "attention_forward (softmax)");
    /* out' (hd x T, ld C) = V'·S'  (out[t, d] = Σ_t2 att[t, t2] v[t2, d]). */
    lm_cuda_gemm_batched_2d(ctx, "attention_forward (att·v)", false, false, hd, T, T, 1.0f, v, stride, row, hd, att, T,
                            heads_tt, TT, 0.0f, out, C, out_row, hd, B, NH);
}

/* The dropout mask is read back from att (A = P ⊙ keep/(1-p)): key and site
 * are not read; they keep the op's argument list (backend_ops.def). */
extern "C" void lm_cuda_attention_backward(lm_cuda_ctx *ctx, float *dq, float *dk, float *dv, float *scratch,
                                           const float *dout, const float *preatt, const float *att, const float *q,
                                           const float *k, const float *v, int stride, int B, int T, int C, int NH,
                                           float dropout_p, const lm_step_state *key, int site) {
    (void)dropout_p; /* the mask is read back from att (see the softmax backward) */
    (void)key;
    (void)site;
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    const int hd = C / NH;
    const float scale = (float)(1.0 / sqrt((double)hd));
    const long long TT = (long long)T * T;
    const long long row = (long long)T * stride, heads_tt = (long long)NH * TT, out_row = (long long)T * C;
    /* dA: S'(t2, t) = Σ_d v[t2, d] dout[t, d]  ->  V'ᵀ · dO', into scratch */
    lm_cuda_gemm_batched_2d(ctx, "attention_backward (dA)", true, false, T, T, hd, 1.0f, v, stride, row, hd, dout, C,
                            out_row, hd, 0.0f, scratch, T, heads_tt, TT, B, NH);
    /* dV'(d, t2) += Σ_t dout[t, d] att[t, t2]  ->  dO' · S'ᵀ */
    lm_cuda_gemm_batched_2d(ctx, "attention_backward (dv)", false, true, hd, T, T, 1.0f, dout, C, out_row, hd, att, T,
                            heads_tt, TT, 1.0f, dv, stride, row, hd, B, NH);
    const size_t rows = (size_t)B * NH * T;
    const unsigned blocks = (unsigned)((rows + LM_ATT_ROWS_PER_BLOCK - 1) / LM_ATT_ROWS_PER_BLOCK);
    lm_attention_softmax_backward_kernel<<<blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(scratch, preatt, att, T, rows);
    lm_cuda_check_launch(ctx, "attention_backward (softmax)");
    /* dQ'(d, t) += scale · Σ_t2 k[t2, d] dS[t, t2]  ->  K' · S' */
    lm_cuda_gemm_batched_2d(ctx, "attention_backward (dq)", false, false, hd, T, T, scale, k, stride, row, hd, scratch,
                            T, heads_tt, TT, 1.0f, dq, stride, row, hd, B, NH);
    /* dK'(d, t2) += scale · Σ_t q[t, d] dS[t, t2]  ->  Q' · S'ᵀ */
    lm_cuda_gemm_batched_2d(ctx, "attention_backward (dk)", false, true, hd, T, T, scale, q, stride, row, hd, scratch,
                            T, heads_tt, TT, 1.0f, dk, stride, row, hd, B, NH);
}

/* The fused attention's forward (attention_fused_forward, backend_ops.def):
 * one block per (query tile of 64, batch row · head); the block walks the
 * key tiles the tile needs (causal tiles above the diagonal skipped), keeps
 * an online softmax per query, and writes out and lse.  The layout of the
 * work and the rules are in attention_fused.cuh; the CPU twin is
 * kernels/cpu/attention_fused.c.
 *
 * Per key tile: K and V tiles and the key mask into shared memory; the
 * 4 x 4 scores of each thread; per row, the tile's maximum over the row
 * group, the running maximum, the correction of what was accumulated, the
 * probabilities (exp(score - max), unnormalised) and their sum; the
 * probabilities after dropout into shared memory; then each thread adds
 * P·V to its 4 x DPT outputs.  At the end the outputs are divided by the
 * row's sum and lse = max + log(sum).
 *
 * A template on the stored type S of q, k, v and out (attention_fused.cuh):
 * attention_fused_forward (float) and attention_fused_forward_bf16
 * (uint16_t: q/k/v widened into the fp32 tiles, out rounded once from the
 * same fp32 value the float kernel writes). */
#include <stdio.h>

#include "attention_fused.cuh"

template <int DPT, typename S>
__global__ void __launch_bounds__(LM_FUSED_THREADS, 1)
    lm_attention_fused_forward_kernel(S *out, float *lse, lm_fused_args<S> a) {
    extern __shared__ float smem[];
    __shared__ int first_shown_s;
    __shared__ int mask_s[LM_FUSED_TILE];
    const int hd = a.hd, ldt = hd + 1, T = a.T;
    const int bh = blockIdx.x, b = bh / a.NH, h = bh % a.NH;
    const int first = blockIdx.y * LM_FUSED_TILE;
    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
    float *Qs = smem, *Ks = Qs + LM_FUSED_TILE * ldt, *Vs = Ks + LM_FUSED_TILE * ldt, *Ps = Vs + LM_FUSED_TILE * ldt;
    const size_t head = (size_t)b * T * a.stride + (size_t)h * hd;
    const int32_t *mask = a.key_mask ? a.key_mask + (size_t)b * T : NULL;

    const int first_shown = lm_fused_first_shown(mask, T, &first_shown_s);
    lm_fused_load_tile(Qs, a.q + head, a.stride, first, T, hd);
    lm_fused_row rows[4];
    float row_max[4], row_sum[4], acc[4][DPT];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        rows[r] = lm_fused_row_of(a, first + ty * 4 + r, first_shown);
        row_max[r] = -INFINITY;
        row_sum[r] = 0.0f;
#pragma unroll
        for (int d = 0; d < DPT; d++) acc[r][d] = 0.0f;
    }
    lm_dropout_key dk = {0, 0};
    if (a.drop_mode == LM_FUSED_DROP_SOME) dk = lm_dropout_key_load(a.key, a.site);

    const int key_end = lm_fused_key_end(a, first, first_shown);
    for (int key0 = 0; key0 < key_end; key0 += LM_FUSED_TILE) {
        __syncthreads(); /* the previous tile's K, V, P and mask are no longer read */
        lm_fused_load_tile(Ks, a.k + head, a.stride, key0, T, hd);
        lm_fused_load_tile(Vs, a.v + head, a.stride, key0, T, hd);
        if (tid < LM_FUSED_TILE) {
            const int j = key0 + tid;
            mask_s[tid] = j < T && (!mask || mask[j] != 0);
        }
        __syncthreads();
        float s[4][4];
        lm_fused_tile_dots(s, Qs, Ks, hd, ty, tx);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            float tile_max = -INFINITY;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int col = tx + 16 * c;
                const bool shown = lm_fused_shown(rows[r], T, key0 + col, mask_s[col]);
                s[r][c] = !shown ? -INFINITY : rows[r].uniform ? 0.0f : s[r][c] * a.scale;
                tile_max = fmaxf(tile_max, s[r][c]);
            }
            tile_max = lm_fused_row_max(tile_max);
            const float new_max = fmaxf(row_max[r], tile_max);
            float p[4], tile_sum = 0.0f;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                /* exp(-inf - finite) = 0; a row without a shown key so far adds nothing */
                p[c] = new_max == -INFINITY ? 0.0f : expf(s[r][c] - new_max);
                tile_sum += p[c];
            }
            tile_sum = lm_fused_row_sum(tile_sum);
            const float correction = new_max == -INFINITY ? 1.0f : expf(row_max[r] - new_max);
            row_sum[r] = row_sum[r] * correction + tile_sum;
#pragma unroll
            for (int d = 0; d < DPT; d++) acc[r][d] *= correction;
            row_max[r] = new_max;
            const uint64_t index = ((uint64_t)bh * (uint64_t)T + (uint64_t)rows[r].query) * (uint64_t)T + (uint64_t)key0;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int col = tx + 16 * c;
                Ps[(ty * 4 + r) * LM_FUSED_LDP + col] = p[c] * lm_fused_keep(a, dk, index + (uint64_t)col);
            }
        }
        __syncthreads();
        lm_fused_tile_accumulate<DPT>(acc, Ps, Vs, hd, ty, tx);
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        if (rows[r].query >= T) continue;
        const float inv_sum = 1.0f / row_sum[r]; /* >= 1: a row always has a shown key or is uniform */
        S *o = out + ((size_t)b * T + (size_t)rows[r].query) * (size_t)a.C + (size_t)h * hd;
#pragma unroll
        for (int d = 0; d < DPT; d++)
            if (tx + 16 * d < hd) lm_store_act(&o[tx + 16 * d], acc[r][d] * inv_sum);
        if (tx == 0)
            lse[(size_t)bh * T + (size_t)rows[r].query] =
                rows[r].uniform ? -INFINITY : row_max[r] + logf(row_sum[r]);
    }
}

/* ---- host side (tests/gpu/emulate compiles the whole file on the CPU, this part included) ---- */

template <typename S>
int lm_fused_prepare(lm_cuda_ctx *ctx, const char *op, lm_fused_args<S> *a, const S *q, const S *k, const S *v,
                     int stride, const int32_t *key_mask, int causal, int B, int T, int C, int NH,
                     float dropout_p, const lm_step_state *key, int site) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return 0;
    char reason[200];
    const int hd = C / NH;
    if (hd > LM_FUSED_MAX_HEAD) {
        snprintf(reason, sizeof reason, "head size %d (C %d / %d heads) is over the fused kernel's %d: use the eager "
                 "attention (attn_implementation=eager)", hd, C, NH, LM_FUSED_MAX_HEAD);
        lm_cuda_ctx_keep_error(ctx, op, reason);
        return 0;
    }
    const int drop_some = dropout_p > 0.0f && dropout_p < 1.0f;
    if (drop_some && !key) {
        snprintf(reason, sizeof reason, "dropout p=%g needs the step state (its key), and none was given",
                 (double)dropout_p);
        lm_cuda_ctx_keep_error(ctx, op, reason);
        return 0;
    }
    a->q = q;
    a->k = k;
    a->v = v;
    a->stride = stride;
    a->key_mask = key_mask;
    a->causal = causal;
    a->T = T;
    a->C = C;
    a->NH = NH;
    a->hd = hd;
    a->scale = (float)(1.0 / sqrt((double)hd));
    a->drop_mode = dropout_p >= 1.0f ? LM_FUSED_DROP_ALL : drop_some ? LM_FUSED_DROP_SOME : LM_FUSED_DROP_NONE;
    a->dropout_p = dropout_p;
    a->keep_scale = drop_some ? 1.0f / (1.0f - dropout_p) : 1.0f;
    a->key = drop_some ? key : NULL;
    a->site = site;
    return 1;
}

template int lm_fused_prepare<float>(lm_cuda_ctx *, const char *, lm_fused_args<float> *, const float *,
                                     const float *, const float *, int, const int32_t *, int, int, int, int, int,
                                     float, const lm_step_state *, int);
template int lm_fused_prepare<uint16_t>(lm_cuda_ctx *, const char *, lm_fused_args<uint16_t> *, const uint16_t *,
                                        const uint16_t *, const uint16_t *, int, const int32_t *, int, int, int, int,
                                        int, float, const lm_step_state *, int);

int lm_fused_allow_smem(lm_cuda_ctx *ctx, const char *op, const void *kernel, size_t bytes, size_t *allowed) {
    if (bytes <= 48 * 1024 || bytes <= *allowed) return 1;
    if (lm_cuda_keep_cuda(ctx, op,
                          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes)))
        return 0;
    *allowed = bytes;
    return 1;
}

template <int DPT, typename S>
static void launch_forward(lm_cuda_ctx *ctx, const char *op, S *out, float *lse, const lm_fused_args<S> &a, int B) {
    static size_t allowed = 0; /* this instance's shared-memory limit, raised once */
    const size_t smem = lm_fused_smem_bytes(3, a.hd);
    if (!lm_fused_allow_smem(ctx, op, (const void *)lm_attention_fused_forward_kernel<DPT, S>, smem, &allowed))
        return;
    const dim3 grid((unsigned)(B * a.NH), (unsigned)((a.T + LM_FUSED_TILE - 1) / LM_FUSED_TILE));
    lm_attention_fused_forward_kernel<DPT, S><<<grid, LM_FUSED_THREADS, smem, ctx->stream>>>(out, lse, a);
    lm_cuda_check_launch(ctx, op);
}

/* Either op, by the stored type; `op` names it in a kept failure. */
template <typename S>
static void fused_forward(lm_cuda_ctx *ctx, const char *op, S *out, float *lse, const S *q, const S *k, const S *v,
                          int stride, const int32_t *key_mask, int causal, int B, int T, int C, int NH,
                          float dropout_p, const lm_step_state *key, int site) {
    lm_fused_args<S> a;
    if (!lm_fused_prepare(ctx, op, &a, q, k, v, stride, key_mask, causal, B, T, C, NH, dropout_p, key, site)) return;
    switch (lm_fused_columns_per_thread(a.hd)) {
    case 2: launch_forward<2>(ctx, op, out, lse, a, B); break;
    case 4: launch_forward<4>(ctx, op, out, lse, a, B); break;
    default: launch_forward<8>(ctx, op, out, lse, a, B); break;
    }
}

extern "C" void lm_cuda_attention_fused_forward(lm_cuda_ctx *ctx, float *out, float *lse, const float *q,
                                                const float *k, const float *v, int stride, const int32_t *key_mask,
                                                int causal, int B, int T, int C, int NH, float dropout_p,
                                                const lm_step_state *key, int site) {
    fused_forward(ctx, "attention_fused_forward", out, lse, q, k, v, stride, key_mask, causal, B, T, C, NH,
                  dropout_p, key, site);
}

extern "C" void lm_cuda_attention_fused_forward_bf16(lm_cuda_ctx *ctx, uint16_t *out, float *lse, const uint16_t *q,
                                                     const uint16_t *k, const uint16_t *v, int stride,
                                                     const int32_t *key_mask, int causal, int B, int T, int C,
                                                     int NH, float dropout_p, const lm_step_state *key, int site) {
    fused_forward(ctx, "attention_fused_forward_bf16", out, lse, q, k, v, stride, key_mask, causal, B, T, C, NH,
                  dropout_p, key, site);
}

/* The fused attention's backward (attention_fused_backward,
 * backend_ops.def), FlashAttention-2's with one change: no float atomics.
 * FlashAttention-2 adds each key tile's share of dq with atomicAdd, whose
 * order (and so whose rounding) changes from run to run; lmcore's kernels
 * are deterministic (NOTES.md), so dq has its own kernel, over query tiles,
 * which recomputes the probabilities a second time.  Three kernels:
 *
 *   1. D = Σ_d dout·out per query (scratch [B, NH, T]), a warp per query;
 *   2. per key tile: dk and dv, walking the query tiles that see it (the
 *      causal ones at or after the diagonal, and any holding a query that
 *      sees no key);
 *   3. per query tile: dq, walking the key tiles the forward walked.
 *
 * In both 2 and 3, for a (query tile, key tile) pair: scores S = Q·Kᵀ and
 * dA = dO·Vᵀ (4 x 4 per thread), P = exp(scale·S - lse) (1/T in a row
 * that sees no key, 0 on hidden keys), A = P · keep/(1-p) with the mask
 * redrawn at the flat index, and dS = A ⊙ dA - P · D (kernels/cpu/
 * attention_fused.c says why).  Then dV += Aᵀ·dO and dK += scale·dSᵀ·Q
 * (kernel 2, through one shared [64, 64] buffer), or dQ += scale·dS·K
 * (kernel 3).  Each gradient element is written by one thread: += without
 * atomics.
 *
 * Templates on the stored type S of q, k, v and out (attention_fused.cuh):
 * attention_fused_backward (float) and attention_fused_backward_bf16
 * (uint16_t: q/k/v widened into the fp32 tiles, and D = Σ dout·out reads
 * the widened bf16 out the forward stored, as FlashAttention's backward
 * reads its stored output).  dout, lse, D and dq/dk/dv are fp32 in both. */
#include "attention_fused.cuh"

#define LM_FUSED_DOT_ROWS_PER_BLOCK (LM_FUSED_THREADS / 32)

/* D[row] = Σ_d dout·out for row = (b·NH + h)·T + i, one warp each. */
template <typename S>
__global__ void lm_attention_fused_dot_kernel(float *D, const float *dout, const S *out, int T, int C, int NH, int hd,
                                              size_t rows) {
    const int lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * LM_FUSED_DOT_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= rows) return;
    const size_t bh = row / (size_t)T, i = row % (size_t)T;
    const size_t b = bh / (size_t)NH, h = bh % (size_t)NH;
    const size_t offset = (b * (size_t)T + i) * (size_t)C + h * (size_t)hd;
    float sum = 0.0f;
    for (int d = lane; d < hd; d += 32) sum += dout[offset + d] * lm_load_act(out + offset + d);
    sum = lm_warp_sum(sum);
    if (lane == 0) D[row] = sum;
}

/* The probabilities after dropout (a) and the score gradient (ds) of the
 * thread's 4 x 4 elements: s holds the raw scores, da = dO·Vᵀ; row_lse
 * and row_D are per row. */
template <typename S>
__device__ __forceinline__ void lm_fused_score_gradient(const lm_fused_args<S> &a, lm_dropout_key dk, int bh,
                                                        const lm_fused_row rows[4], int key0, const int *mask_s,
                                                        int tx, const float s[4][4], const float da[4][4],
                                                        const float row_lse[4], const float row_D[4], float A[4][4],
                                                        float dS[4][4]) {
    const int T = a.T;
    const float uniform_p = 1.0f / (float)T;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const uint64_t index = ((uint64_t)bh * (uint64_t)T + (uint64_t)rows[r].query) * (uint64_t)T + (uint64_t)key0;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            const int col = tx + 16 * c;
            const bool shown = lm_fused_shown(rows[r], T, key0 + col, mask_s[col]);
            const float p = !shown ? 0.0f : rows[r].uniform ? uniform_p : expf(s[r][c] * a.scale - row_lse[r]);
            A[r][c] = p * lm_fused_keep(a, dk, index + (uint64_t)col);
            dS[r][c] = A[r][c] * da[r][c] - p * row_D[r];
        }
    }
}

/* Kernel 2: block (bh, key tile). */
template <int DPT, typename S>
__global__ void __launch_bounds__(LM_FUSED_THREADS, 1)
    lm_attention_fused_dkdv_kernel(float *dk, float *dv, const float *dout, const float *lse, const float *D,
                                   lm_fused_args<S> a) {
    extern __shared__ float smem[];
    __shared__ int first_shown_s;
    __shared__ int mask_s[LM_FUSED_TILE];
    __shared__ float lse_s[LM_FUSED_TILE], D_s[LM_FUSED_TILE];
    const int hd = a.hd, ldt = hd + 1, T = a.T;
    const int bh = blockIdx.x, b = bh / a.NH, h = bh % a.NH;
    const int key0 = blockIdx.y * LM_FUSED_TILE;
    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
    float *Ks = smem, *Vs = Ks + LM_FUSED_TILE * ldt, *Qs = Vs + LM_FUSED_TILE * ldt, *dOs = Qs + LM_FUSED_TILE * ldt;
    float *buffer = dOs + LM_FUSED_TILE * ldt; /* [64, 64]: A, then dS */
    const size_t head = (size_t)b * T * a.stride + (size_t)h * hd;
    const size_t out_head = (size_t)b * T * a.C + (size_t)h * hd;
    const int32_t *mask = a.key_mask ? a.key_mask + (size_t)b * T : NULL;

    const int first_shown = lm_fused_first_shown(mask, T, &first_shown_s);
    lm_fused_load_tile(Ks, a.k + head, a.stride, key0, T, hd);
    lm_fused_load_tile(Vs, a.v + head, a.stride, key0, T, hd);
    if (tid < LM_FUSED_TILE) {
        const int j = key0 + tid;
        mask_s[tid] = j < T && (!mask || mask[j] != 0);
    }
    lm_dropout_key dk_key = {0, 0};
    if (a.drop_mode == LM_FUSED_DROP_SOME) dk_key = lm_dropout_key_load(a.key, a.site);
    /* keys ty·4 + kk of the tile, head columns tx + 16·d */
    float dk_acc[4][DPT], dv_acc[4][DPT];
#pragma unroll
    for (int kk = 0; kk < 4; kk++)
#pragma unroll
        for (int d = 0; d < DPT; d++) dk_acc[kk][d] = dv_acc[kk][d] = 0.0f;

    const int query_tiles = (T + LM_FUSED_TILE - 1) / LM_FUSED_TILE;
    for (int qt = 0; qt < query_tiles; qt++) {
        const int first = qt * LM_FUSED_TILE;
        /* Causal: a tile wholly before the key tile sees none of it, unless
         * it holds a query that sees no key (the same for the whole block). */
        if (a.causal && first + LM_FUSED_TILE <= key0 && first_shown <= first) continue;
        __syncthreads(); /* the previous query tile's Q, dO and buffer are no longer read */
        lm_fused_load_tile(Qs, a.q + head, a.stride, first, T, hd);
        lm_fused_load_tile(dOs, dout + out_head, a.C, first, T, hd);
        if (tid < LM_FUSED_TILE) {
            const int i = first + tid;
            lse_s[tid] = i < T ? lse[(size_t)bh * T + i] : 0.0f;
            D_s[tid] = i < T ? D[(size_t)bh * T + i] : 0.0f;
        }
        __syncthreads();
        float s[4][4], da[4][4], A[4][4], dS[4][4], row_lse[4], row_D[4];
        lm_fused_row rows[4];
        lm_fused_tile_dots(s, Qs, Ks, hd, ty, tx);
        lm_fused_tile_dots(da, dOs, Vs, hd, ty, tx);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            rows[r] = lm_fused_row_of(a, first + ty * 4 + r, first_shown);
            row_lse[r] = lse_s[ty * 4 + r];
            row_D[r] = D_s[ty * 4 + r];
        }
        lm_fused_score_gradient(a, dk_key, bh, rows, key0, mask_s, tx, s, da, row_lse, row_D, A, dS);
        /* dV[key, d] += Σ_query A[query, key] · dO[query, d] */
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int c = 0; c < 4; c++) buffer[(ty * 4 + r) * LM_FUSED_LDP + tx + 16 * c] = A[r][c];
        __syncthreads();
        lm_fused_tile_accumulate<DPT, true>(dv_acc, buffer, dOs, hd, ty, tx);
        __syncthreads();
        /* dK[key, d] += Σ_query dS[query, key] · Q[query, d] (scaled at the end) */
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int c = 0; c < 4; c++) buffer[(ty * 4 + r) * LM_FUSED_LDP + tx + 16 * c] = dS[r][c];
        __syncthreads();
        lm_fused_tile_accumulate<DPT, true>(dk_acc, buffer, Qs, hd, ty, tx);
    }
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        const int j = key0 + ty * 4 + kk;
        if (j >= T) continue;
        float *dk_row = dk + head + (size_t)j * a.stride, *dv_row = dv + head + (size_t)j * a.stride;
#pragma unroll
        for (int d = 0; d < DPT; d++) {
            const int col = tx + 16 * d;
            if (col < hd) {
                dk_row[col] += a.scale * dk_acc[kk][d];
                dv_row[col] += dv_acc[kk][d];
            }
        }
    }
}

/* Kernel 3: block (bh, query tile). */
template <int DPT, typename S>
__global__ void __launch_bounds__(LM_FUSED_THREADS, 1)
    lm_attention_fused_dq_kernel(float *dq, const float *dout, const float *lse, const float *D, lm_fused_args<S> a) {
    extern __shared__ float smem[];
    __shared__ int first_shown_s;
    __shared__ int mask_s[LM_FUSED_TILE];
    const int hd = a.hd, ldt = hd + 1, T = a.T;
    const int bh = blockIdx.x, b = bh / a.NH, h = bh % a.NH;
    const int first = blockIdx.y * LM_FUSED_TILE;
    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
    float *Qs = smem, *dOs = Qs + LM_FUSED_TILE * ldt, *Ks = dOs + LM_FUSED_TILE * ldt, *Vs = Ks + LM_FUSED_TILE * ldt;
    float *buffer = Vs + LM_FUSED_TILE * ldt; /* [64, 64]: dS */
    const size_t head = (size_t)b * T * a.stride + (size_t)h * hd;
    const size_t out_head = (size_t)b * T * a.C + (size_t)h * hd;
    const int32_t *mask = a.key_mask ? a.key_mask + (size_t)b * T : NULL;

    const int first_shown = lm_fused_first_shown(mask, T, &first_shown_s);
    lm_fused_load_tile(Qs, a.q + head, a.stride, first, T, hd);
    lm_fused_load_tile(dOs, dout + out_head, a.C, first, T, hd);
    lm_fused_row rows[4];
    float row_lse[4], row_D[4], dq_acc[4][DPT];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        rows[r] = lm_fused_row_of(a, first + ty * 4 + r, first_shown);
        const bool real = rows[r].query < T;
        row_lse[r] = real ? lse[(size_t)bh * T + rows[r].query] : 0.0f;
        row_D[r] = real ? D[(size_t)bh * T + rows[r].query] : 0.0f;
#pragma unroll
        for (int d = 0; d < DPT; d++) dq_acc[r][d] = 0.0f;
    }
    lm_dropout_key dk_key = {0, 0};
    if (a.drop_mode == LM_FUSED_DROP_SOME) dk_key = lm_dropout_key_load(a.key, a.site);

    const int key_end = lm_fused_key_end(a, first, first_shown);
    for (int key0 = 0; key0 < key_end; key0 += LM_FUSED_TILE) {
        __syncthreads(); /* the previous key tile's K, V, mask and buffer are no longer read */
        lm_fused_load_tile(Ks, a.k + head, a.stride, key0, T, hd);
        lm_fused_load_tile(Vs, a.v + head, a.stride, key0, T, hd);
        if (tid < LM_FUSED_TILE) {
            const int j = key0 + tid;
            mask_s[tid] = j < T && (!mask || mask[j] != 0);
        }
        __syncthreads();
        float s[4][4], da[4][4], A[4][4], dS[4][4];
        lm_fused_tile_dots(s, Qs, Ks, hd, ty, tx);
        lm_fused_tile_dots(da, dOs, Vs, hd, ty, tx);
        lm_fused_score_gradient(a, dk_key, bh, rows, key0, mask_s, tx, s, da, row_lse, row_D, A, dS);
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int c = 0; c < 4; c++) buffer[(ty * 4 + r) * LM_FUSED_LDP + tx + 16 * c] = dS[r][c];
        __syncthreads();
        /* dQ[query, d] += Σ_key dS[query, key] · K[key, d] (scaled at the end) */
        lm_fused_tile_accumulate<DPT>(dq_acc, buffer, Ks, hd, ty, tx);
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        if (rows[r].query >= T) continue;
        float *dq_row = dq + head + (size_t)rows[r].query * a.stride;
#pragma unroll
        for (int d = 0; d < DPT; d++)
            if (tx + 16 * d < hd) dq_row[tx + 16 * d] += a.scale * dq_acc[r][d];
    }
}

/* ---- host side (tests/gpu/emulate compiles the whole file on the CPU, this part included) ---- */

/* The names a kept failure gives, per op. */
struct fused_backward_names {
    const char *op, *dot, *dkdv, *dq;
};

template <int DPT, typename S>
static void launch_backward(lm_cuda_ctx *ctx, const fused_backward_names &names, float *dq, float *dk, float *dv,
                            const float *dout, const float *lse, const float *D, const lm_fused_args<S> &a, int B) {
    static size_t allowed_dkdv = 0, allowed_dq = 0; /* this instance's shared-memory limits, raised once */
    const size_t smem = lm_fused_smem_bytes(4, a.hd);
    if (!lm_fused_allow_smem(ctx, names.op, (const void *)lm_attention_fused_dkdv_kernel<DPT, S>, smem,
                             &allowed_dkdv) ||
        !lm_fused_allow_smem(ctx, names.op, (const void *)lm_attention_fused_dq_kernel<DPT, S>, smem, &allowed_dq))
        return;
    const dim3 grid((unsigned)(B * a.NH), (unsigned)((a.T + LM_FUSED_TILE - 1) / LM_FUSED_TILE));
    lm_attention_fused_dkdv_kernel<DPT, S><<<grid, LM_FUSED_THREADS, smem, ctx->stream>>>(dk, dv, dout, lse, D, a);
    lm_cuda_check_launch(ctx, names.dkdv);
    lm_attention_fused_dq_kernel<DPT, S><<<grid, LM_FUSED_THREADS, smem, ctx->stream>>>(dq, dout, lse, D, a);
    lm_cuda_check_launch(ctx, names.dq);
}

/* Either op, by the stored type. */
template <typename S>
static void fused_backward(lm_cuda_ctx *ctx, const fused_backward_names &names, float *dq, float *dk, float *dv,
                           float *scratch, const float *dout, const S *out, const float *lse, const S *q, const S *k,
                           const S *v, int stride, const int32_t *key_mask, int causal, int B, int T, int C, int NH,
                           float dropout_p, const lm_step_state *key, int site) {
    lm_fused_args<S> a;
    if (!lm_fused_prepare(ctx, names.op, &a, q, k, v, stride, key_mask, causal, B, T, C, NH, dropout_p, key, site))
        return;
    const size_t rows = (size_t)B * (size_t)NH * (size_t)T;
    const unsigned blocks = (unsigned)((rows + LM_FUSED_DOT_ROWS_PER_BLOCK - 1) / LM_FUSED_DOT_ROWS_PER_BLOCK);
    lm_attention_fused_dot_kernel<S><<<blocks, LM_FUSED_THREADS, 0, ctx->stream>>>(scratch, dout, out, T, C, NH, a.hd,
                                                                                   rows);
    lm_cuda_check_launch(ctx, names.dot);
    switch (lm_fused_columns_per_thread(a.hd)) {
    case 2: launch_backward<2>(ctx, names, dq, dk, dv, dout, lse, scratch, a, B); break;
    case 4: launch_backward<4>(ctx, names, dq, dk, dv, dout, lse, scratch, a, B); break;
    default: launch_backward<8>(ctx, names, dq, dk, dv, dout, lse, scratch, a, B); break;
    }
}

extern "C" void lm_cuda_attention_fused_backward(lm_cuda_ctx *ctx, float *dq, float *dk, float *dv, float *scratch,
                                                 const float *dout, const float *out, const float *lse,
                                                 const float *q, const float *k, const float *v, int stride,
                                                 const int32_t *key_mask, int causal, int B, int T, int C, int NH,
                                                 float dropout_p, const lm_step_state *key, int site) {
    static const fused_backward_names names = {"attention_fused_backward", "attention_fused_backward (dout·out)",
                                               "attention_fused_backward (dk, dv)", "attention_fused_backward (dq)"};
    fused_backward(ctx, names, dq, dk, dv, scratch, dout, out, lse, q, k, v, stride, key_mask, causal, B, T, C, NH,
                   dropout_p, key, site);
}

extern "C" void lm_cuda_attention_fused_backward_bf16(lm_cuda_ctx *ctx, float *dq, float *dk, float *dv,
                                                      float *scratch, const float *dout, const uint16_t *out,
                                                      const float *lse, const uint16_t *q, const uint16_t *k,
                                                      const uint16_t *v, int stride, const int32_t *key_mask,
                                                      int causal, int B, int T, int C, int NH, float dropout_p,
                                                      const lm_step_state *key, int site) {
    static const fused_backward_names names = {
        "attention_fused_backward_bf16", "attention_fused_backward_bf16 (dout·out)",
        "attention_fused_backward_bf16 (dk, dv)", "attention_fused_backward_bf16 (dq)"};
    fused_backward(ctx, names, dq, dk, dv, scratch, dout, out, lse, q, k, v, stride, key_mask, causal, B, T, C, NH,
                   dropout_p, key, site);
}

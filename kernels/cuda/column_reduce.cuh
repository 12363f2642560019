/* Deterministic column sums out[a][c] += Σ_r value_a(r, c) over N rows, for
 * bias and LayerNorm parameter gradients, without float atomics; or
 * out[a][c] = Σ (outs.write: a gradient's first micro-batch, the sum added
 * onto a 0 that is not read, as the CPU twins write).
 *
 * Stage 1: the rows are cut into `chunks` fixed ranges (a function of N and
 * C only, never of the GPU, so results are reproducible everywhere); a
 * 32 x 8 block sums one 32-column tile of one chunk, each thread a strided
 * set of rows, then the 8 partial sums in order.  Stage 2 adds the chunks'
 * partials in chunk order.  With one chunk, stage 1 adds to `out` directly.
 *
 * F: a functor with `__device__ void operator()(int r, int c, float (&v)[NACC]) const`. */
#ifndef LM_CUDA_COLUMN_REDUCE_CUH
#define LM_CUDA_COLUMN_REDUCE_CUH

#include "act_storage.cuh"
#include "cuda_common.cuh"

/* The value functor of a single sum over a row-major [N, stride] matrix
 * stored as float or bf16 (widened: act_storage.cuh): a bias gradient. */
template <typename T> struct lm_stored_column {
    const T *values;
    int stride;
    __device__ void operator()(int r, int c, float (&v)[1]) const {
        v[0] = lm_load_act(values + (size_t)r * stride + c);
    }
};

template <int NACC> struct lm_column_outputs {
    float *out[NACC]; /* a NULL entry is skipped */
    bool write;       /* = the sums (out is not read), not += */
};

/* Where a column's total goes: added, or written. */
template <int NACC> __device__ inline void lm_column_store(const lm_column_outputs<NACC> &outs, int a, int c,
                                                          float total) {
    float *out = outs.out[a] + c;
    *out = (outs.write ? 0.0f : *out) + total;
}

#define LM_COLUMN_TILE 32
#define LM_COLUMN_ROWS 8

template <int NACC, typename F>
__global__ void lm_column_partial_kernel(lm_column_outputs<NACC> outs, float *partial, F value, int N, int C,
                                         int rows_per_chunk) {
    __shared__ float sums[NACC][LM_COLUMN_ROWS][LM_COLUMN_TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int c = blockIdx.x * LM_COLUMN_TILE + tx;
    const int chunk = blockIdx.y;
    const int row_begin = chunk * rows_per_chunk;
    const int row_end = min(N, row_begin + rows_per_chunk);
    float acc[NACC];
#pragma unroll
    for (int a = 0; a < NACC; a++) acc[a] = 0.0f;
    if (c < C) {
        for (int r = row_begin + ty; r < row_end; r += LM_COLUMN_ROWS) {
            float v[NACC];
            value(r, c, v);
#pragma unroll
            for (int a = 0; a < NACC; a++) acc[a] += v[a];
        }
    }
#pragma unroll
    for (int a = 0; a < NACC; a++) sums[a][ty][tx] = acc[a];
    __syncthreads();
    if (ty != 0 || c >= C) return;
#pragma unroll
    for (int a = 0; a < NACC; a++) {
        float total = 0.0f;
        for (int y = 0; y < LM_COLUMN_ROWS; y++) total += sums[a][y][tx];
        if (partial) {
            partial[((size_t)chunk * NACC + a) * C + c] = total;
        } else if (outs.out[a]) {
            lm_column_store(outs, a, c, total);
        }
    }
}

template <int NACC>
__global__ void lm_column_finish_kernel(lm_column_outputs<NACC> outs, const float *partial, int chunks, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
#pragma unroll
    for (int a = 0; a < NACC; a++) {
        if (!outs.out[a]) continue;
        float total = 0.0f;
        for (int chunk = 0; chunk < chunks; chunk++) total += partial[((size_t)chunk * NACC + a) * C + c];
        lm_column_store(outs, a, c, total);
    }
}

/* Queues both stages on ctx's stream; checks the launches as `op`. */
template <int NACC, typename F>
void lm_column_reduce(lm_cuda_ctx *ctx, const char *op, lm_column_outputs<NACC> outs, F value, int N, int C) {
    if (N <= 0 || C <= 0) return;
    int any = 0;
    for (int a = 0; a < NACC; a++) any |= outs.out[a] != NULL;
    if (!any) return;
    /* Up to 32 chunks of at least 16 rows; fewer when the partials would not
     * fit the scratch area (very wide C). */
    int chunks = (N + 15) / 16;
    if (chunks > 32) chunks = 32;
    while (chunks > 1 && (size_t)chunks * NACC * (size_t)C * sizeof(float) > ctx->scratch_bytes) chunks /= 2;
    const int rows_per_chunk = (N + chunks - 1) / chunks;
    chunks = (N + rows_per_chunk - 1) / rows_per_chunk;
    float *partial = chunks > 1 ? (float *)ctx->scratch : NULL;
    dim3 block(LM_COLUMN_TILE, LM_COLUMN_ROWS);
    dim3 grid((C + LM_COLUMN_TILE - 1) / LM_COLUMN_TILE, chunks);
    lm_column_partial_kernel<NACC, F><<<grid, block, 0, ctx->stream>>>(outs, partial, value, N, C, rows_per_chunk);
    if (partial) {
        lm_column_finish_kernel<NACC><<<(C + LM_CUDA_BLOCK - 1) / LM_CUDA_BLOCK, LM_CUDA_BLOCK, 0, ctx->stream>>>(
            outs, partial, chunks, C);
    }
    lm_cuda_check_launch(ctx, op);
}

#endif

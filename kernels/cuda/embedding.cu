/* Token (+ position, + token type) embeddings, forward and a deterministic
 * backward: each embedding-table row sums the gradient rows of its
 * occurrences in (b, t) order, so no float atomics and the same bits every
 * run (llm.c's encoder_backward buckets on the host; this keeps everything
 * on the device so that a CUDA graph can capture it). */
#include "cuda_common.cuh"

__global__ void lm_embedding_forward_kernel(float *out, const int32_t *ids, const int32_t *type_ids, const float *wte,
                                            const float *wpe, const float *wtt, int T, int C, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t row = i / C;
        const int c = (int)(i % C);
        const int t = (int)(row % T);
        float v = wte[(size_t)ids[row] * C + c];
        /* Hugging Face BERT adds (word + type) + position, in that order. */
        if (wtt) v += wtt[(size_t)(type_ids ? type_ids[row] : 0) * C + c];
        out[i] = v + wpe[(size_t)t * C + c];
    }
}

/* dwpe[t, c] += Σ_b dout[b, t, c], b ascending. */
__global__ void lm_embedding_position_backward_kernel(float *dwpe, const float *dout, int B, int T, int C) {
    const size_t total = (size_t)T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        float acc = 0.0f;
        for (int b = 0; b < B; b++) acc += dout[(size_t)b * total + i];
        dwpe[i] += acc;
    }
}

#define LM_SCATTER_CHUNK 1024

/* table[ids[r], :] += rows[r, :] for r in [0, N) (ids == NULL: all row 0).
 * One block per row r; only the block of an id's first occurrence works: it
 * lists the occurrences r' >= r in ascending order (warp 0, ballot
 * compaction, LM_SCATTER_CHUNK at a time) and every thread sums its columns
 * over that list in that order. */
__global__ void lm_scatter_rows_kernel(float *table, const float *rows, const int32_t *ids, int N, int C) {
    __shared__ int occurrences[LM_SCATTER_CHUNK];
    __shared__ int occurrence_count;
    const int r = blockIdx.x;
    const int id = ids ? ids[r] : 0;
    int seen_before = 0;
    for (int j = threadIdx.x; j < r; j += blockDim.x) seen_before |= (ids ? ids[j] : 0) == id;
    if (__syncthreads_or(seen_before)) return; /* uniform across the block */

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int base = r; base < N; base += LM_SCATTER_CHUNK) {
        const int end = min(N, base + LM_SCATTER_CHUNK);
        if (warp == 0) {
            int count = 0;
            for (int j0 = base; j0 < end; j0 += 32) {
                const int j = j0 + lane;
                const bool match = j < end && (ids ? ids[j] : 0) == id;
                const unsigned mask = __ballot_sync(0xffffffffu, match);
                if (match) occurrences[count + __popc(mask & ((1u << lane) - 1u))] = j;
                count += __popc(mask);
            }
            if (lane == 0) occurrence_count = count;
        }
        __syncthreads();
        const int count = occurrence_count;
        if (count > 0) {
            for (int c = threadIdx.x; c < C; c += blockDim.x) {
                float acc = 0.0f;
                for (int k = 0; k < count; k++) acc += rows[(size_t)occurrences[k] * C + c];
                table[(size_t)id * C + c] += acc;
            }
        }
        __syncthreads(); /* the list is rewritten by the next chunk */
    }
}

extern "C" void lm_cuda_embedding_forward(lm_cuda_ctx *ctx, float *out, const int32_t *ids, const int32_t *type_ids,
                                          const float *wte, const float *wpe, const float *wtt, int B, int T,
                                          int C) {
    const size_t total = (size_t)B * T * C;
    if (total == 0) return;
    lm_embedding_forward_kernel<<<lm_cuda_grid_for(total, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(
        out, ids, type_ids, wte, wpe, wtt, T, C, total);
    lm_cuda_check_launch(ctx, "embedding_forward");
}

extern "C" void lm_cuda_embedding_backward(lm_cuda_ctx *ctx, float *dwte, float *dwpe, float *dwtt,
                                           const float *dout, const int32_t *ids, const int32_t *type_ids, int B,
                                           int T, int C) {
    const int N = B * T;
    if (N <= 0 || C <= 0) return;
    if (dwpe) {
        lm_embedding_position_backward_kernel<<<lm_cuda_grid_for((size_t)T * C, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0,
                                                ctx->stream>>>(dwpe, dout, B, T, C);
    }
    if (dwte) lm_scatter_rows_kernel<<<N, LM_CUDA_BLOCK, 0, ctx->stream>>>(dwte, dout, ids, N, C);
    if (dwtt) lm_scatter_rows_kernel<<<N, LM_CUDA_BLOCK, 0, ctx->stream>>>(dwtt, dout, type_ids, N, C);
    lm_cuda_check_launch(ctx, "embedding_backward");
}

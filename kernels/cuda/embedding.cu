/* Token (+ position, + token type) embeddings, forward and a deterministic
 * backward: each embedding-table row adds the gradient rows of its
 * occurrences in (b, t) order onto its stored value, as the CPU does, so no
 * float atomics and the CPU's bits every run.  The occurrences are grouped
 * by a stable device radix sort of (id, row) pairs (CUB, header-only, part
 * of the toolkit), so the work is linear in the batch; llm.c's
 * encoder_backward buckets on the host instead, which a CUDA graph could
 * not capture. */
#include <stdio.h>
#include <stdlib.h>

#include <cub/device/device_radix_sort.cuh>

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

/* dwpe[t, c] += dout[b, t, c] for b ascending, added one at a time onto
 * the stored value: the CPU's order (kernels/cpu/embedding.c), so the same
 * bits. */
__global__ void lm_embedding_position_backward_kernel(float *dwpe, const float *dout, int B, int T, int C) {
    const size_t total = (size_t)T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        float acc = dwpe[i];
        for (int b = 0; b < B; b++) acc += dout[(size_t)b * total + i];
        dwpe[i] = acc;
    }
}

/* table[id, :] += rows[r, :] over the (id, r) pairs sorted by id, r
 * ascending within an id (a stable sort of ids whose values were r = 0..N-1).
 * One block per sorted pair; only the block at the start of an id's run
 * works, adding the run's rows one at a time onto the stored value, in r
 * order: the CPU's order and bits, and every row is read once (linear in N,
 * where the previous kernel made each row scan the batch: O(N²)).
 * sorted_ids == NULL: every row is row 0's (BERT without token types), the
 * pairs are (0, r) and only block 0 works. */
__global__ void lm_scatter_sorted_rows_kernel(float *table, const float *rows, const int32_t *sorted_ids,
                                              const int32_t *sorted_rows, int N, int C) {
    const int i = blockIdx.x;
    const int id = sorted_ids ? sorted_ids[i] : 0;
    if (i > 0 && (sorted_ids ? sorted_ids[i - 1] : 0) == id) return; /* uniform across the block */
    float *out = table + (size_t)id * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = out[c];
        for (int j = i; j < N && (sorted_ids ? sorted_ids[j] : 0) == id; j++)
            acc += rows[(size_t)(sorted_rows ? sorted_rows[j] : j) * C + c];
        out[c] = acc;
    }
}

/* positions[i] = i: the values the ids are sorted with, written once. */
__global__ void lm_iota_kernel(int32_t *positions, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) positions[i] = i;
}

/* The sort's device memory, held by the context and grown (never during a
 * capture) to the largest batch seen: sorted ids, the row indices 0..N-1,
 * the row indices sorted, then CUB's temporary storage. */
struct lm_embedding_sort {
    void *memory;
    int capacity;        /* rows the index arrays hold */
    size_t cub_bytes;    /* CUB's temporary storage after them */
    int32_t *sorted_ids, *rows, *sorted_rows;
    void *cub_temp;
};

static size_t cub_bytes_for(int N, cudaStream_t stream) {
    size_t bytes = 0;
    cub::DeviceRadixSort::SortPairs(NULL, bytes, (const int32_t *)NULL, (int32_t *)NULL, (const int32_t *)NULL,
                                    (int32_t *)NULL, N, 0, 32, stream);
    return bytes;
}

/* The context's sort scratch, large enough for N rows, or NULL with a
 * failure kept.  Growing allocates, which a stream capture forbids: a
 * captured step must follow an eager one of the same (or a larger) batch,
 * as the message says. */
static lm_embedding_sort *sort_scratch(lm_cuda_ctx *ctx, int N) {
    const size_t cub_bytes = cub_bytes_for(N, ctx->stream);
    lm_embedding_sort *s = ctx->embedding_sort;
    if (s && s->capacity >= N && s->cub_bytes >= cub_bytes) return s;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(ctx->stream, &capture) == cudaSuccess && capture != cudaStreamCaptureStatusNone) {
        char reason[200];
        snprintf(reason, sizeof reason,
                 "its sort scratch holds %d rows and the batch has %d: run one step of this batch size before "
                 "capturing (memory cannot be allocated during a capture)",
                 s ? s->capacity : 0, N);
        lm_cuda_ctx_keep_error(ctx, "embedding_backward", reason);
        return NULL;
    }
    if (!s) {
        s = (lm_embedding_sort *)calloc(1, sizeof *s);
        if (!s) {
            lm_cuda_ctx_keep_error(ctx, "embedding_backward", "out of host memory for the sort's bookkeeping");
            return NULL;
        }
        ctx->embedding_sort = s;
    }
    /* The old memory may still be read by queued work. */
    if (s->memory && lm_cuda_keep_cuda(ctx, "embedding_backward", cudaStreamSynchronize(ctx->stream))) return NULL;
    cudaFree(s->memory);
    s->memory = NULL;
    s->capacity = 0;
    s->cub_bytes = 0;
    const size_t index_bytes = ((size_t)N * sizeof(int32_t) + 255) / 256 * 256;
    if (lm_cuda_keep_cuda(ctx, "embedding_backward (sort scratch)",
                          cudaMalloc(&s->memory, 3 * index_bytes + cub_bytes))) {
        s->memory = NULL;
        return NULL;
    }
    s->sorted_ids = (int32_t *)s->memory;
    s->rows = (int32_t *)((char *)s->memory + index_bytes);
    s->sorted_rows = (int32_t *)((char *)s->memory + 2 * index_bytes);
    s->cub_temp = (char *)s->memory + 3 * index_bytes;
    s->capacity = N;
    s->cub_bytes = cub_bytes;
    lm_iota_kernel<<<lm_cuda_grid_for((size_t)N, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(s->rows, N);
    return s;
}

void lm_cuda_embedding_sort_free(lm_cuda_ctx *ctx) {
    if (!ctx->embedding_sort) return;
    cudaFree(ctx->embedding_sort->memory);
    free(ctx->embedding_sort);
    ctx->embedding_sort = NULL;
}

/* table[ids[r], :] += rows[r, :], r in (b, t) order within each id. */
static void scatter_rows(lm_cuda_ctx *ctx, float *table, const float *rows, const int32_t *ids, int N, int C) {
    if (!ids) {
        lm_scatter_sorted_rows_kernel<<<1, LM_CUDA_BLOCK, 0, ctx->stream>>>(table, rows, NULL, NULL, N, C);
        return;
    }
    lm_embedding_sort *s = sort_scratch(ctx, N);
    if (!s) return;
    size_t cub_bytes = s->cub_bytes;
    /* Stable: equal ids keep their rows ascending, which is the (b, t) order. */
    if (lm_cuda_keep_cuda(ctx, "embedding_backward (radix sort)",
                          cub::DeviceRadixSort::SortPairs(s->cub_temp, cub_bytes, ids, s->sorted_ids, s->rows,
                                                          s->sorted_rows, N, 0, 32, ctx->stream)))
        return;
    lm_scatter_sorted_rows_kernel<<<N, LM_CUDA_BLOCK, 0, ctx->stream>>>(table, rows, s->sorted_ids, s->sorted_rows,
                                                                         N, C);
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
    if (dwte) scatter_rows(ctx, dwte, dout, ids, N, C);
    if (dwtt) scatter_rows(ctx, dwtt, dout, type_ids, N, C);
    lm_cuda_check_launch(ctx, "embedding_backward");
}

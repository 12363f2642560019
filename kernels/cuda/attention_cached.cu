/* Attention over a key/value cache for incremental decoding, the CPU twin's
 * semantics exactly (kernels/cpu/attention_cached.c): query i of a step sits
 * at position pos+i and sees cached keys 0..pos+i; scores = q·k·hd^-0.5,
 * softmax over the visible keys, later keys get probability exactly 0, then
 * · v.  No dropout, no key mask (generation is eval mode, one sequence).
 *
 * Written for clarity, not peak speed: one block per (head, query).  Its
 * threads compute the scores of the visible keys (one key per thread, a
 * plain loop over the head's channels), two block reductions give the max
 * and the sum, and then one thread per output channel sums probability ×
 * value over the keys in key order.  Every sum runs in a fixed order, so
 * results are identical run to run.  A decoding step has few queries and
 * the GEMMs around it dominate; the prompt step is the only large one. */
#include <math.h>

#include "cuda_common.cuh"

#define LM_CACHED_ATT_BLOCK 128

__global__ void lm_kv_cache_append_kernel(float *k_cache, float *v_cache, const float *k, const float *v, int stride,
                                          int pos, int n, int C) {
    const size_t total = (size_t)n * C;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        const size_t i = idx / C, c = idx % C;
        const size_t row = ((size_t)pos + i) * C + c;
        k_cache[row] = k[i * stride + c];
        v_cache[row] = v[i * stride + c];
    }
}

/* Grid (NH, min(n, 65535)): block (h, y) handles the queries y, y + gridDim.y,
 * ... of head h.  Dynamic shared memory: the query's hd channels. */
__global__ void lm_attention_cached_kernel(float *out, float *att, const float *q, const float *k_cache,
                                           const float *v_cache, int stride, int pos, int n, int C, int hd,
                                           float scale) {
    extern __shared__ float q_head[];
    __shared__ float reduce_scratch[32];
    const int h = blockIdx.x, T = pos + n;
    const size_t head = (size_t)h * hd;
    for (int i = blockIdx.y; i < n; i += gridDim.y) {
        const int visible = pos + i + 1;
        float *probs = att + ((size_t)h * n + i) * T;
        __syncthreads(); /* the previous query's q_head is no longer read */
        for (int d = threadIdx.x; d < hd; d += blockDim.x) q_head[d] = q[(size_t)i * stride + head + d];
        __syncthreads();

        /* Scores, as the CPU's GEMM does: scale · (q · k). */
        float local_max = -INFINITY;
        for (int j = threadIdx.x; j < visible; j += blockDim.x) {
            const float *k_row = k_cache + (size_t)j * C + head;
            float dot = 0.0f;
            for (int d = 0; d < hd; d++) dot += q_head[d] * k_row[d];
            const float s = scale * dot;
            probs[j] = s;
            local_max = fmaxf(local_max, s);
        }
        const float max_score = lm_block_max(local_max, reduce_scratch);
        float local_sum = 0.0f;
        for (int j = threadIdx.x; j < visible; j += blockDim.x) { /* each thread rereads its own scores */
            const float e = expf(probs[j] - max_score);
            probs[j] = e;
            local_sum += e;
        }
        const float inv_sum = 1.0f / lm_block_sum(local_sum, reduce_scratch);
        for (int j = threadIdx.x; j < T; j += blockDim.x) probs[j] = j < visible ? probs[j] * inv_sum : 0.0f;
        __syncthreads(); /* every probability written before any thread sums them */

        for (int d = threadIdx.x; d < hd; d += blockDim.x) {
            const float *v_column = v_cache + head + d;
            float acc = 0.0f;
            for (int j = 0; j < visible; j++) acc += probs[j] * v_column[(size_t)j * C];
            out[(size_t)i * C + head + d] = acc;
        }
    }
}

extern "C" void lm_cuda_kv_cache_append(lm_cuda_ctx *ctx, float *k_cache, float *v_cache, const float *k,
                                        const float *v, int stride, int pos, int n, int C) {
    if (n <= 0 || C <= 0) return;
    const size_t total = (size_t)n * C;
    lm_kv_cache_append_kernel<<<lm_cuda_grid_for(total, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(
        k_cache, v_cache, k, v, stride, pos, n, C);
    lm_cuda_check_launch(ctx, "kv_cache_append");
}

extern "C" void lm_cuda_attention_cached_forward(lm_cuda_ctx *ctx, float *out, float *att, const float *q,
                                                 const float *k_cache, const float *v_cache, int stride, int pos,
                                                 int n, int C, int NH) {
    if (n <= 0 || C <= 0 || NH <= 0) return;
    const int hd = C / NH;
    const float scale = (float)(1.0 / sqrt((double)hd));
    const dim3 grid((unsigned)NH, (unsigned)(n < 65535 ? n : 65535));
    lm_attention_cached_kernel<<<grid, LM_CACHED_ATT_BLOCK, (size_t)hd * sizeof(float), ctx->stream>>>(
        out, att, q, k_cache, v_cache, stride, pos, n, C, hd, scale);
    lm_cuda_check_launch(ctx, "attention_cached_forward");
}

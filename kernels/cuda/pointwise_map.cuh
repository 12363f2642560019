/* Internal to kernels/cuda: element-wise kernels with 16-byte (float4)
 * loads and stores where every pointer allows, and a scalar tail.
 *
 *   out[i] = op(x[i], y[i], out[i], i)   for i in [0, n)
 *
 * y may be NULL (op sees 0); out[i] is read only when Op::reads_out (a
 * backward that adds into dinp).  out may alias x or y: each element is
 * read and written by the same thread.  The per-element arithmetic is the
 * op's either way, so the vectorised and scalar paths give the same bits,
 * and the element index i reaches the op (dropout draws its mask from it). */
#ifndef LM_CUDA_POINTWISE_MAP_CUH
#define LM_CUDA_POINTWISE_MAP_CUH

#include "cuda_common.cuh"

static inline bool lm_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

template <typename Op>
__global__ void lm_pointwise_map_kernel(float *out, const float *x, const float *y, size_t n, Op op, bool vectorised) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t scalar_begin = 0;
    if (vectorised) {
        const size_t n4 = n / 4;
        const float4 *x4 = (const float4 *)x, *y4 = (const float4 *)y;
        float4 *out4 = (float4 *)out;
        for (size_t v = tid; v < n4; v += stride) {
            const float4 a = x4[v];
            const float4 b = y ? y4[v] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            float4 o = Op::reads_out ? out4[v] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            const size_t i = 4 * v;
            o.x = op(a.x, b.x, o.x, i);
            o.y = op(a.y, b.y, o.y, i + 1);
            o.z = op(a.z, b.z, o.z, i + 2);
            o.w = op(a.w, b.w, o.w, i + 3);
            out4[v] = o;
        }
        scalar_begin = 4 * n4;
    }
    for (size_t i = scalar_begin + tid; i < n; i += stride)
        out[i] = op(x[i], y ? y[i] : 0.0f, Op::reads_out ? out[i] : 0.0f, i);
}

/* Queues the map on ctx's stream, float4 when out, x and y are 16-byte
 * aligned; checks the launch as `name`. */
template <typename Op>
void lm_pointwise_map(lm_cuda_ctx *ctx, const char *name, float *out, const float *x, const float *y, size_t n, Op op) {
    if (n == 0) return;
    const bool vectorised = lm_aligned16(out) && lm_aligned16(x) && (!y || lm_aligned16(y));
    const size_t work = vectorised ? (n + 3) / 4 : n;
    lm_pointwise_map_kernel<Op><<<lm_cuda_grid_for(work, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(
        out, x, y, n, op, vectorised);
    lm_cuda_check_launch(ctx, name);
}

#endif

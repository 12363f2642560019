/* Internal to kernels/cuda: element-wise kernels with four elements per
 * load and store (a float4 for fp32, 8 bytes for bf16) where every pointer
 * allows, and a scalar tail.
 *
 *   out[i] = op(x[i], y[i], out[i], i)   for i in [0, n)
 *
 * Each of out, x and y is stored as float or as bf16 (uint16_t,
 * act_storage.cuh): the op computes in fp32 on the widened values and each
 * output is rounded once, so a bf16 map gives the float map's values on
 * the widened inputs, rounded.
 *
 * y may be NULL (op sees 0); out[i] is read only when Op::reads_out (a
 * backward that adds into dinp).  out may alias x or y where their types
 * match: each element is read and written by the same thread.  The
 * per-element arithmetic is the op's either way, so the vectorised and
 * scalar paths give the same bits, and the element index i reaches the op
 * (dropout draws its mask from it). */
#ifndef LM_CUDA_POINTWISE_MAP_CUH
#define LM_CUDA_POINTWISE_MAP_CUH

#include "act_storage.cuh"
#include "cuda_common.cuh"

/* Whether p can be read four elements at a time (16 bytes of float, 8 of bf16). */
template <typename T> static inline bool lm_aligned_for4(const T *p) {
    return ((uintptr_t)p % (4 * sizeof(T))) == 0;
}

/* Four bf16 values as one 8-byte access. */
struct alignas(8) lm_bf16x4 {
    uint16_t v[4];
};

/* Elements 4v .. 4v+3, widened; and stored back, each rounded once. */
__device__ __forceinline__ float4 lm_load4(const float *p, size_t v) { return ((const float4 *)p)[v]; }
__device__ __forceinline__ float4 lm_load4(const uint16_t *p, size_t v) {
    const lm_bf16x4 q = ((const lm_bf16x4 *)p)[v];
    return make_float4(lm_bf16_to_float(q.v[0]), lm_bf16_to_float(q.v[1]), lm_bf16_to_float(q.v[2]),
                       lm_bf16_to_float(q.v[3]));
}
__device__ __forceinline__ void lm_store4(float *p, size_t v, float4 value) { ((float4 *)p)[v] = value; }
__device__ __forceinline__ void lm_store4(uint16_t *p, size_t v, float4 value) {
    lm_bf16x4 q;
    q.v[0] = lm_bf16_from_float(value.x);
    q.v[1] = lm_bf16_from_float(value.y);
    q.v[2] = lm_bf16_from_float(value.z);
    q.v[3] = lm_bf16_from_float(value.w);
    ((lm_bf16x4 *)p)[v] = q;
}

template <typename Op, typename TOut, typename TX, typename TY>
__global__ void lm_pointwise_map_kernel(TOut *out, const TX *x, const TY *y, size_t n, Op op, bool vectorised) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t scalar_begin = 0;
    if (vectorised) {
        const size_t n4 = n / 4;
        for (size_t v = tid; v < n4; v += stride) {
            const float4 a = lm_load4(x, v);
            const float4 b = y ? lm_load4(y, v) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            float4 o = Op::reads_out ? lm_load4(out, v) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            const size_t i = 4 * v;
            o.x = op(a.x, b.x, o.x, i);
            o.y = op(a.y, b.y, o.y, i + 1);
            o.z = op(a.z, b.z, o.z, i + 2);
            o.w = op(a.w, b.w, o.w, i + 3);
            lm_store4(out, v, o);
        }
        scalar_begin = 4 * n4;
    }
    for (size_t i = scalar_begin + tid; i < n; i += stride)
        lm_store_act(out + i, op(lm_load_act(x + i), y ? lm_load_act(y + i) : 0.0f,
                                 Op::reads_out ? lm_load_act(out + i) : 0.0f, i));
}

/* Queues the map on ctx's stream, four elements per access when out, x and
 * y are aligned for it; checks the launch as `name`. */
template <typename Op, typename TOut, typename TX, typename TY>
void lm_pointwise_map(lm_cuda_ctx *ctx, const char *name, TOut *out, const TX *x, const TY *y, size_t n, Op op) {
    if (n == 0) return;
    const bool vectorised = lm_aligned_for4(out) && lm_aligned_for4(x) && (!y || lm_aligned_for4(y));
    const size_t work = vectorised ? (n + 3) / 4 : n;
    lm_pointwise_map_kernel<Op, TOut, TX, TY><<<lm_cuda_grid_for(work, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(
        out, x, y, n, op, vectorised);
    lm_cuda_check_launch(ctx, name);
}

#endif

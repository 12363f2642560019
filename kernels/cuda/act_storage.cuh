/* How a kernel reads and writes an activation it stores as `float` or as
 * bf16 (`uint16_t`, kernels/bf16.h): one load/store pair, so that a kernel
 * templated on the stored type does fp32 arithmetic inside and the
 * widening and the rounding (torch's round-to-nearest-even, NaN -> 0x7FC0)
 * happen in one place (NOTES_bf16_storage.md, point 2).  The float pair
 * is a plain load and store: a kernel's float instantiation does the same
 * operations as the untemplated kernel did.
 *
 * The vector pair moves 16 bytes at once (one 128-bit access: 4 floats or
 * 8 bf16), the i-th 16-byte vector from a 16-byte-aligned `base`, to or
 * from `lm_act_vec<T>::width` fp32 values; the caller splits its rows so
 * that `base` is aligned
 * (crossentropy_forward_backward.cu).  The float pair is a float4 access
 * taken apart in x, y, z, w order; the bf16 pair a uint4 whose 32-bit words
 * each hold two values, the lower address in the low half (little-endian,
 * as on every GPU), each widened or rounded by the scalar pair's rule. */
#ifndef LM_CUDA_ACT_STORAGE_CUH
#define LM_CUDA_ACT_STORAGE_CUH

#include <stdint.h>

#include "bf16.h"

__device__ __forceinline__ float lm_load_act(const float *p) { return *p; }
__device__ __forceinline__ void lm_store_act(float *p, float value) { *p = value; }

__device__ __forceinline__ float lm_load_act(const uint16_t *p) { return lm_bf16_to_float(*p); }
__device__ __forceinline__ void lm_store_act(uint16_t *p, float value) { *p = lm_bf16_from_float(value); }

/* Elements of T in 16 bytes. */
template <typename T> struct lm_act_vec;
template <> struct lm_act_vec<float> {
    static constexpr int width = 4;
};
template <> struct lm_act_vec<uint16_t> {
    static constexpr int width = 8;
};

__device__ __forceinline__ void lm_load_act_vec(const float *base, int i, float v[4]) {
    const float4 q = reinterpret_cast<const float4 *>(base)[i];
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
}
__device__ __forceinline__ void lm_store_act_vec(float *base, int i, const float v[4]) {
    float4 q;
    q.x = v[0];
    q.y = v[1];
    q.z = v[2];
    q.w = v[3];
    reinterpret_cast<float4 *>(base)[i] = q;
}

__device__ __forceinline__ void lm_bf16_pair_widen(uint32_t word, float *v) {
    v[0] = lm_bf16_to_float((uint16_t)(word & 0xffffu));
    v[1] = lm_bf16_to_float((uint16_t)(word >> 16));
}
__device__ __forceinline__ uint32_t lm_bf16_pair_round(const float *v) {
    return (uint32_t)lm_bf16_from_float(v[0]) | ((uint32_t)lm_bf16_from_float(v[1]) << 16);
}
__device__ __forceinline__ void lm_load_act_vec(const uint16_t *base, int i, float v[8]) {
    const uint4 q = reinterpret_cast<const uint4 *>(base)[i];
    lm_bf16_pair_widen(q.x, v);
    lm_bf16_pair_widen(q.y, v + 2);
    lm_bf16_pair_widen(q.z, v + 4);
    lm_bf16_pair_widen(q.w, v + 6);
}
__device__ __forceinline__ void lm_store_act_vec(uint16_t *base, int i, const float v[8]) {
    uint4 q;
    q.x = lm_bf16_pair_round(v);
    q.y = lm_bf16_pair_round(v + 2);
    q.z = lm_bf16_pair_round(v + 4);
    q.w = lm_bf16_pair_round(v + 6);
    reinterpret_cast<uint4 *>(base)[i] = q;
}

#endif

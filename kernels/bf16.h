/* lmcore kernels — bfloat16 as lmcore stores it: the top 16 bits of an
 * IEEE float32, held in a uint16_t (C11 has no bf16 type), converted by
 * torch's rule on every device.
 *
 * One header for every writer of bf16 values (the kernels' logits and
 * their gradients, the optimizers' params_copy), so that the CPU and the
 * GPU, the model and the optimizer round the same way.  __host__
 * __device__ under nvcc: the CUDA kernels use the same integer formula
 * rather than __float2bfloat16_rn, whose NaNs keep their payload where
 * torch writes 0x7FC0.
 *
 * Internal to lmcore's plugins (the kernels and plugins/common/optimizer):
 * not part of the public API. */
#ifndef LM_KERNELS_BF16_H
#define LM_KERNELS_BF16_H

#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define LM_BF16_FN static inline __host__ __device__
#else
#define LM_BF16_FN static inline
#endif

/* torch's float32 -> bfloat16 (c10::round_to_nearest_even) on the float's
 * bits: NaN becomes 0x7FC0 (a quiet NaN, sign dropped), everything else
 * rounds to nearest, ties to even: a value past bf16's largest finite
 * (0x7F7F) rounds to infinity, subnormals round like any other value, ±inf
 * and ±0 stay as they are. */
LM_BF16_FN uint16_t lm_bf16_rne(uint32_t bits) {
    if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
    return (uint16_t)((bits + ((bits >> 16) & 1u) + 0x7fffu) >> 16);
}

/* The same on a float. */
LM_BF16_FN uint16_t lm_bf16_from_float(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return lm_bf16_rne(bits);
}

/* bfloat16 -> float32: exact (the low 16 bits are zero). */
LM_BF16_FN float lm_bf16_to_float(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

#undef LM_BF16_FN
#endif

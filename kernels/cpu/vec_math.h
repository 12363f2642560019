/* lmkernels — an expf that GCC vectorises.
 *
 * glibc's expf is only vectorised under -ffast-math, which the kernels do not
 * use (it would also reorder every reduction).  Softmax, cross-entropy and
 * the tanh GELU spend most of their time in exp, so this is the Cephes
 * single-precision algorithm written as branch-free code that
 * `#pragma omp simd` turns into AVX2: range reduction x = n ln2 + r with a
 * two-part ln2, a polynomial on |r| <= ln2/2, and 2^n built in the exponent
 * bits (as two factors, so that subnormal results and the overflow to +inf
 * come out of ordinary float rounding).
 *
 * Why it looks like this: without -ffast-math GCC neither vectorises
 * fminf/fmaxf nor keeps a float `?:` branch-free (it threads the branches,
 * constant-folding the clamped path), so there is no clamp: n is rounded
 * with the 1.5*2^23 trick (defined for any input), integer work is
 * unsigned, and out-of-range inputs are fixed up at the end with bit masks.
 * Error <= 1 ulp against the correctly rounded exp on [-87, 88] (checked by
 * test_kernels); x < -104 -> 0, x > 89 -> +inf, NaN -> NaN. */
#ifndef LM_KERNELS_VEC_MATH_H
#define LM_KERNELS_VEC_MATH_H

#include <stdint.h>
#include <string.h>

static inline uint32_t lm_float_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static inline float lm_bits_float(uint32_t bits) {
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static inline float lm_vexpf(float x) {
    const float round_magic = 12582912.0f; /* 1.5 * 2^23, bits 0x4B400000 */
    float shifted = x * 1.44269504088896341f + round_magic;
    float n = shifted - round_magic; /* round(x / ln2) while |x / ln2| < 2^22 */
    int32_t n_int = (int32_t)(lm_float_bits(shifted) - 0x4B400000u);
    /* ln2 = 0.693359375 - 2.12194440e-4: the first part has few mantissa
     * bits, so n * 0.693359375 is exact. */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.0f;
    /* For x in [-104, 89], n is in [-150, 129]: 2^n = 2^n1 * 2^n2 with both
     * factors normal. */
    int32_t n1 = n_int / 2, n2 = n_int - n1;
    y = y * lm_bits_float((uint32_t)(n1 + 127) << 23) * lm_bits_float((uint32_t)(n2 + 127) << 23);
    uint32_t x_bits = lm_float_bits(x);
    uint32_t nan_mask = 0u - (uint32_t)((x_bits & 0x7fffffffu) > 0x7f800000u);
    uint32_t low_mask = 0u - (uint32_t)(x < -104.0f);
    uint32_t high_mask = 0u - (uint32_t)(x > 89.0f);
    uint32_t y_bits = lm_float_bits(y) & ~(nan_mask | low_mask | high_mask);
    y_bits |= (x_bits & nan_mask) | (0x7f800000u & high_mask); /* low: +0 */
    return lm_bits_float(y_bits);
}

#endif

/* lmcore — counter-based random numbers (Philox4x32-10).
 *
 * A value is a pure function of (seed, counter): no hidden state, so the CPU
 * and the GPU draw the same dropout masks for the same element, runs are
 * reproducible, and a resumed run continues the same stream by storing
 * counters only.  Header-only so CUDA kernels use the very same code. */
#ifndef LMCORE_RNG_H
#define LMCORE_RNG_H

#include <stdint.h>

#if defined(__CUDACC__)
#define LM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LM_HOST_DEVICE static inline
#endif

typedef struct lm_u32x4 {
    uint32_t v[4];
} lm_u32x4;

LM_HOST_DEVICE uint32_t lm_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t product = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(product >> 32);
    return (uint32_t)product;
}

/* Philox4x32 with 10 rounds (Salmon et al., SC'11).  counter: 128 bits made of
 * two 64-bit words; key: the 64-bit seed. */
LM_HOST_DEVICE lm_u32x4 lm_philox4x32(uint64_t seed, uint64_t counter_lo, uint64_t counter_hi) {
    uint32_t c0 = (uint32_t)counter_lo, c1 = (uint32_t)(counter_lo >> 32);
    uint32_t c2 = (uint32_t)counter_hi, c3 = (uint32_t)(counter_hi >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = lm_mulhilo32(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = lm_mulhilo32(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    lm_u32x4 r;
    r.v[0] = c0;
    r.v[1] = c1;
    r.v[2] = c2;
    r.v[3] = c3;
    return r;
}

/* Uniform float in [0, 1) with 24 random bits. */
LM_HOST_DEVICE float lm_u32_to_unit_float(uint32_t x) {
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* The canonical draw used everywhere an element needs one uniform number:
 * stream separates uses (dropout site, masking, shuffling), index the element. */
LM_HOST_DEVICE float lm_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return lm_u32_to_unit_float(lm_philox4x32(seed, index, stream).v[0]);
}

LM_HOST_DEVICE uint32_t lm_rng_u32(uint64_t seed, uint64_t stream, uint64_t index) {
    return lm_philox4x32(seed, index, stream).v[0];
}

/* Uniform integer in [0, n) without modulo bias worth noticing for n < 2^24
 * (uses 64-bit multiply-shift on 32 random bits). */
LM_HOST_DEVICE uint32_t lm_rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint32_t n) {
    return (uint32_t)(((uint64_t)lm_rng_u32(seed, stream, index) * (uint64_t)n) >> 32);
}

/* Standard normal via Box-Muller from one Philox block (two uniforms). */
#if !defined(__CUDACC__)
#include <math.h>
#endif
LM_HOST_DEVICE float lm_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    lm_u32x4 r = lm_philox4x32(seed, index, stream);
    float u1 = ((float)(r.v[0] >> 8) + 1.0f) * (1.0f / 16777217.0f); /* (0, 1] */
    float u2 = lm_u32_to_unit_float(r.v[1]);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

/* Stream identifiers used by lmcore itself, so that plugins pick others. */
enum {
    LM_RNG_STREAM_INIT = 1,      /* weight initialisation (per tensor: + tensor index << 16) */
    LM_RNG_STREAM_SHUFFLE = 2,   /* per-epoch shuffles of training blocks */
    LM_RNG_STREAM_MASKING = 3,   /* MLM masking                            */
    LM_RNG_STREAM_DROPOUT = 4,   /* dropout (+ site << 8, step in the index's high bits) */
    LM_RNG_STREAM_SAMPLING = 5,  /* generation                             */
    LM_RNG_STREAM_DATA = 6,      /* random samples of dataset rows         */
    LM_RNG_STREAM_USER = 1000    /* first stream free for plugins          */
};

#endif

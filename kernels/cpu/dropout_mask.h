/* lmkernels — the dropout keep-mask, shared by every CPU kernel that drops
 * (dropout.c, attention.c) so that they agree with each other and with the
 * CUDA twins: element i is kept when lm_rng_uniform(seed, stream, i) >= p,
 * and a kept element is scaled by 1/(1-p) (torch: input * (mask / (1-p))).
 *
 * lm_rng_uniform is k / 2^24 with k the top 24 bits of the Philox draw, so
 * "uniform >= p" is exactly "k >= ceil(p · 2^24)" (p · 2^24 is exact in
 * float).  The integer form keeps the loops branch-free: GCC does not
 * vectorise a float comparison turned into a value under -ftrapping-math. */
#ifndef LM_KERNELS_DROPOUT_MASK_H
#define LM_KERNELS_DROPOUT_MASK_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lmcore/rng.h"

typedef struct lm_dropout_mask {
    uint32_t threshold;   /* keep when (draw >> 8) >= threshold */
    uint32_t scale_bits;  /* bits of 1/(1-p) */
} lm_dropout_mask;

/* For 0 < p < 1. */
static inline lm_dropout_mask lm_dropout_mask_make(float p) {
    lm_dropout_mask mask;
    mask.threshold = (uint32_t)ceilf(p * 16777216.0f);
    float scale = 1.0f / (1.0f - p);
    memcpy(&mask.scale_bits, &scale, sizeof scale);
    return mask;
}

/* 1/(1-p) for a kept element, +0 for a dropped one. */
static inline float lm_dropout_multiplier(lm_dropout_mask mask, uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t keep = (lm_rng_u32(seed, stream, index) >> 8) >= mask.threshold;
    uint32_t bits = mask.scale_bits & (0u - keep);
    float multiplier;
    memcpy(&multiplier, &bits, sizeof multiplier);
    return multiplier;
}

#endif

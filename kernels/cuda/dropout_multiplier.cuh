/* Internal to kernels/cuda: a dropout element's multiplier, shared by the
 * dropout kernels (dropout.cu) and the fused residual + LayerNorm
 * (residual_layernorm.cu) so that both draw the CPU twin's masks
 * (kernels/cpu/dropout_mask.h): element i is kept when
 * lm_rng_uniform(seed, stream, i) >= p, and then scaled by 1/(1-p). */
#ifndef LM_CUDA_DROPOUT_MULTIPLIER_CUH
#define LM_CUDA_DROPOUT_MULTIPLIER_CUH

#include "cuda_common.cuh"
#include "lmcore/rng.h"

/* 1/(1-p) for a kept element, 0 for a dropped one (0 < p < 1). */
__device__ __forceinline__ float lm_dropout_multiplier(uint64_t seed, uint64_t stream, uint64_t i, float p,
                                                       float scale) {
    return lm_rng_uniform(seed, stream, i) >= p ? scale : 0.0f;
}

#endif

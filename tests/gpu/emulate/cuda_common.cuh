/* Stand-in for kernels/cuda/cuda_common.cuh under emu_cuda.h: the dropout
 * key and the warp sum the fused kernels use, nothing of CUDA's runtime. */
#ifndef LM_CUDA_COMMON_CUH
#define LM_CUDA_COMMON_CUH

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

typedef struct lm_cuda_ctx lm_cuda_ctx;

struct lm_dropout_key {
    uint64_t seed, stream;
};

static inline lm_dropout_key lm_dropout_key_load(const lm_step_state *key, int site) {
    lm_dropout_key k;
    k.seed = __ldg(&key->seed);
    k.stream = lm_dropout_stream(__ldg(&key->micro_batch), site);
    return k;
}

template <typename Tv> static inline Tv lm_warp_sum(Tv v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

#endif

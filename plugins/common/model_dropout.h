/* Dropout in the architectures: which random stream each dropout site
 * draws from, and skipping the op when it would only copy.
 *
 * Masks are a pure function of (seed, stream, element index) (lmcore/rng.h),
 * the same on the CPU and the GPU, so that a run can move between them and
 * backward redraws nothing it cannot recompute. */
#ifndef LM_PLUGIN_MODEL_DROPOUT_H
#define LM_PLUGIN_MODEL_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "lmcore/rng.h"

/* The stream of dropout site `site` in the micro-batch of `step`: counters
 * differ per step and per site (site 0: embeddings; layer l: 1 + 3l the
 * attention probabilities, 2 + 3l the attention output, 3 + 3l the
 * feed-forward output). */
static inline uint64_t model_dropout_stream(uint64_t step, int site) {
    return (step << 24) | ((uint64_t)site << 8) | (uint64_t)LM_RNG_STREAM_DROPOUT;
}

/* out = dropout(inp) when p > 0, returning out; with p = 0 (eval mode, or
 * no dropout configured) returns inp itself and queues nothing. */
static inline const float *model_dropout_or_identity(lm_backend *be, float *out, const float *inp, size_t n, float p,
                                                     uint64_t seed, uint64_t stream) {
    if (p <= 0.0f) return inp;
    be->ops->dropout_forward(be, out, inp, n, p, seed, stream);
    return out;
}

#endif

/* Dropout in the architectures: which random stream each dropout site
 * draws from, and skipping the op when it would only copy.
 *
 * Masks are a pure function of (seed, stream, element index) (lmcore/rng.h),
 * the same on the CPU and the GPU, so that a run can move between them and
 * backward redraws nothing it cannot recompute.  The key (seed and
 * micro-batch counter) is read from the step state in device memory. */
#ifndef LM_PLUGIN_MODEL_DROPOUT_H
#define LM_PLUGIN_MODEL_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "lmcore/rng.h"

/* Dropout sites of a model: streams differ per micro-batch and per site
 * (lm_dropout_stream in backend.h; the micro-batch counter is read from the
 * step state on the device).  GPT-2 and BERT: site 0 the embeddings; layer
 * l: 1 + 3l the attention probabilities, 2 + 3l the attention output,
 * 3 + 3l the feed-forward output. */
#define MODEL_SITE_EMBEDDINGS 0
typedef enum model_layer_site {
    MODEL_SITE_ATTENTION_PROBS = 0,
    MODEL_SITE_ATTENTION_OUT = 1,
    MODEL_SITE_FFN_OUT = 2
} model_layer_site;
static inline int model_dropout_site(int layer, model_layer_site which) { return 1 + 3 * layer + (int)which; }

/* out = dropout(inp) when p > 0, returning out; with p = 0 (eval mode, or
 * no dropout configured) returns inp itself and queues nothing. */
static inline const float *model_dropout_or_identity(lm_backend *be, float *out, const float *inp, size_t n, float p,
                                                     const lm_step_state *key, int site) {
    if (p <= 0.0f) return inp;
    be->ops->dropout_forward(be, out, inp, n, p, key, site);
    return out;
}

#endif

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

/* The dropout sites of a transformer, by name: forward and backward of the
 * same site pass the same name (and layer), and the stream number is made
 * here only, so the two cannot disagree about the mask.  Streams differ per
 * micro-batch and per site (lm_dropout_stream in backend.h).  The numbers
 * are those of every run since the start (changing them changes every
 * trained model's masks): 0 the embeddings; layer l: 1 + 3l the attention
 * probabilities, 2 + 3l the attention output, 3 + 3l the feed-forward
 * output. */
typedef enum model_dropout_site {
    MODEL_DROPOUT_EMBEDDINGS = 0,      /* once per model: the layer is ignored */
    MODEL_DROPOUT_ATTENTION_PROBS = 1, /* inside attention_forward / attention_backward */
    MODEL_DROPOUT_ATTENTION_OUT = 2,   /* the attention block's output projection */
    MODEL_DROPOUT_FFN_OUT = 3          /* the feed-forward block's output projection */
} model_dropout_site;

/* The site number the backend ops take. */
static inline int model_dropout_stream(model_dropout_site site, int layer) {
    return site == MODEL_DROPOUT_EMBEDDINGS ? 0 : 3 * layer + (int)site;
}

/* out = dropout(inp) when p > 0, returning out; with p = 0 (eval mode, or
 * no dropout configured) returns inp itself and queues nothing. */
static inline const float *model_dropout_or_identity(lm_backend *be, float *out, const float *inp, size_t n, float p,
                                                     const lm_step_state *key, model_dropout_site site, int layer) {
    if (p <= 0.0f) return inp;
    be->ops->dropout_forward(be, out, inp, n, p, key, model_dropout_stream(site, layer));
    return out;
}

/* The gradient of that dropout's input: dinp (written by dropout_backward,
 * so not zeroed first) when p > 0, else dout itself. */
static inline const float *model_dropout_backward_or_identity(lm_backend *be, float *dinp, const float *dout,
                                                              size_t n, float p, const lm_step_state *key,
                                                              model_dropout_site site, int layer) {
    if (p <= 0.0f) return dout;
    be->ops->dropout_backward(be, dinp, dout, n, p, key, model_dropout_stream(site, layer));
    return dinp;
}

#endif

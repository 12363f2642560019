/* The attention of a layer, as both architectures run it (model_plugin.h):
 * which op (eager or fused, attn_implementation decided per batch shape),
 * and what backward rebuilds first under `recompute`.
 *
 * Written once for both storage dtypes of the activations: with
 * activation_dtype=bf16 q, k, v and the output are bf16 (uint16_t) and the
 * ops are the bf16 twins (backend_ops.def, "the attention block in bf16"),
 * whose probabilities, log-sum-exp, scratch and gradients stay fp32.  The
 * typed entry points below pass their pointers as void * to one dispatch,
 * with the dtype, so that the choice of op and the recompute rules cannot
 * differ between the two. */
#include "model_arena.h"
#include "model_dropout.h"
#include "model_plugin.h"

model_arena_probs model_attention_carve(const model_base *m, model_arena *a, int dropout, int B, int T) {
    const size_t rows = (size_t)B * (size_t)m->n_head * (size_t)T;
    if (m->attention_fused) {
        /* The layer's lse in preatt, its own (backward reads each layer's);
         * dropout 0 here only means that att aliases preatt. */
        model_arena_probs fused = {rows, 0, 0, 0, NULL, NULL, rows};
        return fused;
    }
    model_arena_probs eager = model_arena_probs_begin(a, m->device.recompute, dropout, rows * (size_t)T);
    eager.scratch_size = rows * (size_t)T;
    return eager;
}

/* The forward of either dtype: out, q, k, v are float (bf16 = 0) or
 * uint16_t (bf16 = 1). */
static void attention_forward(model_base *m, int bf16, void *out, float *preatt, float *att, const void *q,
                              const void *k, const void *v, int stride, float p, int layer) {
    lm_backend *be = m->backend;
    const int site = model_dropout_stream(MODEL_DROPOUT_ATTENTION_PROBS, layer);
    if (m->attention_fused) { /* preatt holds the lse (model_attention_carve) */
        if (bf16)
            be->ops->attention_fused_forward_bf16(be, out, preatt, q, k, v, stride, m->key_mask, m->arch->causal, m->B,
                                                  m->T, m->width, m->n_head, p, m->key, site);
        else
            be->ops->attention_fused_forward(be, out, preatt, q, k, v, stride, m->key_mask, m->arch->causal, m->B, m->T,
                                             m->width, m->n_head, p, m->key, site);
        return;
    }
    float *probs = model_attention_probs(preatt, att, p);
    if (bf16)
        be->ops->attention_forward_bf16(be, out, preatt, probs, q, k, v, stride, m->key_mask, m->arch->causal, m->B,
                                        m->T, m->width, m->n_head, p, m->key, site);
    else
        be->ops->attention_forward(be, out, preatt, probs, q, k, v, stride, m->key_mask, m->arch->causal, m->B, m->T,
                                   m->width, m->n_head, p, m->key, site);
}

/* The backward of either dtype: out, out_scratch, q, k, v as the forward's;
 * dq, dk, dv, dout and the scratch fp32 in both. */
static void attention_backward(model_base *m, int bf16, float *dq, float *dk, float *dv, float *scratch,
                               void *out_scratch, const float *dout, const void *out, float *preatt, float *att,
                               const void *q, const void *k, const void *v, int stride, float p, int layer) {
    lm_backend *be = m->backend;
    const int site = model_dropout_stream(MODEL_DROPOUT_ATTENTION_PROBS, layer);
    if (m->attention_fused) { /* recomputes the probabilities itself: `recompute` has nothing to rebuild */
        if (bf16)
            be->ops->attention_fused_backward_bf16(be, dq, dk, dv, scratch, dout, out, preatt, q, k, v, stride,
                                                   m->key_mask, m->arch->causal, m->B, m->T, m->width, m->n_head, p,
                                                   m->key, site);
        else
            be->ops->attention_fused_backward(be, dq, dk, dv, scratch, dout, out, preatt, q, k, v, stride, m->key_mask,
                                              m->arch->causal, m->B, m->T, m->width, m->n_head, p, m->key, site);
        return;
    }
    const model_recompute recompute = m->device.recompute;
    if (recompute == MODEL_RECOMPUTE_ATTENTION) {
        /* The same forward on the same inputs (the same bf16 q, k, v with
         * bf16 activations): the same probabilities, bit for bit. */
        attention_forward(m, bf16, out_scratch, preatt, att, q, k, v, stride, p, layer);
    } else if (recompute == MODEL_RECOMPUTE_ACTIVATIONS && p > 0.0f) {
        /* preatt through the mask attention_forward drew: the same seed,
         * stream and flat index give the same bits. */
        const size_t n_att = (size_t)m->B * (size_t)m->n_head * (size_t)m->T * (size_t)m->T;
        be->ops->dropout_forward(be, att, preatt, n_att, p, m->key, site);
    }
    const float *probs = model_attention_probs(preatt, att, p);
    if (bf16)
        be->ops->attention_backward_bf16(be, dq, dk, dv, scratch, dout, preatt, probs, q, k, v, stride, m->B, m->T,
                                         m->width, m->n_head, p, m->key, site);
    else
        be->ops->attention_backward(be, dq, dk, dv, scratch, dout, preatt, probs, q, k, v, stride, m->B, m->T,
                                    m->width, m->n_head, p, m->key, site);
}

void model_attention_forward(model_base *m, float *out, float *preatt, float *att, const float *q, const float *k,
                             const float *v, int stride, float p, int layer) {
    attention_forward(m, 0, out, preatt, att, q, k, v, stride, p, layer);
}

void model_attention_forward_bf16(model_base *m, uint16_t *out, float *preatt, float *att, const uint16_t *q,
                                  const uint16_t *k, const uint16_t *v, int stride, float p, int layer) {
    attention_forward(m, 1, out, preatt, att, q, k, v, stride, p, layer);
}

void model_attention_backward(model_base *m, float *dq, float *dk, float *dv, float *scratch, float *out_scratch,
                              const float *dout, const float *out, float *preatt, float *att, const float *q,
                              const float *k, const float *v, int stride, float p, int layer) {
    attention_backward(m, 0, dq, dk, dv, scratch, out_scratch, dout, out, preatt, att, q, k, v, stride, p, layer);
}

void model_attention_backward_bf16(model_base *m, float *dq, float *dk, float *dv, float *scratch,
                                   uint16_t *out_scratch, const float *dout, const uint16_t *out, float *preatt,
                                   float *att, const uint16_t *q, const uint16_t *k, const uint16_t *v, int stride,
                                   float p, int layer) {
    attention_backward(m, 1, dq, dk, dv, scratch, out_scratch, dout, out, preatt, att, q, k, v, stride, p, layer);
}

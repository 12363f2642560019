/* The tied classifier head of GPT-2 and BERT in the model's logits dtype
 * (model_plugin.h; logits_dtype, model_device.h).
 *
 * fp32 (the default on the CPU): matmul_forward / matmul_backward on the
 * fp32 weight and input, exactly the calls the heads always made, so the
 * bits stay.  bf16: the logits [rows, vocab_rows] are stored as bf16 (half
 * the largest activation's bytes), and so are their gradients, which the
 * loss ops write over them.  cuBLASLt writes a bf16 C only from bf16 A and
 * B, so the head's GEMMs read bf16 operands: the word embeddings from the
 * model's BF16 params_copy (rebuilt after the host writes the weights, and
 * by the optimizer after each update), and the head's input (ln_f's output,
 * [rows, width], small) rounded into a scratch that backward reads again.
 * The backward's outputs stay fp32: the input gradient and the weight (and
 * bias) gradients, accumulated in fp32 from the bf16 operands.  logits()
 * reads them back here too, widened and without the padding columns. */

#include <string.h>

#include "bf16.h"
#include "model_arena.h"
#include "model_plugin.h"

size_t model_logits_floats(const model_base *m, size_t rows) {
    const size_t n = rows * (size_t)m->vocab_rows;
    return m->logits_bf16 ? model_arena_floats_for_bf16(n) : n;
}

size_t model_head_input_floats(const model_base *m, size_t rows) {
    return m->logits_bf16 ? model_arena_floats_for_bf16(rows * (size_t)m->width) : 0;
}

void model_head_forward(model_base *m, void *logits, const float *x, uint16_t *x_bf16, int weight_index,
                        const float *bias, int rows) {
    lm_backend *be = m->backend;
    const int C = m->width, V = m->vocab_rows;
    if (!m->logits_bf16) {
        be->ops->matmul_forward(be, logits, x, model_tensor(m, m->buffers.params, weight_index), bias, rows, C, V,
                                LM_W_OUT_IN);
        return;
    }
    be->ops->convert_to_bf16(be, x_bf16, x, (size_t)rows * (size_t)C);
    be->ops->matmul_forward_bf16(be, logits, x_bf16, model_tensor_bf16(m, weight_index), bias, rows, C, V,
                                 LM_W_OUT_IN);
}

void model_head_backward(model_base *m, float *dx, int weight_index, float *dbias, const void *dlogits,
                         const float *x, const uint16_t *x_bf16, int rows, lm_grad_store grads) {
    lm_backend *be = m->backend;
    const int C = m->width, V = m->vocab_rows;
    float *dweight = model_tensor(m, m->buffers.grads, weight_index);
    if (!m->logits_bf16) {
        be->ops->matmul_backward(be, dx, dweight, dbias, dlogits, x, model_tensor(m, m->buffers.params, weight_index),
                                 rows, C, V, LM_W_OUT_IN, LM_GRAD_WRITE, grads);
        return;
    }
    be->ops->matmul_backward_bf16(be, dx, dweight, dbias, dlogits, x_bf16, model_tensor_bf16(m, weight_index), rows,
                                  C, V, LM_W_OUT_IN, LM_GRAD_WRITE, grads);
}

/* One download of the whole bf16 rows, then each row's first vocab_size
 * widened (exact) into out: every reader (evaluation's perplexity aside,
 * which the loss ops compute on the device; generation, fill_mask, top_k,
 * logits()) sees fp32.  Not a step's work: the host copy costs no training
 * time.  model_download_logits with bf16 logits. */
static lm_status download_logits_bf16(model_base *m, float *out, const void *logits, size_t rows) {
    lm_backend *be = m->backend;
    const size_t V = (size_t)m->limits.vocab_size, stride = (size_t)m->vocab_rows;
    uint16_t *staged = NULL;
    LM_TRY(lm_alloc((void **)&staged, (rows * stride > 0 ? rows * stride : 1) * sizeof *staged,
                    "the bf16 logits (host copy)"));
    lm_status status = be->ops->download(be, staged, logits, rows * stride * sizeof *staged);
    if (status == LM_OK)
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < V; j++) out[r * V + j] = lm_bf16_to_float(staged[r * stride + j]);
    lm_free(staged);
    return status;
}

/* ---- logits(): what the head gives back to the host, fp32 [rows, V]
 * whatever the logits dtype and padding ---- */

lm_status model_logits(void *self, float *out, size_t count) {
    model_base *m = self;
    if (m->B == 0) return lm_error_set(LM_ERR_INVALID, "logits: run forward first (no batch has been run)");
    if (!m->logits_valid)
        return lm_error_set(LM_ERR_INVALID, "logits: %s",
                            m->logits_gone ? m->logits_gone
                                           : "backward has overwritten the logits of the last forward with their "
                                             "gradients: read them between forward and backward");
    const int32_t V = m->limits.vocab_size;
    size_t n = (size_t)m->B * (size_t)m->T * (size_t)V;
    if (count != n)
        return lm_error_set(LM_ERR_INVALID, "logits: the last batch has %zu logits (B=%d x T=%d x vocab %d), the "
                                            "destination holds %zu",
                            n, (int)m->B, (int)m->T, (int)V, count);
    if (m->arch->download_logits) return m->arch->download_logits(m, out, n);
    return model_download_logits(m, out, m->logits, n);
}

lm_status model_download_logits(model_base *m, float *out, const void *logits, size_t count) {
    lm_backend *be = m->backend;
    const size_t V = (size_t)m->limits.vocab_size, stride = (size_t)m->vocab_rows, rows = count / V;
    if (m->logits_bf16) return download_logits_bf16(m, out, logits, rows);
    if (stride == V) return be->ops->download(be, out, logits, count * sizeof(float));
    /* Padded: one download of the whole rows, then the first V of each
     * (logits() is no step's work: its host copy costs no training time). */
    float *staged = NULL;
    LM_TRY(lm_alloc((void **)&staged, rows * stride * sizeof(float), "the padded logits (host copy)"));
    lm_status status = be->ops->download(be, staged, logits, rows * stride * sizeof(float));
    if (status == LM_OK)
        for (size_t r = 0; r < rows; r++) memcpy(out + r * V, staged + r * stride, V * sizeof(float));
    lm_free(staged);
    return status;
}

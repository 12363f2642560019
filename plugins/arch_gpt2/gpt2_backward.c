/* GPT-2 backward pass (llm.c's gpt2_backward, through the backend op table).
 *
 * Walks the forward in reverse for the batch of the last forward.  Every
 * backward op accumulates (+=), so parameter gradients add up across
 * micro-batches (the gradient buffer is zeroed first unless the caller
 * accumulates), and each activation-gradient scratch is zeroed right before
 * the op that fills it.  One buffer, dresidual, carries the gradient of the
 * residual stream from the top of the network down to the embeddings: the
 * residual adds pass it through unchanged and the LayerNorm backwards add
 * their branch's contribution to it.  The logits buffer receives dlogits in
 * place (llm.c), so logits() is only valid between forward and backward. */
#include <stdio.h>

#include "gpt2.h"

/* Gradient of a dropout's input: the output gradient itself when p = 0. */
static const float *dropout_backward_or_identity(lm_backend *be, float *dinp, const float *dout, size_t n, float p,
                                                 const lm_step_state *key, int site) {
    if (p <= 0.0f) return dout;
    be->ops->zero(be, dinp, n * sizeof(float));
    be->ops->dropout_backward(be, dinp, dout, n, p, key, site);
    return dinp;
}

lm_status gpt2_backward(gpt2_model *m, float loss_scale, int accumulate) {
    if (!m->has_targets)
        return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': backward needs a forward with labels first (and "
                                            "runs once per forward)");
    const gpt2_config *c = &m->config;
    lm_backend *be = m->backend;
    const lm_backend_ops *ops = be->ops;
    const int B = m->B, T = m->T, N = B * T;
    const int C = c->n_embd, H = c->n_inner, V = c->vocab_size, NH = c->n_head, L = c->n_layer;
    const size_t NC = (size_t)N * (size_t)C, NH4 = (size_t)N * (size_t)H;
    const size_t n_att = (size_t)B * (size_t)NH * (size_t)T * (size_t)T;
    const lm_step_state *key = m->key;
    const float eps = (float)c->layer_norm_epsilon;
    const model_recompute recompute = c->device.recompute;
    gpt2_acts *a = &m->acts;
    float *params = m->buffers.params, *grads = m->buffers.grads;
    m->has_targets = 0;
    m->logits_valid = 0;
    model_buffers_prepare_grads(&m->buffers, accumulate);

    /* d(mean loss * loss_scale)/dlogits, written over the logits. */
    ops->crossentropy_backward(be, a->logits, a->logits, a->labels, loss_scale / (float)m->n_targets, N, V);

    ops->zero(be, a->dln, NC * sizeof(float));
    ops->matmul_backward(be, a->dln, gpt2_tensor(m, grads, GPT2_WTE), NULL, a->logits, a->lnf,
                         gpt2_tensor(m, params, GPT2_WTE), N, C, V, LM_W_OUT_IN);
    const float *block0_input = m->embd_p > 0.0f ? a->x0 : a->encoded;
    const float *last = L > 0 ? m->layer_acts[L - 1].residual3 : block0_input;
    ops->zero(be, a->dresidual, NC * sizeof(float));
    ops->layernorm_backward(be, a->dresidual, gpt2_tensor(m, grads, GPT2_LNF_W(L)),
                            gpt2_tensor(m, grads, GPT2_LNF_B(L)), a->dln, last,
                            gpt2_tensor(m, params, GPT2_LNF_W(L)), a->lnf_mean, a->lnf_rstd, N, C);

    for (int l = L - 1; l >= 0; l--) {
        gpt2_layer_acts *la = &m->layer_acts[l];
        const float *block_input = l > 0 ? m->layer_acts[l - 1].residual3 : block0_input;
#define W(k) gpt2_tensor(m, params, GPT2_LAYER_TENSOR(l, k))
#define DW(k) gpt2_tensor(m, grads, GPT2_LAYER_TENSOR(l, k))
        /* MLP branch: residual3 = residual2 + dropout(c_proj(gelu(c_fc(ln_2(residual2))))). */
        const float *dbranch = dropout_backward_or_identity(be, a->dproj, a->dresidual, NC, m->resid_p, key,
                                                            model_dropout_site(l, MODEL_SITE_FFN_OUT));
        /* Buffers shared by all layers under `recompute` hold a later layer's
         * values: rebuild this layer's with the op that made them (gpt2.h). */
        if (recompute >= MODEL_RECOMPUTE_ACTIVATIONS) ops->gelu_forward(be, la->fch_gelu, la->fch, NH4, 1);
        ops->zero(be, a->dfch_gelu, NH4 * sizeof(float));
        ops->matmul_backward(be, a->dfch_gelu, DW(GPT2_FCPROJ_W), DW(GPT2_FCPROJ_B), dbranch, la->fch_gelu,
                             W(GPT2_FCPROJ_W), N, H, C, LM_W_IN_OUT);
        ops->zero(be, a->dfch, NH4 * sizeof(float));
        ops->gelu_backward(be, a->dfch, la->fch, a->dfch_gelu, NH4, 1);
        if (recompute >= MODEL_RECOMPUTE_ACTIVATIONS)
            ops->layernorm_forward(be, la->ln2, la->ln2_mean, la->ln2_rstd, la->residual2, W(GPT2_LN2_W),
                                   W(GPT2_LN2_B), N, C, eps);
        ops->zero(be, a->dln, NC * sizeof(float));
        ops->matmul_backward(be, a->dln, DW(GPT2_FC_W), DW(GPT2_FC_B), a->dfch, la->ln2, W(GPT2_FC_W), N, C, H,
                             LM_W_IN_OUT);
        ops->layernorm_backward(be, a->dresidual, DW(GPT2_LN2_W), DW(GPT2_LN2_B), a->dln, la->residual2,
                                W(GPT2_LN2_W), la->ln2_mean, la->ln2_rstd, N, C);

        /* Attention branch: residual2 = input + dropout(c_proj(attn(c_attn(ln_1(input))))). */
        dbranch = dropout_backward_or_identity(be, a->dproj, a->dresidual, NC, m->resid_p, key,
                                               model_dropout_site(l, MODEL_SITE_ATTENTION_OUT));
        ops->zero(be, a->datty, NC * sizeof(float));
        ops->matmul_backward(be, a->datty, DW(GPT2_ATTPROJ_W), DW(GPT2_ATTPROJ_B), dbranch, la->atty,
                             W(GPT2_ATTPROJ_W), N, C, C, LM_W_IN_OUT);
        ops->zero(be, a->dqkv, 3 * NC * sizeof(float));
        const int att_site = model_dropout_site(l, MODEL_SITE_ATTENTION_PROBS);
        float *att = m->attn_p > 0.0f ? la->att : la->preatt; /* as in forward */
        if (recompute == MODEL_RECOMPUTE_ATTENTION) {
            /* The same forward on the same inputs (its output goes to
             * a->proj, free during backward). */
            ops->attention_forward(be, a->proj, la->preatt, att, la->qkv, la->qkv + C, la->qkv + 2 * C, 3 * C,
                                   m->has_key_mask ? a->key_mask : NULL, 1, B, T, C, NH, m->attn_p, key, att_site);
        } else if (recompute == MODEL_RECOMPUTE_ACTIVATIONS && m->attn_p > 0.0f) {
            /* preatt through the mask attention_forward drew: the same
             * seed, stream and flat index give the same bits. */
            ops->dropout_forward(be, la->att, la->preatt, n_att, m->attn_p, key, att_site);
        }
        ops->attention_backward(be, a->dqkv, a->dqkv + C, a->dqkv + 2 * C, a->datt_scratch, a->datty, la->preatt,
                                att, la->qkv, la->qkv + C, la->qkv + 2 * C, 3 * C, B, T, C, NH, m->attn_p, key,
                                att_site);
        if (recompute >= MODEL_RECOMPUTE_ACTIVATIONS)
            ops->layernorm_forward(be, la->ln1, la->ln1_mean, la->ln1_rstd, block_input, W(GPT2_LN1_W),
                                   W(GPT2_LN1_B), N, C, eps);
        ops->zero(be, a->dln, NC * sizeof(float));
        ops->matmul_backward(be, a->dln, DW(GPT2_QKV_W), DW(GPT2_QKV_B), a->dqkv, la->ln1, W(GPT2_QKV_W), N, C,
                             3 * C, LM_W_IN_OUT);
        ops->layernorm_backward(be, a->dresidual, DW(GPT2_LN1_W), DW(GPT2_LN1_B), a->dln, block_input,
                                W(GPT2_LN1_W), la->ln1_mean, la->ln1_rstd, N, C);
#undef W
#undef DW
    }

    const float *dencoded = dropout_backward_or_identity(be, a->dproj, a->dresidual, NC, m->embd_p, key,
                                                         MODEL_SITE_EMBEDDINGS);
    ops->embedding_backward(be, gpt2_tensor(m, grads, GPT2_WTE), gpt2_tensor(m, grads, GPT2_WPE), NULL, dencoded,
                            a->ids, NULL, B, T, C);
    lm_status status = ops->check(be);
    if (status != LM_OK) lm_error_prefix("architecture 'gpt2' backward: ");
    return status;
}

/* GPT-2 forward pass (llm.c's gpt2_forward, through the backend op table).
 *
 *   x0 = dropout(wte[ids] + wpe[t])
 *   per block:  h = x + dropout(c_proj(attn(c_attn(ln_1(x)))))
 *               x = h + dropout(mlp.c_proj(gelu_new(c_fc(ln_2(h)))))
 *   logits = ln_f(x) · wteᵀ   (tied head);  loss = mean CE over scored labels
 *
 * Everything is queued on the device: the loss goes to the step state in
 * device memory, and dropout reads its key from there.
 *
 * Activations needed by backward live in one float allocation carved per
 * (B, T) (the skeleton, model_plugin.c, allocates it). */
#include "gpt2.h"
#include "model_arena.h"
#include "model_dropout.h"

size_t gpt2_carve_acts(model_base *b, float *base, int B, int T) {
    gpt2_model *m = gpt2_of(b);
    const gpt2_config *c = &m->config;
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->n_embd, H = (size_t)c->n_inner;
    model_arena cv = {base, 0};
    gpt2_acts *a = &m->acts;
    a->encoded = model_arena_take(&cv, N * C);
    a->x0 = model_arena_take(&cv, N * C);
    /* Buffers all layers share under `recompute` (gpt2.h). */
    const int share = b->device.recompute >= MODEL_RECOMPUTE_ACTIVATIONS;
    const int bf16 = b->activations_bf16;
    /* With bf16 activations ln_1 and ln_2 write only their bf16 rounding
     * (c_attn's / c_fc's input, which backward reads): no fp32 output. */
    float *ln = share && !bf16 ? model_arena_take(&cv, N * C) : NULL;
    float *fch_gelu = share && !bf16 ? model_arena_take(&cv, N * H) : NULL;
    /* Under recompute the roundings of ln_1 and ln_2 share one buffer too. */
    uint16_t *ln_bf16 = share && bf16 ? model_arena_take_bf16(&cv, N * C) : NULL;
    uint16_t *fch_gelu_bf16 = share && bf16 ? model_arena_take_bf16(&cv, N * H) : NULL;
    const model_arena_probs probs = model_attention_carve(b, &cv, c->attn_pdrop > 0.0, B, T);
    a->layers = b->layer_acts;
    for (int l = 0; l < c->n_layer; l++) {
        gpt2_layer_acts *la = &a->layers[l];
        la->ln1 = bf16 ? NULL : model_arena_take_or_share(&cv, share, ln, N * C);
        la->ln1_mean = model_arena_take(&cv, N);
        la->ln1_rstd = model_arena_take(&cv, N);
        if (bf16) {
            la->qkv = la->atty = NULL;
            la->ln1_bf16 = model_arena_take_or_share_bf16(&cv, share, ln_bf16, N * C);
            la->qkv_bf16 = model_arena_take_bf16(&cv, N * 3 * C);
            la->atty_bf16 = model_arena_take_bf16(&cv, N * C);
        } else {
            la->qkv = model_arena_take(&cv, N * 3 * C);
            la->atty = model_arena_take(&cv, N * C);
            la->ln1_bf16 = la->qkv_bf16 = la->atty_bf16 = NULL;
        }
        model_arena_probs_layer(&cv, &probs, &la->preatt, &la->att);
        la->residual2 = model_arena_take(&cv, N * C);
        la->ln2 = bf16 ? NULL : model_arena_take_or_share(&cv, share, ln, N * C);
        la->ln2_mean = model_arena_take(&cv, N);
        la->ln2_rstd = model_arena_take(&cv, N);
        if (bf16) {
            la->fch = la->fch_gelu = NULL;
            la->ln2_bf16 = model_arena_take_or_share_bf16(&cv, share, ln_bf16, N * C);
            la->fch_bf16 = model_arena_take_bf16(&cv, N * H);
            la->fch_gelu_bf16 = model_arena_take_or_share_bf16(&cv, share, fch_gelu_bf16, N * H);
        } else {
            la->fch = model_arena_take(&cv, N * H);
            la->fch_gelu = model_arena_take_or_share(&cv, share, fch_gelu, N * H);
            la->ln2_bf16 = la->fch_bf16 = la->fch_gelu_bf16 = NULL;
        }
        la->residual3 = model_arena_take(&cv, N * C);
    }
    a->proj = model_arena_take(&cv, N * C);
    a->lnf = model_arena_take(&cv, N * C);
    a->lnf_mean = model_arena_take(&cv, N);
    a->lnf_rstd = model_arena_take(&cv, N);
    /* N x vocab_rows (the padded vocabulary) in the logits' dtype. */
    a->logits = model_arena_take(&cv, model_logits_floats(b, N));
    a->lnf_bf16 = b->logits_bf16 ? (uint16_t *)model_arena_take(&cv, model_head_input_floats(b, N)) : NULL;
    a->losses = model_arena_take(&cv, N);
    a->dresidual = model_arena_take(&cv, N * C);
    a->dproj = model_arena_take(&cv, N * C);
    a->dln = model_arena_take(&cv, N * C);
    a->datty = model_arena_take(&cv, N * C);
    a->dqkv = model_arena_take(&cv, N * 3 * C);
    a->dqkv_bf16 = bf16 ? model_arena_take_bf16(&cv, N * 3 * C) : NULL;
    a->dfch = bf16 ? NULL : model_arena_take(&cv, N * H);
    a->dbranch_bf16 = bf16 ? model_arena_take_bf16(&cv, N * C) : NULL;
    a->dfch_bf16 = bf16 ? model_arena_take_bf16(&cv, N * H) : NULL;
    a->datt_scratch = model_arena_take(&cv, probs.scratch_size);
    a->labels = b->extra_batch_ints;
    b->logits = a->logits;
    return cv.used;
}

/* The labels are GPT-2's only array of its own (model_arch.upload_batch). */
lm_status gpt2_upload_batch(model_base *b, const lm_batch *batch, int64_t n_targets, uint64_t *signature_extra) {
    (void)n_targets;
    (void)signature_extra; /* nothing host-side besides the skeleton's signature */
    if (!batch->labels) return LM_OK;
    lm_backend *be = b->backend;
    return be->ops->upload(be, gpt2_of(b)->acts.labels, batch->labels,
                           (size_t)batch->B * (size_t)batch->T * sizeof(int32_t));
}

/* out = ln(residual = a + dropout(acts.proj)), the residual add and the
 * LayerNorm after it in one op.  With bf16 activations a block's ln_1 and
 * ln_2 write only their rounding, out_bf16 (out is NULL then: backward
 * reads the LayerNorm's input, mean and rstd, and the bf16 GEMM input);
 * ln_f (out_bf16 NULL) writes fp32 for the head (model_head.c). */
static void residual_layernorm(gpt2_model *m, float *residual, float *out, uint16_t *out_bf16, float *mean,
                               float *rstd, const float *a, const float *weight, const float *bias, int N,
                               const lm_step_state *key, int site) {
    lm_backend *be = m->base.backend;
    const int C = m->config.n_embd;
    const float eps = (float)m->config.layer_norm_epsilon;
    if (out_bf16)
        be->ops->residual_layernorm_forward_bf16(be, residual, out_bf16, NULL, mean, rstd, a, m->acts.proj, weight,
                                                 bias, N, C, eps, m->resid_p, key, site);
    else
        be->ops->residual_layernorm_forward(be, residual, out, mean, rstd, a, m->acts.proj, weight, bias, N, C, eps,
                                            m->resid_p, key, site);
}

lm_status gpt2_forward(model_base *b, const lm_batch *batch, lm_step_state *state) {
    gpt2_model *m = gpt2_of(b);
    const gpt2_config *c = &m->config;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    const int B = batch->B, T = batch->T, N = B * T;
    const int C = c->n_embd, H = c->n_inner, L = c->n_layer;
    const float eps = (float)c->layer_norm_epsilon;
    gpt2_acts *a = &m->acts;
    m->embd_p = b->training ? (float)c->embd_pdrop : 0.0f;
    m->attn_p = b->training ? (float)c->attn_pdrop : 0.0f;
    m->resid_p = b->training ? (float)c->resid_pdrop : 0.0f;
    const lm_step_state *key = state;
    float *params = b->buffers.params;
    const size_t NC = (size_t)N * (size_t)C;
    const int recompute = b->device.recompute >= MODEL_RECOMPUTE_ACTIVATIONS;

#define P(index) model_tensor(b, params, (index))
    ops->embedding_forward(be, a->encoded, b->ids, NULL, P(GPT2_WTE), P(GPT2_WPE), NULL, B, T, C);
    const float *residual =
        model_dropout_or_identity(be, a->x0, a->encoded, NC, m->embd_p, key, MODEL_DROPOUT_EMBEDDINGS, 0);
    /* Each residual add is fused with the LayerNorm that reads it (ln_2,
     * then the next block's ln_1, or ln_f after the last block); only the
     * first block's ln_1 reads the embeddings alone. */
    if (L > 0 && b->activations_bf16) /* its bf16 rounding only (gpt2.h) */
        ops->layernorm_forward_bf16(be, a->layers[0].ln1_bf16, NULL, a->layers[0].ln1_mean, a->layers[0].ln1_rstd,
                                    residual, P(GPT2_LAYER_TENSOR(0, GPT2_LN1_W)),
                                    P(GPT2_LAYER_TENSOR(0, GPT2_LN1_B)), N, C, eps);
    else if (L > 0)
        ops->layernorm_forward(be, a->layers[0].ln1, a->layers[0].ln1_mean, a->layers[0].ln1_rstd, residual,
                               P(GPT2_LAYER_TENSOR(0, GPT2_LN1_W)), P(GPT2_LAYER_TENSOR(0, GPT2_LN1_B)), N, C, eps);
    else
        ops->layernorm_forward(be, a->lnf, a->lnf_mean, a->lnf_rstd, residual, P(GPT2_LNF_W(L)), P(GPT2_LNF_B(L)),
                               N, C, eps);
    for (int l = 0; l < L; l++) {
        gpt2_layer_acts *la = &a->layers[l];
#define W(k) P(GPT2_LAYER_TENSOR(l, k))
        if (b->activations_bf16) {
            gpt2_attn_forward_bf16(m, la, l, N); /* the same block on bf16 storage (gpt2_attn_bf16.c) */
        } else {
            ops->matmul_forward(be, la->qkv, la->ln1, W(GPT2_QKV_W), W(GPT2_QKV_B), N, C, 3 * C, LM_W_IN_OUT);
            model_attention_forward(b, la->atty, la->preatt, la->att, la->qkv, la->qkv + C, la->qkv + 2 * C, 3 * C,
                                    m->attn_p, l);
            ops->matmul_forward(be, a->proj, la->atty, W(GPT2_ATTPROJ_W), W(GPT2_ATTPROJ_B), N, C, C, LM_W_IN_OUT);
        }
        /* residual2 = residual + dropout(proj); ln_2(residual2). */
        residual_layernorm(m, la->residual2, la->ln2, la->ln2_bf16, la->ln2_mean, la->ln2_rstd, residual, W(GPT2_LN2_W),
                           W(GPT2_LN2_B), N, key, model_dropout_stream(MODEL_DROPOUT_ATTENTION_OUT, l));

        /* c_fc and its GELU in one op (on a GPU, the GELU in the GEMM's
         * epilogue).  Under recompute, backward rebuilds fch_gelu with
         * gelu_forward: the forward uses the same op, so both agree. */
        if (b->activations_bf16) {
            gpt2_mlp_forward_bf16(m, la, l, N); /* the same block on bf16 storage (gpt2_mlp_bf16.c) */
        } else {
            if (recompute) {
                ops->matmul_forward(be, la->fch, la->ln2, W(GPT2_FC_W), W(GPT2_FC_B), N, C, H, LM_W_IN_OUT);
                ops->gelu_forward(be, la->fch_gelu, la->fch, (size_t)N * (size_t)H, 1);
            } else {
                ops->matmul_gelu_forward(be, la->fch_gelu, la->fch, la->ln2, W(GPT2_FC_W), W(GPT2_FC_B), N, C, H,
                                         LM_W_IN_OUT);
            }
            ops->matmul_forward(be, a->proj, la->fch_gelu, W(GPT2_FCPROJ_W), W(GPT2_FCPROJ_B), N, H, C,
                                LM_W_IN_OUT);
        }
        /* residual3 = residual2 + dropout(proj); then the next LayerNorm. */
        const int last = l + 1 == L;
        gpt2_layer_acts *next = last ? NULL : &a->layers[l + 1];
        residual_layernorm(m, la->residual3, last ? a->lnf : next->ln1, last ? NULL : next->ln1_bf16,
                           last ? a->lnf_mean : next->ln1_mean, last ? a->lnf_rstd : next->ln1_rstd, la->residual2,
                           last ? P(GPT2_LNF_W(L)) : P(GPT2_LAYER_TENSOR(l + 1, GPT2_LN1_W)),
                           last ? P(GPT2_LNF_B(L)) : P(GPT2_LAYER_TENSOR(l + 1, GPT2_LN1_B)), N, key,
                           model_dropout_stream(MODEL_DROPOUT_FFN_OUT, l));
        residual = la->residual3;
#undef W
    }
    /* Tied head: wte is [V, C], i.e. an [out, in] weight (with vocab_rows
     * rows: logits [N, vocab_rows], the padding columns 0), in the logits'
     * dtype (model_head.c). */
    model_head_forward(b, a->logits, a->lnf, a->lnf_bf16, GPT2_WTE, NULL, N);
#undef P
    if (batch->labels) model_forward_loss(b, a->losses, a->logits, a->labels, N, state);
    return LM_OK;
}

/* BERT forward pass (Hugging Face BertForMaskedLM, through the backend table).
 *
 *   x0 = dropout(LN(word[ids] + type[type_ids] + position[t]))
 *   per layer (post-LN):
 *       h = LN(x + dropout(attention.output.dense(attention(q(x), k(x), v(x)))))
 *       x = LN(h + dropout(output.dense(gelu(intermediate.dense(h)))))
 *   logits = LN(gelu(transform.dense(x))) · word_embeddingsᵀ + cls.predictions.bias
 *   loss = mean cross-entropy over the labels that are not -100
 *
 * Attention is bidirectional; padding keys (attention_mask 0) are hidden
 * from every query, as Hugging Face's extended attention mask does.  The
 * MLM head and the loss are in bert_head.c (with labels, the head runs on
 * the scored positions only).  Activations needed by backward live in one
 * float allocation carved per (B, T) (the skeleton, model_plugin.c, allocates
 * it; the logits have their own, sized by the rows the head runs on, in
 * bert_head.c); both only grow, so alternating batch shapes do not
 * reallocate. */
#include <stdlib.h>

#include "bert.h"
#include "model_arena.h"
#include "model_dropout.h"

size_t bert_carve_acts(model_base *b, float *base, int B, int T) {
    bert_model *m = bert_of(b);
    const bert_config *c = &m->config;
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    model_arena cv = {base, 0};
    bert_acts *a = &m->acts;
    a->emb = model_arena_take(&cv, N * C);
    a->emb_ln = model_arena_take(&cv, N * C);
    a->emb_ln_mean = model_arena_take(&cv, N);
    a->emb_ln_rstd = model_arena_take(&cv, N);
    a->x0 = model_arena_take(&cv, N * C);
    /* Buffers all layers share under `recompute` (bert.h). */
    const int share = b->device.recompute >= MODEL_RECOMPUTE_ACTIVATIONS;
    const int bf16 = b->activations_bf16;
    float *inter_gelu = share && !bf16 ? model_arena_take(&cv, N * I) : NULL;
    uint16_t *inter_gelu_bf16 = share && bf16 ? model_arena_take_bf16(&cv, N * I) : NULL;
    uint16_t *input_bf16 = share && bf16 ? model_arena_take_bf16(&cv, N * C) : NULL;
    /* With bf16 activations ln1's fp32 output is read in the forward only
     * (the residual add after the block, and its rounding): one scratch. */
    float *ln1 = bf16 ? model_arena_take(&cv, N * C) : NULL;
    const model_arena_probs probs = model_attention_carve(b, &cv, c->attention_probs_dropout_prob > 0.0, B, T);
    a->layers = b->layer_acts;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        bert_layer_acts *la = &a->layers[l];
        if (bf16) {
            la->q = la->k = la->v = la->atty = NULL;
            la->input_bf16 = model_arena_take_or_share_bf16(&cv, share, input_bf16, N * C);
            la->q_bf16 = model_arena_take_bf16(&cv, N * C);
            la->k_bf16 = model_arena_take_bf16(&cv, N * C);
            la->v_bf16 = model_arena_take_bf16(&cv, N * C);
            la->atty_bf16 = model_arena_take_bf16(&cv, N * C);
        } else {
            la->q = model_arena_take(&cv, N * C);
            la->k = model_arena_take(&cv, N * C);
            la->v = model_arena_take(&cv, N * C);
            la->atty = model_arena_take(&cv, N * C);
            la->input_bf16 = la->q_bf16 = la->k_bf16 = la->v_bf16 = la->atty_bf16 = NULL;
        }
        model_arena_probs_layer(&cv, &probs, &la->preatt, &la->att);
        la->res1 = model_arena_take(&cv, N * C);
        la->ln1 = model_arena_take_or_share(&cv, bf16, ln1, N * C);
        la->ln1_mean = model_arena_take(&cv, N);
        la->ln1_rstd = model_arena_take(&cv, N);
        if (bf16) {
            la->inter = la->inter_gelu = NULL;
            la->ln1_bf16 = model_arena_take_bf16(&cv, N * C);
            la->inter_bf16 = model_arena_take_bf16(&cv, N * I);
            la->inter_gelu_bf16 = model_arena_take_or_share_bf16(&cv, share, inter_gelu_bf16, N * I);
        } else {
            la->inter = model_arena_take(&cv, N * I);
            la->inter_gelu = model_arena_take_or_share(&cv, share, inter_gelu, N * I);
            la->ln1_bf16 = la->inter_bf16 = la->inter_gelu_bf16 = NULL;
        }
        la->res2 = model_arena_take(&cv, N * C);
        la->ln2 = model_arena_take(&cv, N * C);
        la->ln2_mean = model_arena_take(&cv, N);
        la->ln2_rstd = model_arena_take(&cv, N);
    }
    a->proj = model_arena_take(&cv, N * C);
    a->head_in = model_arena_take(&cv, N * C);
    a->zero_row = model_arena_take(&cv, C);
    a->junk_row = model_arena_take(&cv, C);
    a->pad_grad = model_arena_take(&cv, C);
    a->head_dense = model_arena_take(&cv, N * C);
    a->head_gelu = model_arena_take(&cv, N * C);
    a->head_ln = model_arena_take(&cv, N * C);
    a->head_ln_mean = model_arena_take(&cv, N);
    a->head_ln_rstd = model_arena_take(&cv, N);
    a->head_ln_bf16 = b->logits_bf16 ? (uint16_t *)model_arena_take(&cv, model_head_input_floats(b, N)) : NULL;
    a->losses = model_arena_take(&cv, N);
    a->dres_a = model_arena_take(&cv, N * C);
    a->dres_b = model_arena_take(&cv, N * C);
    a->dbranch = model_arena_take(&cv, N * C);
    a->datty = model_arena_take(&cv, N * C);
    a->dqkv = model_arena_take(&cv, 3 * N * C);
    a->dqkv_bf16 = bf16 ? model_arena_take_bf16(&cv, 3 * N * C) : NULL;
    a->dinter = bf16 ? NULL : model_arena_take(&cv, N * I);
    a->dbranch_bf16 = bf16 ? model_arena_take_bf16(&cv, N * C) : NULL;
    a->dinter_bf16 = bf16 ? model_arena_take_bf16(&cv, N * I) : NULL;
    a->dinter_gelu = model_arena_take(&cv, N * I);
    a->datt_scratch = model_arena_take(&cv, probs.scratch_size);
    a->type_ids = b->extra_batch_ints;
    a->head_rows = b->extra_batch_ints + b->batch_ints_stride;
    a->head_labels = b->extra_batch_ints + 2 * b->batch_ints_stride;
    return cv.used;
}

lm_status bert_acts_ready(model_base *b, int B, int T) {
    bert_model *m = bert_of(b);
    const size_t n = (size_t)B * (size_t)T;
    /* The carve moves with (B, T) over memory earlier shapes wrote. */
    b->backend->ops->zero(b->backend, m->acts.zero_row, (size_t)m->config.hidden_size * sizeof(float));
    if (n <= m->host_capacity) return LM_OK;
    free(m->host_head_rows);
    free(m->host_head_labels);
    m->host_head_rows = malloc(n * sizeof(int32_t));
    m->host_head_labels = malloc(n * sizeof(int32_t));
    m->host_capacity = m->host_head_rows && m->host_head_labels ? n : 0;
    if (!m->host_capacity) return lm_error_set(LM_ERR_NOMEM, "out of memory for the BERT scored-row lists");
    return LM_OK;
}

/* Whether an input id is the padding id: the embedding row of pad_token_id
 * gets no gradient (nn.Embedding(padding_idx=...)). */
static int batch_has_pad(const bert_model *m, const lm_batch *batch) {
    const size_t n = (size_t)batch->B * (size_t)batch->T;
    for (size_t i = 0; i < n; i++)
        if (batch->input_ids[i] == m->config.pad_token_id) return 1;
    return 0;
}

/* BERT's part of staging (model_arch.upload_batch): the token types, the
 * padding test (backward's branch for the padding row), the scored rows of
 * the head; the padding test decides kernels, so it is in the signature
 * (the head's buffer is, by bert_head_upload_batch). */
lm_status bert_upload_batch(model_base *b, const lm_batch *batch, int64_t n_targets, uint64_t *signature_extra) {
    bert_model *m = bert_of(b);
    lm_backend *be = b->backend;
    m->batch_has_pad = batch_has_pad(m, batch);
    m->has_type_ids = batch->token_type_ids != NULL;
    if (batch->token_type_ids)
        LM_TRY(be->ops->upload(be, m->acts.type_ids, batch->token_type_ids,
                               (size_t)batch->B * (size_t)batch->T * sizeof(int32_t)));
    LM_TRY(bert_head_upload_batch(m, batch, n_targets, signature_extra));
    *signature_extra = *signature_extra * 31u + (uint64_t)(m->batch_has_pad != 0);
    return LM_OK;
}

lm_status bert_forward(model_base *b, const lm_batch *batch, lm_step_state *state) {
    bert_model *m = bert_of(b);
    const bert_config *c = &m->config;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    const int B = batch->B, T = batch->T, N = B * T;
    const int C = c->hidden_size, I = c->intermediate_size, L = c->num_hidden_layers, tanh_gelu = c->gelu_tanh;
    const float eps = (float)c->layer_norm_eps;
    bert_acts *a = &m->acts;
    const int32_t *type_ids = batch->token_type_ids ? a->type_ids : NULL;
    m->hidden_p = b->training ? (float)c->hidden_dropout_prob : 0.0f;
    m->attn_p = b->training ? (float)c->attention_probs_dropout_prob : 0.0f;
    const lm_step_state *key = state;
    float *params = b->buffers.params;
    const size_t NC = (size_t)N * (size_t)C;
#define P(index) model_tensor(b, params, (index))

    /* Without token_type_ids every position is type 0 (Hugging Face's buffer of zeros). */
    ops->embedding_forward(be, a->emb, b->ids, type_ids, P(BERT_WORD_EMB), P(BERT_POS_EMB), P(BERT_TYPE_EMB), B, T,
                           C);
    ops->layernorm_forward(be, a->emb_ln, a->emb_ln_mean, a->emb_ln_rstd, a->emb, P(BERT_EMB_LN_W),
                           P(BERT_EMB_LN_B), N, C, eps);
    const float *x =
        model_dropout_or_identity(be, a->x0, a->emb_ln, NC, m->hidden_p, key, MODEL_DROPOUT_EMBEDDINGS, 0);

    for (int l = 0; l < L; l++) {
        bert_layer_acts *la = &a->layers[l];
#define W(k) P(BERT_LAYER_TENSOR(l, k))
        if (b->activations_bf16) {
            bert_attn_forward_bf16(m, la, l, x, N); /* the same block on bf16 storage (bert_attn_bf16.c) */
        } else {
            ops->matmul_forward(be, la->q, x, W(BERT_Q_W), W(BERT_Q_B), N, C, C, LM_W_OUT_IN);
            ops->matmul_forward(be, la->k, x, W(BERT_K_W), W(BERT_K_B), N, C, C, LM_W_OUT_IN);
            ops->matmul_forward(be, la->v, x, W(BERT_V_W), W(BERT_V_B), N, C, C, LM_W_OUT_IN);
            model_attention_forward(b, la->atty, la->preatt, la->att, la->q, la->k, la->v, C, m->attn_p, l);
            ops->matmul_forward(be, a->proj, la->atty, W(BERT_ATTOUT_W), W(BERT_ATTOUT_B), N, C, C, LM_W_OUT_IN);
        }
        /* Post-LN: res1 = x + dropout(proj), ln1 = LN(res1), in one op.
         * With bf16 activations it also writes ln1's rounding, the
         * feed-forward block's input (fp32 ln1 is res2's). */
        if (b->activations_bf16)
            ops->residual_layernorm_forward_bf16(be, la->res1, la->ln1_bf16, la->ln1, la->ln1_mean, la->ln1_rstd, x,
                                                 a->proj, W(BERT_ATTLN_W), W(BERT_ATTLN_B), N, C, eps, m->hidden_p,
                                                 key, model_dropout_stream(MODEL_DROPOUT_ATTENTION_OUT, l));
        else
            ops->residual_layernorm_forward(be, la->res1, la->ln1, la->ln1_mean, la->ln1_rstd, x, a->proj,
                                            W(BERT_ATTLN_W), W(BERT_ATTLN_B), N, C, eps, m->hidden_p, key,
                                            model_dropout_stream(MODEL_DROPOUT_ATTENTION_OUT, l));

        if (b->activations_bf16) {
            bert_ffn_forward_bf16(m, la, l, N); /* the same block on bf16 storage (bert_ffn_bf16.c) */
        } else {
            ops->matmul_forward(be, la->inter, la->ln1, W(BERT_INTER_W), W(BERT_INTER_B), N, C, I, LM_W_OUT_IN);
            ops->gelu_forward(be, la->inter_gelu, la->inter, (size_t)N * (size_t)I, tanh_gelu);
            ops->matmul_forward(be, a->proj, la->inter_gelu, W(BERT_OUT_W), W(BERT_OUT_B), N, I, C, LM_W_OUT_IN);
        }
        ops->residual_layernorm_forward(be, la->res2, la->ln2, la->ln2_mean, la->ln2_rstd, la->ln1, a->proj,
                                        W(BERT_OUTLN_W), W(BERT_OUTLN_B), N, C, eps, m->hidden_p, key,
                                        model_dropout_stream(MODEL_DROPOUT_FFN_OUT, l));
        x = la->ln2;
#undef W
    }
#undef P
    m->encoder_out = x;
    return bert_head_forward(m, state);
}

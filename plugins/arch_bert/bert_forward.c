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
 * float allocation carved per (B, T) (the logits have their own, sized by
 * the rows the head runs on); both only grow, so alternating batch shapes
 * do not reallocate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "model_arena.h"
#include "model_batch.h"

/* Lays the activations of a (B, T) batch out from `base` (or only counts
 * them when base is NULL); returns the floats needed. */
static size_t carve_acts(bert_model *m, float *base, int B, int T) {
    const bert_config *c = &m->config;
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    const size_t att = (size_t)B * (size_t)c->num_attention_heads * (size_t)T * (size_t)T;
    model_arena cv = {base, 0};
    bert_acts *a = &m->acts;
    a->emb = model_arena_take(&cv, N * C);
    a->emb_ln = model_arena_take(&cv, N * C);
    a->emb_ln_mean = model_arena_take(&cv, N);
    a->emb_ln_rstd = model_arena_take(&cv, N);
    a->x0 = model_arena_take(&cv, N * C);
    /* Buffers all layers share under `recompute` (bert.h). */
    const model_recompute recompute = c->device.recompute;
    const int share = recompute >= MODEL_RECOMPUTE_ACTIVATIONS, share_preatt = recompute >= MODEL_RECOMPUTE_ATTENTION;
    float *inter_gelu = share ? model_arena_take(&cv, N * I) : NULL;
    /* Probabilities after dropout exist only with attention dropout: without
     * it every user reads preatt (m->attn_p is then 0), and att aliases it. */
    const int dropped_probs = c->attention_probs_dropout_prob > 0.0;
    float *probs = share && dropped_probs ? model_arena_take(&cv, att) : NULL;
    float *preatt = share_preatt ? model_arena_take(&cv, att) : NULL;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        bert_layer_acts *la = &m->layer_acts[l];
        la->q = model_arena_take(&cv, N * C);
        la->k = model_arena_take(&cv, N * C);
        la->v = model_arena_take(&cv, N * C);
        la->preatt = model_arena_take_or_share(&cv, share_preatt, preatt, att);
        la->att = dropped_probs ? model_arena_take_or_share(&cv, share, probs, att) : la->preatt;
        la->atty = model_arena_take(&cv, N * C);
        la->res1 = model_arena_take(&cv, N * C);
        la->ln1 = model_arena_take(&cv, N * C);
        la->ln1_mean = model_arena_take(&cv, N);
        la->ln1_rstd = model_arena_take(&cv, N);
        la->inter = model_arena_take(&cv, N * I);
        la->inter_gelu = model_arena_take_or_share(&cv, share, inter_gelu, N * I);
        la->res2 = model_arena_take(&cv, N * C);
        la->ln2 = model_arena_take(&cv, N * C);
        la->ln2_mean = model_arena_take(&cv, N);
        la->ln2_rstd = model_arena_take(&cv, N);
    }
    a->proj = model_arena_take(&cv, N * C);
    a->dropped = model_arena_take(&cv, N * C);
    a->head_in = model_arena_take(&cv, N * C);
    a->zero_row = model_arena_take(&cv, C);
    a->junk_row = model_arena_take(&cv, C);
    a->pad_grad = model_arena_take(&cv, C);
    a->head_dense = model_arena_take(&cv, N * C);
    a->head_gelu = model_arena_take(&cv, N * C);
    a->head_ln = model_arena_take(&cv, N * C);
    a->head_ln_mean = model_arena_take(&cv, N);
    a->head_ln_rstd = model_arena_take(&cv, N);
    a->losses = model_arena_take(&cv, N);
    a->dres_a = model_arena_take(&cv, N * C);
    a->dres_b = model_arena_take(&cv, N * C);
    a->dbranch = model_arena_take(&cv, N * C);
    a->datty = model_arena_take(&cv, N * C);
    a->dqkv = model_arena_take(&cv, 3 * N * C);
    a->dinter = model_arena_take(&cv, N * I);
    a->dinter_gelu = model_arena_take(&cv, N * I);
    a->datt_scratch = model_arena_take(&cv, att);
    return cv.used;
}

void bert_acts_free(bert_model *m) {
    if (m->backend) {
        if (m->act_memory) m->backend->ops->free(m->backend, m->act_memory);
        if (m->int_memory) m->backend->ops->free(m->backend, m->int_memory);
    }
    bert_head_free(m);
    free(m->layer_acts);
    free(m->host_head_rows);
    free(m->host_head_labels);
    m->act_memory = NULL;
    m->int_memory = NULL;
    m->layer_acts = NULL;
    m->host_head_rows = m->host_head_labels = NULL;
    m->act_capacity = m->int_capacity = m->host_capacity = 0;
    m->encoder_out = NULL;
    m->act_B = m->act_T = 0;
    memset(&m->acts, 0, sizeof m->acts);
}

static lm_status ensure_acts(bert_model *m, int B, int T) {
    if (m->act_B == B && m->act_T == T) return LM_OK;
    lm_backend *be = m->backend;
    if (!m->layer_acts && m->config.num_hidden_layers > 0) {
        m->layer_acts = calloc((size_t)m->config.num_hidden_layers, sizeof *m->layer_acts);
        if (!m->layer_acts) return lm_error_set(LM_ERR_NOMEM, "out of memory for the BERT layer table");
    }
    m->act_B = m->act_T = 0;
    size_t need = carve_acts(m, NULL, B, T);
    if (need > m->act_capacity) {
        if (m->act_memory) be->ops->free(be, m->act_memory);
        m->act_memory = NULL;
        m->act_capacity = 0;
        char what[96];
        snprintf(what, sizeof what, "BERT activations for a batch of %d x %d tokens", B, T);
        LM_TRY(be->ops->alloc(be, (void **)&m->act_memory, need * sizeof(float), what));
        m->act_capacity = need;
    }
    const size_t stride = model_arena_round((size_t)B * (size_t)T);
    if (5 * stride > m->int_capacity) {
        if (m->int_memory) be->ops->free(be, m->int_memory);
        m->int_memory = NULL;
        m->int_capacity = 0;
        LM_TRY(be->ops->alloc(be, (void **)&m->int_memory, 5 * stride * sizeof(int32_t), "BERT batch ids"));
        m->int_capacity = 5 * stride;
    }
    if (stride > m->host_capacity) {
        free(m->host_head_rows);
        free(m->host_head_labels);
        m->host_head_rows = malloc(stride * sizeof(int32_t));
        m->host_head_labels = malloc(stride * sizeof(int32_t));
        m->host_capacity = m->host_head_rows && m->host_head_labels ? stride : 0;
        if (!m->host_capacity) return lm_error_set(LM_ERR_NOMEM, "out of memory for the BERT scored-row lists");
    }
    carve_acts(m, m->act_memory, B, T);
    /* The carve moves with (B, T) over memory earlier shapes wrote. */
    be->ops->zero(be, m->acts.zero_row, (size_t)m->config.hidden_size * sizeof(float));
    m->acts.ids = m->int_memory;
    m->acts.key_mask = m->int_memory + stride;
    m->acts.type_ids = m->int_memory + 2 * stride;
    m->acts.head_rows = m->int_memory + 3 * stride;
    m->acts.head_labels = m->int_memory + 4 * stride;
    m->act_B = B;
    m->act_T = T;
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

lm_status bert_forward(bert_model *m, const lm_batch *batch, lm_step_state *state) {
    const bert_config *c = &m->config;
    lm_backend *be = m->backend;
    const lm_backend_ops *ops = be->ops;
    int64_t n_targets = 0;
    m->has_targets = 0;
    m->logits_valid = 0;
    const model_batch_limits limits = {"bert", "max_position_embeddings", c->max_position_embeddings, c->vocab_size,
                                       c->type_vocab_size};
    LM_TRY(model_batch_check(&limits, batch, &n_targets));
    m->batch_has_pad = batch_has_pad(m, batch);
    const int B = batch->B, T = batch->T, N = B * T;
    const int C = c->hidden_size, I = c->intermediate_size, NH = c->num_attention_heads;
    const int L = c->num_hidden_layers, tanh_gelu = c->gelu_tanh;
    const float eps = (float)c->layer_norm_eps;
    if (m->training && !state && (c->hidden_dropout_prob > 0 || c->attention_probs_dropout_prob > 0))
        return lm_error_set(LM_ERR_INVALID, "architecture 'bert': forward in training mode needs a step state (its "
                                            "dropout key); pass one, or set_training(0) for inference");
    LM_TRY(ensure_acts(m, B, T));
    bert_acts *a = &m->acts;

    const size_t id_bytes = (size_t)N * sizeof(int32_t);
    LM_TRY(ops->upload(be, a->ids, batch->input_ids, id_bytes));
    if (batch->attention_mask) LM_TRY(ops->upload(be, a->key_mask, batch->attention_mask, id_bytes));
    if (batch->token_type_ids) LM_TRY(ops->upload(be, a->type_ids, batch->token_type_ids, id_bytes));
    const int32_t *key_mask = batch->attention_mask ? a->key_mask : NULL;
    m->has_key_mask = key_mask != NULL;
    const int32_t *type_ids = batch->token_type_ids ? a->type_ids : NULL;

    m->B = B;
    m->T = T;
    m->key = state;
    m->has_type_ids = type_ids != NULL;
    m->hidden_p = m->training ? (float)c->hidden_dropout_prob : 0.0f;
    m->attn_p = m->training ? (float)c->attention_probs_dropout_prob : 0.0f;
    const lm_step_state *key = state;
    float *params = m->buffers.params;
    const size_t NC = (size_t)N * (size_t)C;
#define P(index) bert_tensor(m, params, (index))

    /* Without token_type_ids every position is type 0 (Hugging Face's buffer of zeros). */
    ops->embedding_forward(be, a->emb, a->ids, type_ids, P(BERT_WORD_EMB), P(BERT_POS_EMB), P(BERT_TYPE_EMB), B, T,
                           C);
    ops->layernorm_forward(be, a->emb_ln, a->emb_ln_mean, a->emb_ln_rstd, a->emb, P(BERT_EMB_LN_W),
                           P(BERT_EMB_LN_B), N, C, eps);
    const float *x =
        model_dropout_or_identity(be, a->x0, a->emb_ln, NC, m->hidden_p, key, MODEL_SITE_EMBEDDINGS);

    for (int l = 0; l < L; l++) {
        bert_layer_acts *la = &m->layer_acts[l];
#define W(k) P(BERT_LAYER_TENSOR(l, k))
        ops->matmul_forward(be, la->q, x, W(BERT_Q_W), W(BERT_Q_B), N, C, C, LM_W_OUT_IN);
        ops->matmul_forward(be, la->k, x, W(BERT_K_W), W(BERT_K_B), N, C, C, LM_W_OUT_IN);
        ops->matmul_forward(be, la->v, x, W(BERT_V_W), W(BERT_V_B), N, C, C, LM_W_OUT_IN);
        /* Without dropout the probabilities are the same before and after. */
        float *att = m->attn_p > 0.0f ? la->att : la->preatt;
        ops->attention_forward(be, la->atty, la->preatt, att, la->q, la->k, la->v, C, key_mask, 0, B, T, C, NH,
                               m->attn_p, key, model_dropout_site(l, MODEL_SITE_ATTENTION_PROBS));
        ops->matmul_forward(be, a->proj, la->atty, W(BERT_ATTOUT_W), W(BERT_ATTOUT_B), N, C, C, LM_W_OUT_IN);
        const float *branch =
            model_dropout_or_identity(be, a->dropped, a->proj, NC, m->hidden_p, key,
                                      model_dropout_site(l, MODEL_SITE_ATTENTION_OUT));
        ops->residual_forward(be, la->res1, branch, x, NC);
        ops->layernorm_forward(be, la->ln1, la->ln1_mean, la->ln1_rstd, la->res1, W(BERT_ATTLN_W), W(BERT_ATTLN_B),
                               N, C, eps);

        ops->matmul_forward(be, la->inter, la->ln1, W(BERT_INTER_W), W(BERT_INTER_B), N, C, I, LM_W_OUT_IN);
        ops->gelu_forward(be, la->inter_gelu, la->inter, (size_t)N * (size_t)I, tanh_gelu);
        ops->matmul_forward(be, a->proj, la->inter_gelu, W(BERT_OUT_W), W(BERT_OUT_B), N, I, C, LM_W_OUT_IN);
        branch =
            model_dropout_or_identity(be, a->dropped, a->proj, NC, m->hidden_p, key,
                                      model_dropout_site(l, MODEL_SITE_FFN_OUT));
        ops->residual_forward(be, la->res2, branch, la->ln1, NC);
        ops->layernorm_forward(be, la->ln2, la->ln2_mean, la->ln2_rstd, la->res2, W(BERT_OUTLN_W), W(BERT_OUTLN_B),
                               N, C, eps);
        x = la->ln2;
#undef W
    }

#undef P
    m->encoder_out = x;
    /* The loss goes to the step state on the device; a loss that is not
     * finite is flagged there (step_micro_batch_end), not read here. */
    LM_TRY(bert_head_forward(m, batch, n_targets, state && batch->labels ? &state->loss : NULL));
    m->logits_valid = 1;
    m->logits_gone = NULL;
    if (batch->labels) {
        m->n_targets = n_targets;
        m->has_targets = 1;
    }
    return ops->check(be);
}

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
 * (B, T); it only grows, so alternating batch shapes do not reallocate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2.h"
#include "model_arena.h"
#include "model_batch.h"

/* Lays the activations of a (B, T) batch out from `base` (or only counts
 * them when base is NULL); returns the floats needed. */
static size_t carve_acts(gpt2_model *m, float *base, int B, int T) {
    const gpt2_config *c = &m->config;
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->n_embd, H = (size_t)c->n_inner;
    const size_t V = (size_t)c->vocab_size, att = (size_t)B * (size_t)c->n_head * (size_t)T * (size_t)T;
    model_arena cv = {base, 0};
    gpt2_acts *a = &m->acts;
    a->encoded = model_arena_take(&cv, N * C);
    a->x0 = model_arena_take(&cv, N * C);
    /* Buffers all layers share under `recompute` (gpt2.h). */
    const model_recompute recompute = c->device.recompute;
    const int share = recompute >= MODEL_RECOMPUTE_ACTIVATIONS, share_preatt = recompute >= MODEL_RECOMPUTE_ATTENTION;
    float *ln = share ? model_arena_take(&cv, N * C) : NULL;
    float *fch_gelu = share ? model_arena_take(&cv, N * H) : NULL;
    /* Probabilities after dropout exist only with attention dropout: without
     * it every user reads preatt (m->attn_p is then 0), and att aliases it. */
    const int dropped_probs = c->attn_pdrop > 0.0;
    float *probs = share && dropped_probs ? model_arena_take(&cv, att) : NULL;
    float *preatt = share_preatt ? model_arena_take(&cv, att) : NULL;
    for (int l = 0; l < c->n_layer; l++) {
        gpt2_layer_acts *la = &m->layer_acts[l];
        la->ln1 = model_arena_take_or_share(&cv, share, ln, N * C);
        la->ln1_mean = model_arena_take(&cv, N);
        la->ln1_rstd = model_arena_take(&cv, N);
        la->qkv = model_arena_take(&cv, N * 3 * C);
        la->atty = model_arena_take(&cv, N * C);
        la->preatt = model_arena_take_or_share(&cv, share_preatt, preatt, att);
        la->att = dropped_probs ? model_arena_take_or_share(&cv, share, probs, att) : la->preatt;
        la->residual2 = model_arena_take(&cv, N * C);
        la->ln2 = model_arena_take_or_share(&cv, share, ln, N * C);
        la->ln2_mean = model_arena_take(&cv, N);
        la->ln2_rstd = model_arena_take(&cv, N);
        la->fch = model_arena_take(&cv, N * H);
        la->fch_gelu = model_arena_take_or_share(&cv, share, fch_gelu, N * H);
        la->residual3 = model_arena_take(&cv, N * C);
    }
    a->layers = m->layer_acts;
    a->proj = model_arena_take(&cv, N * C);
    a->dropped = model_arena_take(&cv, N * C);
    a->lnf = model_arena_take(&cv, N * C);
    a->lnf_mean = model_arena_take(&cv, N);
    a->lnf_rstd = model_arena_take(&cv, N);
    a->logits = model_arena_take(&cv, N * V);
    a->losses = model_arena_take(&cv, N);
    a->dresidual = model_arena_take(&cv, N * C);
    a->dproj = model_arena_take(&cv, N * C);
    a->dln = model_arena_take(&cv, N * C);
    a->datty = model_arena_take(&cv, N * C);
    a->dqkv = model_arena_take(&cv, N * 3 * C);
    a->dfch = model_arena_take(&cv, N * H);
    a->dfch_gelu = model_arena_take(&cv, N * H);
    a->datt_scratch = model_arena_take(&cv, att);
    return cv.used;
}

void gpt2_acts_free(gpt2_model *m) {
    if (m->backend) {
        if (m->act_memory) m->backend->ops->free(m->backend, m->act_memory);
        if (m->int_memory) m->backend->ops->free(m->backend, m->int_memory);
    }
    free(m->layer_acts);
    m->act_memory = NULL;
    m->int_memory = NULL;
    m->layer_acts = NULL;
    m->act_capacity = m->int_capacity = 0;
    m->act_B = m->act_T = 0;
    memset(&m->acts, 0, sizeof m->acts);
}

static lm_status ensure_acts(gpt2_model *m, int B, int T) {
    if (m->act_B == B && m->act_T == T) return LM_OK;
    lm_backend *be = m->backend;
    if (!m->layer_acts) {
        m->layer_acts = calloc((size_t)m->config.n_layer, sizeof *m->layer_acts);
        if (!m->layer_acts) return lm_error_set(LM_ERR_NOMEM, "out of memory for the GPT-2 layer table");
    }
    m->act_B = m->act_T = 0;
    size_t need = carve_acts(m, NULL, B, T);
    if (need > m->act_capacity) {
        if (m->act_memory) be->ops->free(be, m->act_memory);
        m->act_memory = NULL;
        m->act_capacity = 0;
        char what[96];
        snprintf(what, sizeof what, "GPT-2 activations for a batch of %d x %d tokens", B, T);
        LM_TRY(be->ops->alloc(be, (void **)&m->act_memory, need * sizeof(float), what));
        m->act_capacity = need;
    }
    size_t need_ints = 3 * model_arena_round((size_t)B * (size_t)T);
    if (need_ints > m->int_capacity) {
        if (m->int_memory) be->ops->free(be, m->int_memory);
        m->int_memory = NULL;
        m->int_capacity = 0;
        LM_TRY(be->ops->alloc(be, (void **)&m->int_memory, need_ints * sizeof(int32_t), "GPT-2 batch ids"));
        m->int_capacity = need_ints;
    }
    carve_acts(m, m->act_memory, B, T);
    size_t stride = model_arena_round((size_t)B * (size_t)T);
    m->acts.ids = m->int_memory;
    m->acts.labels = m->int_memory + stride;
    m->acts.key_mask = m->int_memory + 2 * stride;
    m->act_B = B;
    m->act_T = T;
    return LM_OK;
}

lm_status gpt2_forward(gpt2_model *m, const lm_batch *batch, lm_step_state *state) {
    const gpt2_config *c = &m->config;
    lm_backend *be = m->backend;
    const lm_backend_ops *ops = be->ops;
    int64_t n_targets = 0;
    m->has_targets = 0;
    m->logits_valid = 0;
    const model_batch_limits limits = {"gpt2", "n_positions", c->n_positions, c->vocab_size, 0};
    LM_TRY(model_batch_check(&limits, batch, &n_targets));
    const int B = batch->B, T = batch->T, N = B * T;
    const int C = c->n_embd, H = c->n_inner, V = c->vocab_size, NH = c->n_head, L = c->n_layer;
    const float eps = (float)c->layer_norm_epsilon;
    if (m->training && !state && (c->embd_pdrop > 0 || c->attn_pdrop > 0 || c->resid_pdrop > 0))
        return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': forward in training mode needs a step state (its "
                                            "dropout key); pass one, or set_training(0) for inference");
    LM_TRY(ensure_acts(m, B, T));
    gpt2_acts *a = &m->acts;

    LM_TRY(ops->upload(be, a->ids, batch->input_ids, (size_t)N * sizeof(int32_t)));
    if (batch->labels) LM_TRY(ops->upload(be, a->labels, batch->labels, (size_t)N * sizeof(int32_t)));
    if (batch->attention_mask)
        LM_TRY(ops->upload(be, a->key_mask, batch->attention_mask, (size_t)N * sizeof(int32_t)));
    const int32_t *key_mask = batch->attention_mask ? a->key_mask : NULL;

    m->B = B;
    m->T = T;
    m->key = state;
    m->embd_p = m->training ? (float)c->embd_pdrop : 0.0f;
    m->attn_p = m->training ? (float)c->attn_pdrop : 0.0f;
    m->resid_p = m->training ? (float)c->resid_pdrop : 0.0f;
    const lm_step_state *key = state;
    float *params = m->buffers.params;
    const size_t NC = (size_t)N * (size_t)C;

    ops->embedding_forward(be, a->encoded, a->ids, NULL, gpt2_tensor(m, params, GPT2_WTE),
                           gpt2_tensor(m, params, GPT2_WPE), NULL, B, T, C);
    const float *residual = a->encoded;
    if (m->embd_p > 0.0f) {
        ops->dropout_forward(be, a->x0, a->encoded, NC, m->embd_p, key, MODEL_SITE_EMBEDDINGS);
        residual = a->x0;
    }
    for (int l = 0; l < L; l++) {
        gpt2_layer_acts *la = &m->layer_acts[l];
#define W(k) gpt2_tensor(m, params, GPT2_LAYER_TENSOR(l, k))
        ops->layernorm_forward(be, la->ln1, la->ln1_mean, la->ln1_rstd, residual, W(GPT2_LN1_W), W(GPT2_LN1_B), N,
                               C, eps);
        ops->matmul_forward(be, la->qkv, la->ln1, W(GPT2_QKV_W), W(GPT2_QKV_B), N, C, 3 * C, LM_W_IN_OUT);
        /* Without dropout the probabilities are the same before and after. */
        float *att = m->attn_p > 0.0f ? la->att : la->preatt;
        ops->attention_forward(be, la->atty, la->preatt, att, la->qkv, la->qkv + C, la->qkv + 2 * C, 3 * C,
                               key_mask, 1, B, T, C, NH, m->attn_p, key,
                               model_dropout_site(l, MODEL_SITE_ATTENTION_PROBS));
        ops->matmul_forward(be, a->proj, la->atty, W(GPT2_ATTPROJ_W), W(GPT2_ATTPROJ_B), N, C, C, LM_W_IN_OUT);
        const float *branch =
            model_dropout_or_identity(be, a->dropped, a->proj, NC, m->resid_p, key,
                                      model_dropout_site(l, MODEL_SITE_ATTENTION_OUT));
        ops->residual_forward(be, la->residual2, residual, branch, NC);

        ops->layernorm_forward(be, la->ln2, la->ln2_mean, la->ln2_rstd, la->residual2, W(GPT2_LN2_W),
                               W(GPT2_LN2_B), N, C, eps);
        ops->matmul_forward(be, la->fch, la->ln2, W(GPT2_FC_W), W(GPT2_FC_B), N, C, H, LM_W_IN_OUT);
        ops->gelu_forward(be, la->fch_gelu, la->fch, (size_t)N * (size_t)H, 1);
        ops->matmul_forward(be, a->proj, la->fch_gelu, W(GPT2_FCPROJ_W), W(GPT2_FCPROJ_B), N, H, C, LM_W_IN_OUT);
        branch =
            model_dropout_or_identity(be, a->dropped, a->proj, NC, m->resid_p, key,
                                      model_dropout_site(l, MODEL_SITE_FFN_OUT));
        ops->residual_forward(be, la->residual3, la->residual2, branch, NC);
        residual = la->residual3;
#undef W
    }
    ops->layernorm_forward(be, a->lnf, a->lnf_mean, a->lnf_rstd, residual, gpt2_tensor(m, params, GPT2_LNF_W(L)),
                           gpt2_tensor(m, params, GPT2_LNF_B(L)), N, C, eps);
    /* Tied head: wte is [V, C], i.e. an [out, in] weight. */
    ops->matmul_forward(be, a->logits, a->lnf, gpt2_tensor(m, params, GPT2_WTE), NULL, N, C, V, LM_W_OUT_IN);
    m->logits_valid = 1;
    m->has_key_mask = key_mask != NULL;

    if (!batch->labels) return ops->check(be);
    ops->crossentropy_forward(be, a->losses, a->logits, a->labels, N, V);
    /* The mean over the scored positions, on the device: a loss that is not
     * finite is flagged there too (step_micro_batch_end), not read here. */
    if (state) ops->loss_mean(be, &state->loss, a->losses, (size_t)N, n_targets);
    m->n_targets = n_targets;
    m->has_targets = 1;
    return ops->check(be);
}

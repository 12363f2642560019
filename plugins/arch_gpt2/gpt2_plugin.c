/* The arch_gpt2 plugin: GPT2LMHeadModel with Hugging Face names and layouts.
 *
 * This file builds the parameter table, owns the backend and the flat
 * buffers (parameters and gradients: the optimizer is a plugin of its own),
 * and fills the architecture vtable; the math is in gpt2_forward.c,
 * gpt2_backward.c and gpt2_generate.c (incremental decoding). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2.h"
#include "hf_config.h"
#include "lmcore/plugin.h"

/* Declares every tensor in Hugging Face GPT2LMHeadModel.named_parameters()
 * order.  Weight decay follows the Trainer: every tensor but biases and
 * LayerNorm weights (embeddings included).  The LM head is tied to wte. */
static lm_status build_param_table(gpt2_model *m) {
    const gpt2_config *c = &m->config;
    param_table *t = &m->table;
    const int64_t C = c->n_embd, V = c->vocab_size, P = c->n_positions, H = c->n_inner;
    const float std = (float)c->initializer_range;
    /* GPT-2 paper: residual projections scaled by 1/sqrt(number of residual layers). */
    const float proj_std = (float)(c->initializer_range / sqrt(2.0 * c->n_layer));
    int64_t shape[2];

#define ADD2(decay, init, s, d0, d1, ...)                                                                        \
    do {                                                                                                         \
        shape[0] = (d0);                                                                                         \
        shape[1] = (d1);                                                                                         \
        LM_TRY(param_table_add(t, (decay), (init), (s), 2, shape, __VA_ARGS__));                                 \
    } while (0)
#define ADD1(init, d0, ...)                                                                                      \
    do {                                                                                                         \
        shape[0] = (d0);                                                                                         \
        LM_TRY(param_table_add(t, 0, (init), 0.0f, 1, shape, __VA_ARGS__));                                      \
    } while (0)

    ADD2(1, PARAM_INIT_NORMAL, std, V, C, "transformer.wte.weight");
    ADD2(1, PARAM_INIT_NORMAL, std, P, C, "transformer.wpe.weight");
    for (int l = 0; l < c->n_layer; l++) {
        ADD1(PARAM_INIT_ONES, C, "transformer.h.%d.ln_1.weight", l);
        ADD1(PARAM_INIT_ZEROS, C, "transformer.h.%d.ln_1.bias", l);
        ADD2(1, PARAM_INIT_NORMAL, std, C, 3 * C, "transformer.h.%d.attn.c_attn.weight", l);
        ADD1(PARAM_INIT_ZEROS, 3 * C, "transformer.h.%d.attn.c_attn.bias", l);
        ADD2(1, PARAM_INIT_NORMAL, proj_std, C, C, "transformer.h.%d.attn.c_proj.weight", l);
        ADD1(PARAM_INIT_ZEROS, C, "transformer.h.%d.attn.c_proj.bias", l);
        ADD1(PARAM_INIT_ONES, C, "transformer.h.%d.ln_2.weight", l);
        ADD1(PARAM_INIT_ZEROS, C, "transformer.h.%d.ln_2.bias", l);
        ADD2(1, PARAM_INIT_NORMAL, std, C, H, "transformer.h.%d.mlp.c_fc.weight", l);
        ADD1(PARAM_INIT_ZEROS, H, "transformer.h.%d.mlp.c_fc.bias", l);
        ADD2(1, PARAM_INIT_NORMAL, proj_std, H, C, "transformer.h.%d.mlp.c_proj.weight", l);
        ADD1(PARAM_INIT_ZEROS, C, "transformer.h.%d.mlp.c_proj.bias", l);
    }
    ADD1(PARAM_INIT_ONES, C, "transformer.ln_f.weight");
    ADD1(PARAM_INIT_ZEROS, C, "transformer.ln_f.bias");
#undef ADD1
#undef ADD2
    param_table_layout(t);
    return LM_OK;
}

static void gpt2_destroy(void *self) {
    gpt2_model *m = self;
    if (!m) return;
    gpt2_generate_free(m);
    gpt2_acts_free(m);
    model_buffers_free(&m->buffers);
    param_table_free(&m->table);
    lm_backend_release(m->backend); /* destroyed now, or when the last optimizer bound to it lets go */
    free(m);
}

static lm_status gpt2_create(void **self, lm_config *cfg) {
    *self = NULL;
    gpt2_model *m = calloc(1, sizeof *m);
    if (!m) return lm_error_set(LM_ERR_NOMEM, "out of memory creating architecture 'gpt2'");
    lm_status status;
    LM_CHECK(gpt2_config_read(&m->config, cfg));
    LM_CHECK(build_param_table(m));
    LM_CHECK(model_device_create_backend(&m->config.device, "gpt2", "GPT-2", &m->backend));
    LM_CHECK(model_buffers_alloc(&m->buffers, m->backend, &m->table));
    snprintf(m->device_desc, sizeof m->device_desc, "%s", m->backend->ops->describe(m->backend));
    m->training = 1;
    *self = m;
    return LM_OK;
fail:
    gpt2_destroy(m);
    return status;
}

static lm_status gpt2_info(void *self, lm_arch_info *out) {
    gpt2_model *m = self;
    memset(out, 0, sizeof *out);
    out->model_type = "gpt2";
    out->causal = 1;
    out->uses_token_types = 0;
    out->vocab_size = m->config.vocab_size;
    out->max_positions = m->config.n_positions;
    out->n_params = (int64_t)m->table.n_params;
    out->device = m->device_desc;
    out->precision = hf_precision_name(m->backend->precision);
    return LM_OK;
}

static lm_status gpt2_parameters(void *self, lm_param_set *out) {
    gpt2_model *m = self;
    model_buffers_describe(&m->buffers, &m->table, out);
    return LM_OK;
}

static lm_status gpt2_init_weights(void *self, uint64_t seed) {
    gpt2_model *m = self;
    m->has_targets = 0;
    gpt2_generate_invalidate(m);
    return model_buffers_init_weights(&m->buffers, &m->table, seed);
}

static lm_status gpt2_set_training(void *self, int training) {
    ((gpt2_model *)self)->training = training != 0;
    return LM_OK;
}

static lm_status gpt2_forward_slot(void *self, const lm_batch *batch, lm_step_state *state) {
    return gpt2_forward(self, batch, state);
}

static lm_status gpt2_backward_slot(void *self, float loss_scale, int accumulate) {
    return gpt2_backward(self, loss_scale, accumulate);
}

static lm_status gpt2_logits(void *self, float *out, size_t count) {
    gpt2_model *m = self;
    if (!m->acts.logits || m->B == 0)
        return lm_error_set(LM_ERR_INVALID, "logits: run forward first (no batch has been run)");
    if (!m->logits_valid)
        return lm_error_set(LM_ERR_INVALID, "logits: backward has overwritten the logits of the last forward with "
                                            "their gradients: read them between forward and backward");
    size_t n = (size_t)m->B * (size_t)m->T * (size_t)m->config.vocab_size;
    if (count != n)
        return lm_error_set(LM_ERR_INVALID, "logits: the last batch has %zu logits (B=%d x T=%d x vocab %d), the "
                                            "destination holds %zu",
                            n, (int)m->B, (int)m->T, (int)m->config.vocab_size, count);
    return m->backend->ops->download(m->backend, out, m->acts.logits, n * sizeof(float));
}

static lm_status gpt2_hf_config(void *self, lm_buffer *out) {
    return gpt2_config_write_hf(&((gpt2_model *)self)->config, out);
}

static lm_status gpt2_generate_reset_slot(void *self, int32_t max_tokens) {
    return gpt2_generate_reset(self, max_tokens);
}

static lm_status gpt2_generate_step_slot(void *self, const int32_t *ids, int32_t n, float *logits) {
    return gpt2_generate_step(self, ids, n, logits);
}

/* New weights from the host: a saved forward and the generation cache no
 * longer match them. */
static lm_status gpt2_params_written(void *self) {
    gpt2_model *m = self;
    m->has_targets = 0;
    m->logits_valid = 0;
    gpt2_generate_invalidate(m);
    return LM_OK;
}

static const lm_architecture_vtable gpt2_vtable = {
    .create = gpt2_create,
    .destroy = gpt2_destroy,
    .info = gpt2_info,
    .parameters = gpt2_parameters,
    .init_weights = gpt2_init_weights,
    .set_training = gpt2_set_training,
    .forward = gpt2_forward_slot,
    .backward = gpt2_backward_slot,
    .logits = gpt2_logits,
    .hf_config = gpt2_hf_config,
    .generate_reset = gpt2_generate_reset_slot,
    .generate_step = gpt2_generate_step_slot,
    .params_written = gpt2_params_written,
};

LM_PLUGIN_DEFINE(LM_KIND_ARCHITECTURE, "gpt2", "2.0.0",
                 "GPT-2 causal language model (Hugging Face GPT2LMHeadModel names, tied head, KV-cache "
                 "generation), CPU or CUDA",
                 lm_architecture_vtable, gpt2_vtable)

/* The arch_bert plugin: BertForMaskedLM with Hugging Face names and layouts.
 *
 * This file builds the parameter table, owns the backend and the flat
 * buffers, and fills the architecture vtable; the math is in bert_forward.c
 * and bert_backward.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "hf_config.h"
#include "lmcore/plugin.h"

/* Declares every tensor in BertForMaskedLM.named_parameters() order, which
 * is also what save_pretrained writes (the tied decoder weight and bias are
 * not saved: transformers re-ties them to word_embeddings and
 * cls.predictions.bias on load).  Weight decay follows the Trainer: every
 * tensor but biases and LayerNorm weights (embeddings included).  Linear
 * layers are nn.Linear, i.e. [out, in]. */
static lm_status build_param_table(bert_model *m) {
    const bert_config *c = &m->config;
    param_table *t = &m->table;
    const int64_t H = c->hidden_size, V = c->vocab_size, P = c->max_position_embeddings;
    const int64_t I = c->intermediate_size, TV = c->type_vocab_size;
    const float std = (float)c->initializer_range;
    int64_t shape[2];

#define ADD2(d0, d1, ...)                                                                                        \
    do {                                                                                                         \
        shape[0] = (d0);                                                                                         \
        shape[1] = (d1);                                                                                         \
        LM_TRY(param_table_add(t, 1, PARAM_INIT_NORMAL, std, 2, shape, __VA_ARGS__));                            \
    } while (0)
#define ADD1(init, d0, ...)                                                                                      \
    do {                                                                                                         \
        shape[0] = (d0);                                                                                         \
        LM_TRY(param_table_add(t, 0, (init), 0.0f, 1, shape, __VA_ARGS__));                                      \
    } while (0)
#define ADD_LN(prefix, ...)                                                                                      \
    do {                                                                                                         \
        ADD1(PARAM_INIT_ONES, H, prefix ".LayerNorm.weight", __VA_ARGS__);                                       \
        ADD1(PARAM_INIT_ZEROS, H, prefix ".LayerNorm.bias", __VA_ARGS__);                                        \
    } while (0)

    ADD2(V, H, "bert.embeddings.word_embeddings.weight");
    ADD2(P, H, "bert.embeddings.position_embeddings.weight");
    ADD2(TV, H, "bert.embeddings.token_type_embeddings.weight");
    ADD1(PARAM_INIT_ONES, H, "bert.embeddings.LayerNorm.weight");
    ADD1(PARAM_INIT_ZEROS, H, "bert.embeddings.LayerNorm.bias");
    for (int l = 0; l < c->num_hidden_layers; l++) {
        static const char *const qkv[3] = {"query", "key", "value"};
        for (int j = 0; j < 3; j++) {
            ADD2(H, H, "bert.encoder.layer.%d.attention.self.%s.weight", l, qkv[j]);
            ADD1(PARAM_INIT_ZEROS, H, "bert.encoder.layer.%d.attention.self.%s.bias", l, qkv[j]);
        }
        ADD2(H, H, "bert.encoder.layer.%d.attention.output.dense.weight", l);
        ADD1(PARAM_INIT_ZEROS, H, "bert.encoder.layer.%d.attention.output.dense.bias", l);
        ADD_LN("bert.encoder.layer.%d.attention.output", l);
        ADD2(I, H, "bert.encoder.layer.%d.intermediate.dense.weight", l);
        ADD1(PARAM_INIT_ZEROS, I, "bert.encoder.layer.%d.intermediate.dense.bias", l);
        ADD2(H, I, "bert.encoder.layer.%d.output.dense.weight", l);
        ADD1(PARAM_INIT_ZEROS, H, "bert.encoder.layer.%d.output.dense.bias", l);
        ADD_LN("bert.encoder.layer.%d.output", l);
    }
    ADD1(PARAM_INIT_ZEROS, V, "cls.predictions.bias");
    ADD2(H, H, "cls.predictions.transform.dense.weight");
    ADD1(PARAM_INIT_ZEROS, H, "cls.predictions.transform.dense.bias");
    ADD1(PARAM_INIT_ONES, H, "cls.predictions.transform.LayerNorm.weight");
    ADD1(PARAM_INIT_ZEROS, H, "cls.predictions.transform.LayerNorm.bias");
#undef ADD_LN
#undef ADD1
#undef ADD2
    if (t->count != (size_t)BERT_HEAD_TENSOR(c->num_hidden_layers, BERT_HEAD_TENSORS))
        return lm_error_set(LM_ERR_INTERNAL, "architecture 'bert': parameter table has %zu tensors", t->count);
    param_table_layout(t);
    return LM_OK;
}

static void bert_destroy(void *self) {
    bert_model *m = self;
    if (!m) return;
    bert_acts_free(m);
    model_buffers_free(&m->buffers);
    param_table_free(&m->table);
    lm_backend_release(m->backend); /* destroyed now, or when the last optimizer bound to it lets go */
    free(m);
}

static lm_status bert_create(void **self, lm_config *cfg) {
    *self = NULL;
    bert_model *m = calloc(1, sizeof *m);
    if (!m) return lm_error_set(LM_ERR_NOMEM, "out of memory creating architecture 'bert'");
    lm_status status;
    LM_CHECK(bert_config_read(&m->config, cfg));
    LM_CHECK(build_param_table(m));
    LM_CHECK(model_device_create_backend(&m->config.device, "bert", "BERT", &m->backend));
    LM_CHECK(model_buffers_alloc(&m->buffers, m->backend, &m->table));
    snprintf(m->device_desc, sizeof m->device_desc, "%s", m->backend->ops->describe(m->backend));
    m->training = 1;
    *self = m;
    return LM_OK;
fail:
    bert_destroy(m);
    return status;
}

static lm_status bert_info(void *self, lm_arch_info *out) {
    bert_model *m = self;
    memset(out, 0, sizeof *out);
    out->model_type = "bert";
    out->causal = 0;
    out->uses_token_types = 1;
    out->vocab_size = m->config.vocab_size;
    out->max_positions = m->config.max_position_embeddings;
    out->n_params = (int64_t)m->table.n_params;
    out->device = m->device_desc;
    out->precision = hf_precision_name(m->backend->precision);
    return LM_OK;
}

static lm_status bert_parameters(void *self, lm_param_set *out) {
    bert_model *m = self;
    model_buffers_describe(&m->buffers, &m->table, out);
    return LM_OK;
}

/* Hugging Face BertPreTrainedModel._init_weights: N(0, initializer_range)
 * for Linear and Embedding weights, zero biases (cls.predictions.bias
 * included), LayerNorm 1/0, and the padding_idx row of the word embeddings
 * zeroed (nn.Embedding(padding_idx=pad_token_id)).  Drawn on the host so
 * that the CPU and the GPU start from the same weights. */
static lm_status bert_init_weights(void *self, uint64_t seed) {
    bert_model *m = self;
    m->has_targets = 0;
    m->logits_valid = 0;
    model_buffers *b = &m->buffers;
    float *host = NULL;
    LM_TRY(lm_alloc((void **)&host, b->n_params * sizeof(float), "initial BERT weights (host copy)"));
    param_table_init_host(&m->table, host, seed);
    if (m->config.pad_token_id >= 0) {
        const size_t H = (size_t)m->config.hidden_size;
        memset(host + m->table.descs[BERT_WORD_EMB].offset + (size_t)m->config.pad_token_id * H, 0,
               H * sizeof(float));
    }
    lm_status status = m->backend->ops->upload(m->backend, b->params, host, b->n_params * sizeof(float));
    lm_free(host); /* uploads are staged: the host copy may go at once */
    LM_TRY(status);
    m->backend->ops->zero(m->backend, b->grads, b->n_params * sizeof(float));
    return m->backend->ops->check(m->backend);
}

static lm_status bert_set_training(void *self, int training) {
    ((bert_model *)self)->training = training != 0;
    return LM_OK;
}

static lm_status bert_forward_slot(void *self, const lm_batch *batch, lm_step_state *state) {
    return bert_forward(self, batch, state);
}

static lm_status bert_backward_slot(void *self, float loss_scale, int accumulate) {
    return bert_backward(self, loss_scale, accumulate);
}

static lm_status bert_logits(void *self, float *out, size_t count) {
    bert_model *m = self;
    if (!m->acts.logits || m->B == 0)
        return lm_error_set(LM_ERR_INVALID, "logits: run forward first (no batch has been run)");
    if (!m->logits_valid)
        return lm_error_set(LM_ERR_INVALID, "logits: %s",
                            m->logits_gone ? m->logits_gone
                                           : "backward has overwritten the logits of the last forward with their "
                                             "gradients: read them between forward and backward");
    size_t n = (size_t)m->B * (size_t)m->T * (size_t)m->config.vocab_size;
    if (count != n)
        return lm_error_set(LM_ERR_INVALID, "logits: the last batch has %zu logits (B=%d x T=%d x vocab %d), the "
                                            "destination holds %zu",
                            n, (int)m->B, (int)m->T, (int)m->config.vocab_size, count);
    return bert_head_download_logits(m, out);
}

static lm_status bert_hf_config(void *self, lm_buffer *out) {
    return bert_config_write_hf(&((bert_model *)self)->config, out);
}

/* New weights from the host: a saved forward, and the logits of a forward
 * with labels (computed when read), no longer match them. */
static lm_status bert_params_written(void *self) {
    bert_model *m = self;
    m->has_targets = 0;
    if (m->logits_valid) {
        m->logits_valid = 0;
        m->logits_gone = "the weights were replaced since the last forward: run forward again";
    }
    return LM_OK;
}

static const lm_architecture_vtable bert_vtable = {
    .create = bert_create,
    .destroy = bert_destroy,
    .info = bert_info,
    .parameters = bert_parameters,
    .init_weights = bert_init_weights,
    .set_training = bert_set_training,
    .forward = bert_forward_slot,
    .backward = bert_backward_slot,
    .logits = bert_logits,
    .hf_config = bert_hf_config,
    .params_written = bert_params_written,
};

LM_PLUGIN_DEFINE(LM_KIND_ARCHITECTURE, "bert", "2.0.0",
                 "BERT masked language model (Hugging Face BertForMaskedLM names, tied decoder), CPU or CUDA",
                 lm_architecture_vtable, bert_vtable)

/* The arch_bert plugin: BertForMaskedLM with Hugging Face names and layouts.
 *
 * This file declares the parameter table and fills the architecture
 * descriptor and vtable: the slots every architecture shares are the
 * skeleton's (model_plugin.c); the config is in bert_config.c, the math in
 * bert_forward.c, bert_backward.c and the MLM head (bert_head.c). */
#include <string.h>

#include "bert.h"
#include "lmcore/plugin.h"

/* Declares every tensor in BertForMaskedLM.named_parameters() order, which
 * is also what save_pretrained writes (the tied decoder weight and bias are
 * not saved: transformers re-ties them to word_embeddings and
 * cls.predictions.bias on load).  Weight decay follows the Trainer: every
 * tensor but biases and LayerNorm weights (embeddings included).  Linear
 * layers are nn.Linear, i.e. [out, in]. */
static lm_status declare_params(model_base *m) {
    const bert_config *c = &bert_of(m)->config;
    param_table *t = &m->table;
    const int64_t H = c->hidden_size, V = c->vocab_size, P = c->max_position_embeddings;
    const int64_t I = c->intermediate_size, TV = c->type_vocab_size;
    const float std = (float)c->initializer_range;
#define LAYER_NORM(prefix, ...)                                                                                  \
    do {                                                                                                         \
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ONES, H, prefix ".LayerNorm.weight", __VA_ARGS__));          \
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, H, prefix ".LayerNorm.bias", __VA_ARGS__));           \
    } while (0)

    LM_TRY(param_table_add_matrix(t, std, V, H, "bert.embeddings.word_embeddings.weight"));
    param_table_pad_rows(t, m->vocab_rows); /* the decoder's GEMM over vocab_rows (model_plugin.h) */
    LM_TRY(param_table_add_matrix(t, std, P, H, "bert.embeddings.position_embeddings.weight"));
    LM_TRY(param_table_add_matrix(t, std, TV, H, "bert.embeddings.token_type_embeddings.weight"));
    LM_TRY(param_table_add_vector(t, PARAM_INIT_ONES, H, "bert.embeddings.LayerNorm.weight"));
    LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, H, "bert.embeddings.LayerNorm.bias"));
    for (int l = 0; l < c->num_hidden_layers; l++) {
        static const char *const qkv[3] = {"query", "key", "value"};
        for (int j = 0; j < 3; j++) {
            LM_TRY(param_table_add_matrix(t, std, H, H, "bert.encoder.layer.%d.attention.self.%s.weight", l, qkv[j]));
            LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, H, "bert.encoder.layer.%d.attention.self.%s.bias", l,
                                          qkv[j]));
        }
        LM_TRY(param_table_add_matrix(t, std, H, H, "bert.encoder.layer.%d.attention.output.dense.weight", l));
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, H, "bert.encoder.layer.%d.attention.output.dense.bias", l));
        LAYER_NORM("bert.encoder.layer.%d.attention.output", l);
        LM_TRY(param_table_add_matrix(t, std, I, H, "bert.encoder.layer.%d.intermediate.dense.weight", l));
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, I, "bert.encoder.layer.%d.intermediate.dense.bias", l));
        LM_TRY(param_table_add_matrix(t, std, H, I, "bert.encoder.layer.%d.output.dense.weight", l));
        LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, H, "bert.encoder.layer.%d.output.dense.bias", l));
        LAYER_NORM("bert.encoder.layer.%d.output", l);
    }
#undef LAYER_NORM
    LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, V, "cls.predictions.bias"));
    /* Padded like the weight rather than handled apart: the decoder stays
     * one GEMM with its bias epilogue over vocab_rows columns (the padding
     * logits are 0 + 0), and its backward writes the bias gradient of the
     * padding columns as the sum of their zero dlogits, 0, like the
     * weight's padding rows: no op needs to know about the padding. */
    param_table_pad_rows(t, m->vocab_rows);
    LM_TRY(param_table_add_matrix(t, std, H, H, "cls.predictions.transform.dense.weight"));
    LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, H, "cls.predictions.transform.dense.bias"));
    LM_TRY(param_table_add_vector(t, PARAM_INIT_ONES, H, "cls.predictions.transform.LayerNorm.weight"));
    LM_TRY(param_table_add_vector(t, PARAM_INIT_ZEROS, H, "cls.predictions.transform.LayerNorm.bias"));
    if (t->count != (size_t)BERT_HEAD_TENSOR(c->num_hidden_layers, BERT_HEAD_TENSORS))
        return lm_error_set(LM_ERR_INTERNAL, "architecture 'bert': parameter table has %zu tensors", t->count);
    return LM_OK;
}

/* Hugging Face BertPreTrainedModel._init_weights draws N(0,
 * initializer_range) for Linear and Embedding weights, zero biases
 * (cls.predictions.bias included) and LayerNorm 1/0 (the skeleton does
 * that), and zeroes the padding_idx row of the word embeddings
 * (nn.Embedding(padding_idx=pad_token_id)). */
static void zero_padding_row(model_base *m, float *host) {
    const bert_config *c = &bert_of(m)->config;
    if (c->pad_token_id < 0) return;
    const size_t H = (size_t)c->hidden_size;
    memset(host + m->table.descs[BERT_WORD_EMB].offset + (size_t)c->pad_token_id * H, 0, H * sizeof(float));
}

static const model_arch bert_arch = {
    .name = "bert",
    .label = "BERT",
    .causal = 0,
    .uses_token_types = 1,
    .model_size = sizeof(bert_model),
    .layer_acts_size = sizeof(bert_layer_acts),
    .extra_batch_arrays = 3, /* token types, the scored rows and their labels */
    .read_config = bert_read_config,
    .declare_params = declare_params,
    .carve_acts = bert_carve_acts,
    .forward = bert_forward,
    .upload_batch = bert_upload_batch,
    .backward = bert_backward,
    .write_hf_config = bert_write_hf_config,
    .acts_ready = bert_acts_ready,
    .adjust_initial_weights = zero_padding_row,
    .download_logits = bert_head_download_logits,
    .free_extra = bert_head_free,
};

static lm_status bert_create(void **self, lm_config *cfg) { return model_create(&bert_arch, self, cfg); }

static const lm_architecture_vtable bert_vtable = {
    .create = bert_create,
    MODEL_VTABLE_SLOTS,
};

LM_PLUGIN_DEFINE(LM_KIND_ARCHITECTURE, "bert", "2.0.0",
                 "BERT masked language model (Hugging Face BertForMaskedLM names, tied decoder), CPU or CUDA",
                 lm_architecture_vtable, bert_vtable)

/* BERT configuration: lmcore config keys and Hugging Face config.json.
 *
 * Keys are the Hugging Face BertConfig names, so a config.json saved by
 * `transformers` (hf_config=path) and a Lua table use the same spelling.
 * Keys given explicitly win over the file's values.  Hugging Face keys this
 * model has no use for (architectures, classifier_dropout, use_cache, ...)
 * are ignored, but a file describing another model, or a BERT variant that
 * this plugin would compute differently (decoder, cross-attention, relative
 * positions, untied head), is refused rather than trained as something else. */
#include <stdio.h>
#include <string.h>

#include "bert.h"
#include "model_config.h"

/* The transformers release the fixtures and the round-trip were checked with. */
#define BERT_TRANSFORMERS_VERSION "5.24.0"

/* BERT variants this plugin would compute differently are refused (and
 * relative positions, below). */
static const model_config_variant bert_variant = {
    "bert", "the standard BERT encoder", {{"is_decoder", 0}, {"add_cross_attention", 0}, {"tie_word_embeddings", 1}}};

static lm_status check_values(model_config_reader *r, model_base *m, const bert_config *c) {
    const model_config_checks checks = {
        .sizes = {{"vocab_size", c->vocab_size, 1, 1 << 24},
                  {"hidden_size", c->hidden_size, 1, 1 << 16},
                  {"num_hidden_layers", c->num_hidden_layers, 0, 1 << 12},
                  {"num_attention_heads", c->num_attention_heads, 1, 1 << 12},
                  {"intermediate_size", c->intermediate_size, 1, 1 << 18},
                  {"max_position_embeddings", c->max_position_embeddings, 1, 1 << 20},
                  {"type_vocab_size", c->type_vocab_size, 1, 1 << 16}},
        .width_key = "hidden_size",
        .heads_key = "num_attention_heads",
        .dropouts = {{"hidden_dropout_prob", c->hidden_dropout_prob},
                     {"attention_probs_dropout_prob", c->attention_probs_dropout_prob}},
        .layer_norm_eps = {"layer_norm_eps", c->layer_norm_eps},
        .initializer_range = c->initializer_range};
    LM_TRY(model_config_check(r, &m->device, &checks));
    if (c->pad_token_id < -1 || c->pad_token_id >= c->vocab_size)
        return lm_error_set(LM_ERR_INVALID, "architecture 'bert': pad_token_id %d is outside the vocabulary [0, %d)%s",
                            (int)c->pad_token_id, (int)c->vocab_size, r->source);
    return LM_OK;
}

static lm_status parse_head_rows(bert_config *c, const char *value) {
    if (strcmp(value, "auto") == 0) c->head_rows = BERT_HEAD_ROWS_AUTO;
    else if (strcmp(value, "exact") == 0) c->head_rows = BERT_HEAD_ROWS_EXACT;
    else if (strcmp(value, "padded") == 0) c->head_rows = BERT_HEAD_ROWS_PADDED;
    else
        return lm_error_set(LM_ERR_INVALID, "architecture 'bert': mlm_head_rows '%.40s' is unknown: use auto (the "
                                            "default: padded on a device that captures CUDA graphs, exact "
                                            "elsewhere), exact or padded",
                            value);
    return LM_OK;
}

static lm_status parse_activation(bert_config *c, const char *activation, const char *source) {
    if (strcmp(activation, "gelu") == 0) c->gelu_tanh = 0;
    else if (strcmp(activation, "gelu_new") == 0 || strcmp(activation, "gelu_pytorch_tanh") == 0) c->gelu_tanh = 1;
    else
        return lm_error_set(LM_ERR_UNSUPPORTED,
                            "architecture 'bert': hidden_act '%s' is not supported%s: use 'gelu' (exact, BERT's) or "
                            "'gelu_new' (tanh approximation)",
                            activation, source);
    snprintf(c->hidden_act, sizeof c->hidden_act, "%s", activation);
    return LM_OK;
}

lm_status bert_read_config(model_base *m, lm_config *cfg) {
    bert_config *c = &bert_of(m)->config;
    model_config_reader r;
    LM_TRY(model_config_open(&r, cfg, &bert_variant));
    lm_status status;
    const char *positions = hf_string(&r.file, "position_embedding_type", "absolute");
    if (r.file.status == LM_OK && strcmp(positions, "absolute") != 0) {
        status = lm_error_set(LM_ERR_UNSUPPORTED, "hf_config '%s': position_embedding_type '%s' is not supported by "
                                                  "architecture 'bert' (only 'absolute')",
                              r.file.path, positions);
        goto fail;
    }
    LM_CHECK(r.file.status);

    /* bert-base-cased defaults. */
    /* The ranges are check_values' (read in 64 bits, then narrowed). */
    c->vocab_size = (int32_t)model_config_int(&r, "vocab_size", 28996, 1, 1 << 24);
    c->hidden_size = (int32_t)model_config_int(&r, "hidden_size", 768, 1, 1 << 16);
    c->num_hidden_layers = (int32_t)model_config_int(&r, "num_hidden_layers", 12, 0, 1 << 12);
    c->num_attention_heads = (int32_t)model_config_int(&r, "num_attention_heads", 12, 1, 1 << 12);
    c->intermediate_size = (int32_t)model_config_int(&r, "intermediate_size", 3072, 1, 1 << 18);
    c->max_position_embeddings = (int32_t)model_config_int(&r, "max_position_embeddings", 512, 1, 1 << 20);
    c->type_vocab_size = (int32_t)model_config_int(&r, "type_vocab_size", 2, 1, 1 << 16);
    /* null (-1): no padding id; check_values compares the rest with the vocabulary. */
    c->pad_token_id = (int32_t)model_config_int_or_null(&r, "pad_token_id", 0, -1, -1, INT32_MAX);
    c->hidden_dropout_prob = model_config_number(&r, "hidden_dropout_prob", 0.1);
    c->attention_probs_dropout_prob = model_config_number(&r, "attention_probs_dropout_prob", 0.1);
    c->layer_norm_eps = model_config_number(&r, "layer_norm_eps", 1e-12);
    c->initializer_range = model_config_number(&r, "initializer_range", 0.02);
    const char *activation = model_config_string(&r, "hidden_act", "gelu");
    /* lmcore's, not Hugging Face's: the rows of the sparse MLM head (bert.h). */
    const char *head_rows = lm_config_string(cfg, "mlm_head_rows", "auto");
    LM_CHECK(model_config_validate(&r, &m->device));

    LM_CHECK(parse_activation(c, activation, r.source));
    LM_CHECK(parse_head_rows(c, head_rows ? head_rows : "auto"));
    LM_CHECK(check_values(&r, m, c));
    m->limits = (model_batch_limits){"bert", "max_position_embeddings", c->max_position_embeddings, c->vocab_size,
                                     c->type_vocab_size};
    m->n_layer = c->num_hidden_layers;
    m->width = c->hidden_size;
    m->n_head = c->num_attention_heads;
    m->dropout_configured = c->hidden_dropout_prob > 0 || c->attention_probs_dropout_prob > 0;
fail:
    model_config_close(&r);
    return status;
}

lm_status bert_write_hf_config(const model_base *m, lm_buffer *out) {
    const bert_config *c = &((const bert_model *)m)->config;
    lm_json_writer w;
    hf_write_begin(&w, out);
    /* Keys sorted, as transformers writes them. */
    hf_write_bool(&w, "add_cross_attention", 0);
    hf_write_architectures(&w, "BertForMaskedLM");
    hf_write_number(&w, "attention_probs_dropout_prob", c->attention_probs_dropout_prob);
    hf_write_nullable(&w, "bos_token_id", -1);
    hf_write_nullable(&w, "classifier_dropout", -1);
    hf_write_string(&w, "dtype", "float32"); /* transformers >= 5; torch_dtype below for 4.x */
    hf_write_nullable(&w, "eos_token_id", -1);
    hf_write_string(&w, "hidden_act", c->hidden_act);
    hf_write_number(&w, "hidden_dropout_prob", c->hidden_dropout_prob);
    hf_write_int(&w, "hidden_size", c->hidden_size);
    hf_write_number(&w, "initializer_range", c->initializer_range);
    hf_write_int(&w, "intermediate_size", c->intermediate_size);
    hf_write_bool(&w, "is_decoder", 0);
    hf_write_number(&w, "layer_norm_eps", c->layer_norm_eps);
    hf_write_int(&w, "max_position_embeddings", c->max_position_embeddings);
    hf_write_string(&w, "model_type", "bert");
    hf_write_int(&w, "num_attention_heads", c->num_attention_heads);
    hf_write_int(&w, "num_hidden_layers", c->num_hidden_layers);
    hf_write_nullable(&w, "pad_token_id", c->pad_token_id);
    hf_write_string(&w, "position_embedding_type", "absolute"); /* read by transformers 4.x */
    hf_write_bool(&w, "tie_word_embeddings", 1);
    hf_write_string(&w, "torch_dtype", "float32");
    hf_write_string(&w, "transformers_version", BERT_TRANSFORMERS_VERSION);
    hf_write_int(&w, "type_vocab_size", c->type_vocab_size);
    hf_write_bool(&w, "use_cache", 1);
    hf_write_int(&w, "vocab_size", c->vocab_size);
    return hf_write_end(&w, out);
}

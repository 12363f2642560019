/* BERT configuration: lmcore config keys and Hugging Face config.json.
 *
 * Keys are the Hugging Face BertConfig names, so a config.json saved by
 * `transformers` (hf_config=path) and a Lua table use the same spelling.
 * Keys given explicitly win over the file's values.  Hugging Face keys this
 * model has no use for (architectures, classifier_dropout, use_cache, ...)
 * are ignored, but a file describing another model, or a BERT variant that
 * this plugin would compute differently (decoder, cross-attention, relative
 * positions, untied head), is refused rather than trained as something else. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bert.h"
#include "hf_config.h"
#include "lmcore/json.h"

/* The transformers release the fixtures and the round-trip were checked with. */
#define BERT_TRANSFORMERS_VERSION "5.24.0"

/* Refuses files that describe something this plugin would compute differently. */
static lm_status check_hf_variant(hf_file *f) {
    const char *model_type = hf_string(f, "model_type", "bert");
    if (f->status == LM_OK && strcmp(model_type, "bert") != 0)
        return lm_error_set(LM_ERR_INVALID,
                            "hf_config '%s' describes a '%s' model, not 'bert': use the matching architecture plugin",
                            f->path, model_type);
    struct {
        const char *key;
        int expected;
    } flags[] = {{"is_decoder", 0}, {"add_cross_attention", 0}, {"tie_word_embeddings", 1}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        int value = hf_bool(f, flags[i].key, flags[i].expected);
        if (f->status == LM_OK && value != flags[i].expected)
            return lm_error_set(LM_ERR_UNSUPPORTED, "hf_config '%s': %s=%s is not supported by architecture 'bert' "
                                                    "(only the standard BERT encoder with %s=%s)",
                                f->path, flags[i].key, value ? "true" : "false", flags[i].key,
                                flags[i].expected ? "true" : "false");
    }
    const char *positions = hf_string(f, "position_embedding_type", "absolute");
    if (f->status == LM_OK && strcmp(positions, "absolute") != 0)
        return lm_error_set(LM_ERR_UNSUPPORTED, "hf_config '%s': position_embedding_type '%s' is not supported by "
                                                "architecture 'bert' (only 'absolute')",
                            f->path, positions);
    return f->status;
}

static lm_status check_values(const bert_config *c, const char *source) {
    struct {
        const char *key;
        int64_t value, min, max;
    } sizes[] = {{"vocab_size", c->vocab_size, 1, 1 << 24},
                 {"hidden_size", c->hidden_size, 1, 1 << 16},
                 {"num_hidden_layers", c->num_hidden_layers, 0, 1 << 12},
                 {"num_attention_heads", c->num_attention_heads, 1, 1 << 12},
                 {"intermediate_size", c->intermediate_size, 1, 1 << 18},
                 {"max_position_embeddings", c->max_position_embeddings, 1, 1 << 20},
                 {"type_vocab_size", c->type_vocab_size, 1, 1 << 16}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].value < sizes[i].min || sizes[i].value > sizes[i].max)
            return lm_error_set(LM_ERR_INVALID, "architecture 'bert': %s must be between %lld and %lld, got %lld%s",
                                sizes[i].key, (long long)sizes[i].min, (long long)sizes[i].max,
                                (long long)sizes[i].value, source);
    if (c->hidden_size % c->num_attention_heads != 0)
        return lm_error_set(LM_ERR_INVALID,
                            "architecture 'bert': hidden_size (%d) must be a multiple of num_attention_heads (%d)%s",
                            (int)c->hidden_size, (int)c->num_attention_heads, source);
    if (c->pad_token_id < -1 || c->pad_token_id >= c->vocab_size)
        return lm_error_set(LM_ERR_INVALID, "architecture 'bert': pad_token_id %d is outside the vocabulary [0, %d)%s",
                            (int)c->pad_token_id, (int)c->vocab_size, source);
    struct {
        const char *key;
        double value;
    } drops[] = {{"hidden_dropout_prob", c->hidden_dropout_prob},
                 {"attention_probs_dropout_prob", c->attention_probs_dropout_prob}};
    for (size_t i = 0; i < 2; i++)
        if (!(drops[i].value >= 0.0 && drops[i].value < 1.0))
            return lm_error_set(LM_ERR_INVALID, "architecture 'bert': %s must be in [0, 1), got %g%s", drops[i].key,
                                drops[i].value, source);
    if (!(c->layer_norm_eps > 0.0 && c->layer_norm_eps < 1.0))
        return lm_error_set(LM_ERR_INVALID, "architecture 'bert': layer_norm_eps must be in (0, 1), got %g%s",
                            c->layer_norm_eps, source);
    if (!(c->initializer_range >= 0.0 && c->initializer_range < 10.0))
        return lm_error_set(LM_ERR_INVALID, "architecture 'bert': initializer_range must be in [0, 10), got %g%s",
                            c->initializer_range, source);
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

lm_status bert_config_read(bert_config *c, lm_config *cfg) {
    memset(c, 0, sizeof *c);
    hf_file file;
    lm_status status = hf_open(&file, cfg, "bert");
    if (status != LM_OK) return status;
    if (file.root) LM_CHECK(check_hf_variant(&file));

    /* bert-base-cased defaults. */
    c->vocab_size = (int32_t)lm_config_int(cfg, "vocab_size", hf_int(&file, "vocab_size", 28996, 28996));
    c->hidden_size = (int32_t)lm_config_int(cfg, "hidden_size", hf_int(&file, "hidden_size", 768, 768));
    c->num_hidden_layers =
        (int32_t)lm_config_int(cfg, "num_hidden_layers", hf_int(&file, "num_hidden_layers", 12, 12));
    c->num_attention_heads =
        (int32_t)lm_config_int(cfg, "num_attention_heads", hf_int(&file, "num_attention_heads", 12, 12));
    c->intermediate_size =
        (int32_t)lm_config_int(cfg, "intermediate_size", hf_int(&file, "intermediate_size", 3072, 3072));
    c->max_position_embeddings =
        (int32_t)lm_config_int(cfg, "max_position_embeddings", hf_int(&file, "max_position_embeddings", 512, 512));
    c->type_vocab_size = (int32_t)lm_config_int(cfg, "type_vocab_size", hf_int(&file, "type_vocab_size", 2, 2));
    c->pad_token_id = (int32_t)lm_config_int(cfg, "pad_token_id", hf_int(&file, "pad_token_id", 0, -1));
    c->hidden_dropout_prob =
        lm_config_number(cfg, "hidden_dropout_prob", hf_number(&file, "hidden_dropout_prob", 0.1));
    c->attention_probs_dropout_prob = lm_config_number(cfg, "attention_probs_dropout_prob",
                                                       hf_number(&file, "attention_probs_dropout_prob", 0.1));
    c->layer_norm_eps = lm_config_number(cfg, "layer_norm_eps", hf_number(&file, "layer_norm_eps", 1e-12));
    c->initializer_range = lm_config_number(cfg, "initializer_range", hf_number(&file, "initializer_range", 0.02));
    const char *activation = lm_config_string(cfg, "hidden_act", hf_string(&file, "hidden_act", "gelu"));
    model_device_read(&c->device, cfg);
    LM_CHECK(file.status);
    /* Wrong types and unknown keys first: their messages name the key. */
    LM_CHECK(lm_config_validate(cfg));

    const char *source = "";
    char source_buf[600];
    if (file.path) {
        snprintf(source_buf, sizeof source_buf, " (hf_config '%s')", file.path);
        source = source_buf;
    }
    LM_CHECK(parse_activation(c, activation, source));
    LM_CHECK(model_device_check(&c->device, "bert"));
    LM_CHECK(check_values(c, source));
fail:
    hf_close(&file);
    return status;
}

lm_status bert_config_write_hf(const bert_config *c, lm_buffer *out) {
    lm_json_writer w;
    lm_json_writer_init(&w, out, 2);
    lm_json_begin_object(&w);
    /* Keys sorted, as transformers writes them. */
    lm_json_key(&w, "add_cross_attention");
    lm_json_write_bool(&w, 0);
    lm_json_key(&w, "architectures");
    lm_json_begin_array(&w);
    lm_json_write_cstr(&w, "BertForMaskedLM");
    lm_json_end_array(&w);
    lm_json_key(&w, "attention_probs_dropout_prob");
    lm_json_write_number(&w, c->attention_probs_dropout_prob);
    hf_write_nullable(&w, "bos_token_id", -1);
    hf_write_nullable(&w, "classifier_dropout", -1);
    lm_json_key(&w, "dtype"); /* transformers >= 5; torch_dtype below for 4.x */
    lm_json_write_cstr(&w, "float32");
    hf_write_nullable(&w, "eos_token_id", -1);
    lm_json_key(&w, "hidden_act");
    lm_json_write_cstr(&w, c->hidden_act);
    lm_json_key(&w, "hidden_dropout_prob");
    lm_json_write_number(&w, c->hidden_dropout_prob);
    lm_json_key(&w, "hidden_size");
    lm_json_write_int(&w, c->hidden_size);
    lm_json_key(&w, "initializer_range");
    lm_json_write_number(&w, c->initializer_range);
    lm_json_key(&w, "intermediate_size");
    lm_json_write_int(&w, c->intermediate_size);
    lm_json_key(&w, "is_decoder");
    lm_json_write_bool(&w, 0);
    lm_json_key(&w, "layer_norm_eps");
    lm_json_write_number(&w, c->layer_norm_eps);
    lm_json_key(&w, "max_position_embeddings");
    lm_json_write_int(&w, c->max_position_embeddings);
    lm_json_key(&w, "model_type");
    lm_json_write_cstr(&w, "bert");
    lm_json_key(&w, "num_attention_heads");
    lm_json_write_int(&w, c->num_attention_heads);
    lm_json_key(&w, "num_hidden_layers");
    lm_json_write_int(&w, c->num_hidden_layers);
    hf_write_nullable(&w, "pad_token_id", c->pad_token_id);
    lm_json_key(&w, "position_embedding_type"); /* read by transformers 4.x */
    lm_json_write_cstr(&w, "absolute");
    lm_json_key(&w, "tie_word_embeddings");
    lm_json_write_bool(&w, 1);
    lm_json_key(&w, "torch_dtype");
    lm_json_write_cstr(&w, "float32");
    lm_json_key(&w, "transformers_version");
    lm_json_write_cstr(&w, BERT_TRANSFORMERS_VERSION);
    lm_json_key(&w, "type_vocab_size");
    lm_json_write_int(&w, c->type_vocab_size);
    lm_json_key(&w, "use_cache");
    lm_json_write_bool(&w, 1);
    lm_json_key(&w, "vocab_size");
    lm_json_write_int(&w, c->vocab_size);
    lm_json_end_object(&w);
    LM_TRY(lm_json_writer_finish(&w));
    return lm_buffer_append(out, "\n", 1);
}

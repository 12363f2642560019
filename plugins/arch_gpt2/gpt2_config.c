/* GPT-2 configuration: lmcore config keys and Hugging Face config.json.
 *
 * Keys are the Hugging Face GPT2Config names, so a config.json saved by
 * `transformers` (hf_config=path) and a Lua table use the same spelling.
 * Keys given explicitly win over the file's values; Hugging Face keys this
 * model has no use for (architectures, task_specific_params, summary_*) are
 * ignored, but a file describing a different model, or a GPT-2 variant we do
 * not implement (other activation, unscaled attention, untied head), is
 * refused rather than silently trained as something else. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gpt2.h"
#include "hf_config.h"
#include "lmcore/json.h"

/* The transformers release the fixtures and the round-trip were checked with. */
#define GPT2_TRANSFORMERS_VERSION "5.24.0"

/* A nullable integer key: an explicit config value, else the file's, else def. */
static int64_t read_nullable_int(lm_config *cfg, hf_file *f, const char *key, int64_t def, int *given) {
    int64_t from_file = hf_int(f, key, def, -1);
    if (given) *given = hf_get(f, key) && lm_json_type_of(hf_get(f, key)) != LM_JSON_NULL;
    if (lm_config_has(cfg, key)) {
        if (given) *given = 1;
        return lm_config_int(cfg, key, from_file);
    }
    return from_file;
}

/* Refuses GPT-2 variants that this implementation would compute differently. */
static lm_status check_hf_variant(hf_file *f) {
    const char *model_type = hf_string(f, "model_type", "gpt2");
    if (f->status == LM_OK && strcmp(model_type, "gpt2") != 0)
        return lm_error_set(LM_ERR_INVALID,
                            "hf_config '%s' describes a '%s' model, not 'gpt2': use the matching architecture plugin",
                            f->path, model_type);
    struct {
        const char *key;
        int expected;
    } flags[] = {{"scale_attn_weights", 1},
                 {"scale_attn_by_inverse_layer_idx", 0},
                 {"add_cross_attention", 0},
                 {"tie_word_embeddings", 1}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        int value = hf_bool(f, flags[i].key, flags[i].expected);
        if (f->status == LM_OK && value != flags[i].expected)
            return lm_error_set(LM_ERR_UNSUPPORTED, "hf_config '%s': %s=%s is not supported by architecture 'gpt2' "
                                                    "(only the standard GPT-2 with %s=%s)",
                                f->path, flags[i].key, value ? "true" : "false", flags[i].key,
                                flags[i].expected ? "true" : "false");
    }
    return f->status;
}

static lm_status check_sizes(const gpt2_config *c, const char *source) {
    struct {
        const char *key;
        int64_t value, max;
    } sizes[] = {{"vocab_size", c->vocab_size, 1 << 24}, {"n_positions", c->n_positions, 1 << 20},
                 {"n_embd", c->n_embd, 1 << 16},         {"n_layer", c->n_layer, 1 << 12},
                 {"n_head", c->n_head, 1 << 12},         {"n_inner", c->n_inner, 1 << 18}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].value < 1 || sizes[i].value > sizes[i].max)
            return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': %s must be between 1 and %lld, got %lld%s",
                                sizes[i].key, (long long)sizes[i].max, (long long)sizes[i].value, source);
    if (c->n_embd % c->n_head != 0)
        return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': n_embd (%d) must be a multiple of n_head (%d)%s",
                            (int)c->n_embd, (int)c->n_head, source);
    struct {
        const char *key;
        double value;
    } drops[] = {{"embd_pdrop", c->embd_pdrop}, {"attn_pdrop", c->attn_pdrop}, {"resid_pdrop", c->resid_pdrop}};
    for (size_t i = 0; i < 3; i++)
        if (!(drops[i].value >= 0.0 && drops[i].value < 1.0))
            return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': %s must be in [0, 1), got %g%s", drops[i].key,
                                drops[i].value, source);
    if (!(c->layer_norm_epsilon > 0.0 && c->layer_norm_epsilon < 1.0))
        return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': layer_norm_epsilon must be in (0, 1), got %g%s",
                            c->layer_norm_epsilon, source);
    if (!(c->initializer_range >= 0.0 && c->initializer_range < 10.0))
        return lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': initializer_range must be in [0, 10), got %g%s",
                            c->initializer_range, source);
    return LM_OK;
}

lm_status gpt2_config_read(gpt2_config *c, lm_config *cfg) {
    memset(c, 0, sizeof *c);
    hf_file file;
    lm_status status = hf_open(&file, cfg, "gpt2");
    if (status != LM_OK) return status;
    if (file.root) LM_CHECK(check_hf_variant(&file));

    /* Old configs spell the context n_ctx (always equal to n_positions). */
    int64_t positions_default = hf_int(&file, "n_ctx", 1024, 1024);
    c->vocab_size = (int32_t)lm_config_int(cfg, "vocab_size", hf_int(&file, "vocab_size", 50257, 50257));
    c->n_positions =
        (int32_t)lm_config_int(cfg, "n_positions", hf_int(&file, "n_positions", positions_default, positions_default));
    c->n_embd = (int32_t)lm_config_int(cfg, "n_embd", hf_int(&file, "n_embd", 768, 768));
    c->n_layer = (int32_t)lm_config_int(cfg, "n_layer", hf_int(&file, "n_layer", 12, 12));
    c->n_head = (int32_t)lm_config_int(cfg, "n_head", hf_int(&file, "n_head", 12, 12));
    int64_t n_inner = read_nullable_int(cfg, &file, "n_inner", -1, &c->n_inner_given);
    c->n_inner = n_inner < 0 && !c->n_inner_given ? 4 * c->n_embd : (int32_t)n_inner;
    c->embd_pdrop = lm_config_number(cfg, "embd_pdrop", hf_number(&file, "embd_pdrop", 0.1));
    c->attn_pdrop = lm_config_number(cfg, "attn_pdrop", hf_number(&file, "attn_pdrop", 0.1));
    c->resid_pdrop = lm_config_number(cfg, "resid_pdrop", hf_number(&file, "resid_pdrop", 0.1));
    c->layer_norm_epsilon = lm_config_number(cfg, "layer_norm_epsilon", hf_number(&file, "layer_norm_epsilon", 1e-5));
    c->initializer_range = lm_config_number(cfg, "initializer_range", hf_number(&file, "initializer_range", 0.02));
    int bos_given = 0, eos_given = 0;
    c->bos_token_id = read_nullable_int(cfg, &file, "bos_token_id", 50256, &bos_given);
    c->eos_token_id = read_nullable_int(cfg, &file, "eos_token_id", 50256, &eos_given);
    const char *activation =
        lm_config_string(cfg, "activation_function", hf_string(&file, "activation_function", "gelu_new"));
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
    if (strcmp(activation, "gelu_new") != 0) {
        status = lm_error_set(LM_ERR_UNSUPPORTED,
                              "architecture 'gpt2': activation_function '%s' is not supported%s: GPT-2 uses "
                              "'gelu_new' (the tanh approximation), the only one implemented",
                              activation, source);
        goto done;
    }
    LM_CHECK(model_device_check(&c->device, "gpt2"));
    LM_CHECK(check_sizes(c, source));
    /* Hugging Face's default ids (50256) belong to the 50,257-token GPT-2
     * vocabulary: with a smaller one and no ids given, save none (null), as
     * an id outside the vocabulary breaks `generate` in transformers. */
    if (!bos_given && c->bos_token_id >= c->vocab_size) c->bos_token_id = -1;
    if (!eos_given && c->eos_token_id >= c->vocab_size) c->eos_token_id = -1;
    if (c->bos_token_id >= c->vocab_size || c->eos_token_id >= c->vocab_size) {
        status = lm_error_set(LM_ERR_INVALID,
                              "architecture 'gpt2': bos_token_id %d / eos_token_id %d must be ids of the %d-token "
                              "vocabulary%s",
                              (int)c->bos_token_id, (int)c->eos_token_id, (int)c->vocab_size, source);
        goto done;
    }
done:
fail:
    hf_close(&file);
    return status;
}

lm_status gpt2_config_write_hf(const gpt2_config *c, lm_buffer *out) {
    lm_json_writer w;
    lm_json_writer_init(&w, out, 2);
    lm_json_begin_object(&w);
    /* Keys sorted, as transformers writes them. */
    lm_json_key(&w, "activation_function");
    lm_json_write_cstr(&w, "gelu_new");
    lm_json_key(&w, "add_cross_attention");
    lm_json_write_bool(&w, 0);
    lm_json_key(&w, "architectures");
    lm_json_begin_array(&w);
    lm_json_write_cstr(&w, "GPT2LMHeadModel");
    lm_json_end_array(&w);
    lm_json_key(&w, "attn_pdrop");
    lm_json_write_number(&w, c->attn_pdrop);
    hf_write_nullable(&w, "bos_token_id", c->bos_token_id);
    lm_json_key(&w, "dtype"); /* transformers >= 5; torch_dtype below for 4.x */
    lm_json_write_cstr(&w, "float32");
    lm_json_key(&w, "embd_pdrop");
    lm_json_write_number(&w, c->embd_pdrop);
    hf_write_nullable(&w, "eos_token_id", c->eos_token_id);
    lm_json_key(&w, "initializer_range");
    lm_json_write_number(&w, c->initializer_range);
    lm_json_key(&w, "layer_norm_epsilon");
    lm_json_write_number(&w, c->layer_norm_epsilon);
    lm_json_key(&w, "model_type");
    lm_json_write_cstr(&w, "gpt2");
    lm_json_key(&w, "n_ctx");
    lm_json_write_int(&w, c->n_positions);
    lm_json_key(&w, "n_embd");
    lm_json_write_int(&w, c->n_embd);
    lm_json_key(&w, "n_head");
    lm_json_write_int(&w, c->n_head);
    hf_write_nullable(&w, "n_inner", c->n_inner_given ? c->n_inner : -1);
    lm_json_key(&w, "n_layer");
    lm_json_write_int(&w, c->n_layer);
    lm_json_key(&w, "n_positions");
    lm_json_write_int(&w, c->n_positions);
    lm_json_key(&w, "reorder_and_upcast_attn");
    lm_json_write_bool(&w, 0);
    lm_json_key(&w, "resid_pdrop");
    lm_json_write_number(&w, c->resid_pdrop);
    lm_json_key(&w, "scale_attn_by_inverse_layer_idx");
    lm_json_write_bool(&w, 0);
    lm_json_key(&w, "scale_attn_weights");
    lm_json_write_bool(&w, 1);
    lm_json_key(&w, "summary_activation");
    lm_json_write_null(&w);
    lm_json_key(&w, "summary_first_dropout");
    lm_json_write_number(&w, 0.1);
    lm_json_key(&w, "summary_proj_to_labels");
    lm_json_write_bool(&w, 1);
    lm_json_key(&w, "summary_type");
    lm_json_write_cstr(&w, "cls_index");
    lm_json_key(&w, "summary_use_proj");
    lm_json_write_bool(&w, 1);
    lm_json_key(&w, "tie_word_embeddings");
    lm_json_write_bool(&w, 1);
    lm_json_key(&w, "torch_dtype");
    lm_json_write_cstr(&w, "float32");
    lm_json_key(&w, "transformers_version");
    lm_json_write_cstr(&w, GPT2_TRANSFORMERS_VERSION);
    lm_json_key(&w, "use_cache");
    lm_json_write_bool(&w, 1);
    lm_json_key(&w, "vocab_size");
    lm_json_write_int(&w, c->vocab_size);
    lm_json_end_object(&w);
    LM_TRY(lm_json_writer_finish(&w));
    return lm_buffer_append(out, "\n", 1);
}

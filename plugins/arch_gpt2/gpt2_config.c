/* GPT-2 configuration: lmcore config keys and Hugging Face config.json.
 *
 * Keys are the Hugging Face GPT2Config names, so a config.json saved by
 * `transformers` (hf_config=path) and a Lua table use the same spelling.
 * Keys given explicitly win over the file's values; Hugging Face keys this
 * model has no use for (architectures, task_specific_params, summary_*) are
 * ignored, but a file describing a different model, or a GPT-2 variant we do
 * not implement (other activation, unscaled attention, untied head), is
 * refused rather than silently trained as something else. */
#include <string.h>

#include "gpt2.h"
#include "lmcore/json.h"
#include "model_config.h"

/* The transformers release the fixtures and the round-trip were checked with. */
#define GPT2_TRANSFORMERS_VERSION "5.24.0"

/* A nullable integer key: an explicit config value, else the file's, else def. */
static int64_t read_nullable_int(model_config_reader *r, const char *key, int64_t def, int64_t hi, int *given) {
    const lm_json *in_file = hf_get(&r->file, key);
    *given = lm_config_has(r->cfg, key) || (in_file && lm_json_type_of(in_file) != LM_JSON_NULL);
    /* -1 is null; the range checks the rest before it is narrowed. */
    return model_config_int_or_null(r, key, def, -1, -1, hi);
}

/* GPT-2 variants this implementation would compute differently are refused. */
static const model_config_variant gpt2_variant = {"gpt2",
                                                  "the standard GPT-2",
                                                  {{"scale_attn_weights", 1},
                                                   {"scale_attn_by_inverse_layer_idx", 0},
                                                   {"add_cross_attention", 0},
                                                   {"tie_word_embeddings", 1}}};

static lm_status check_values(model_config_reader *r, model_base *m, const gpt2_config *c) {
    const model_config_checks checks = {
        .sizes = {{"vocab_size", c->vocab_size, 1, 1 << 24}, {"n_positions", c->n_positions, 1, 1 << 20},
                  {"n_embd", c->n_embd, 1, 1 << 16}, {"n_layer", c->n_layer, 1, 1 << 12},
                  {"n_head", c->n_head, 1, 1 << 12}, {"n_inner", c->n_inner, 1, 1 << 18}},
        .width_key = "n_embd",
        .heads_key = "n_head",
        .dropouts = {{"embd_pdrop", c->embd_pdrop}, {"attn_pdrop", c->attn_pdrop}, {"resid_pdrop", c->resid_pdrop}},
        .layer_norm_eps = {"layer_norm_epsilon", c->layer_norm_epsilon},
        .initializer_range = c->initializer_range};
    return model_config_check(r, &m->device, &checks);
}

lm_status gpt2_read_config(model_base *m, lm_config *cfg) {
    gpt2_config *c = &gpt2_of(m)->config;
    model_config_reader r;
    LM_TRY(model_config_open(&r, cfg, &gpt2_variant));
    lm_status status;

    /* Old configs spell the context n_ctx (always equal to n_positions). */
    const int64_t positions_default = hf_int(&r.file, "n_ctx", 1024, 1024);
    if (r.file.status == LM_OK && (positions_default < 1 || positions_default > 1 << 20)) {
        status = lm_error_set(LM_ERR_INVALID, "architecture 'gpt2': n_ctx must be an integer between 1 and 1048576, "
                                              "got %lld%s",
                              (long long)positions_default, r.source);
        goto fail;
    }
    /* The ranges are check_values' (read in 64 bits, then narrowed). */
    c->vocab_size = (int32_t)model_config_int(&r, "vocab_size", 50257, 1, 1 << 24);
    c->n_positions = (int32_t)model_config_int(&r, "n_positions", positions_default, 1, 1 << 20);
    c->n_embd = (int32_t)model_config_int(&r, "n_embd", 768, 1, 1 << 16);
    c->n_layer = (int32_t)model_config_int(&r, "n_layer", 12, 1, 1 << 12);
    c->n_head = (int32_t)model_config_int(&r, "n_head", 12, 1, 1 << 12);
    int64_t n_inner = read_nullable_int(&r, "n_inner", -1, 1 << 18, &c->n_inner_given);
    c->n_inner = n_inner < 0 && !c->n_inner_given ? 4 * c->n_embd : (int32_t)n_inner;
    c->embd_pdrop = model_config_number(&r, "embd_pdrop", 0.1);
    c->attn_pdrop = model_config_number(&r, "attn_pdrop", 0.1);
    c->resid_pdrop = model_config_number(&r, "resid_pdrop", 0.1);
    c->layer_norm_epsilon = model_config_number(&r, "layer_norm_epsilon", 1e-5);
    c->initializer_range = model_config_number(&r, "initializer_range", 0.02);
    int bos_given = 0, eos_given = 0;
    c->bos_token_id = read_nullable_int(&r, "bos_token_id", 50256, INT32_MAX, &bos_given);
    c->eos_token_id = read_nullable_int(&r, "eos_token_id", 50256, INT32_MAX, &eos_given);
    const char *activation = model_config_string(&r, "activation_function", "gelu_new");
    LM_CHECK(model_config_validate(&r, &m->device));

    if (strcmp(activation, "gelu_new") != 0) {
        status = lm_error_set(LM_ERR_UNSUPPORTED,
                              "architecture 'gpt2': activation_function '%s' is not supported%s: GPT-2 uses "
                              "'gelu_new' (the tanh approximation), the only one implemented",
                              activation, r.source);
        goto fail;
    }
    LM_CHECK(check_values(&r, m, c));
    /* Hugging Face's default ids (50256) belong to the 50,257-token GPT-2
     * vocabulary: with a smaller one and no ids given, save none (null), as
     * an id outside the vocabulary breaks `generate` in transformers. */
    if (!bos_given && c->bos_token_id >= c->vocab_size) c->bos_token_id = -1;
    if (!eos_given && c->eos_token_id >= c->vocab_size) c->eos_token_id = -1;
    if (c->bos_token_id >= c->vocab_size || c->eos_token_id >= c->vocab_size) {
        status = lm_error_set(LM_ERR_INVALID,
                              "architecture 'gpt2': bos_token_id %lld / eos_token_id %lld must be ids of the "
                              "%d-token vocabulary%s",
                              (long long)c->bos_token_id, (long long)c->eos_token_id, (int)c->vocab_size, r.source);
        goto fail;
    }
    m->limits = (model_batch_limits){"gpt2", "n_positions", c->n_positions, c->vocab_size, 0};
    m->n_layer = c->n_layer;
    m->width = c->n_embd;
    m->n_head = c->n_head;
    m->dropout_configured = c->embd_pdrop > 0 || c->attn_pdrop > 0 || c->resid_pdrop > 0;
fail:
    model_config_close(&r);
    return status;
}

lm_status gpt2_write_hf_config(const model_base *m, lm_buffer *out) {
    const gpt2_config *c = &((const gpt2_model *)m)->config;
    lm_json_writer w;
    hf_write_begin(&w, out);
    /* Keys sorted, as transformers writes them. */
    hf_write_string(&w, "activation_function", "gelu_new");
    hf_write_bool(&w, "add_cross_attention", 0);
    hf_write_architectures(&w, "GPT2LMHeadModel");
    hf_write_number(&w, "attn_pdrop", c->attn_pdrop);
    hf_write_nullable(&w, "bos_token_id", c->bos_token_id);
    hf_write_string(&w, "dtype", "float32"); /* transformers >= 5; torch_dtype below for 4.x */
    hf_write_number(&w, "embd_pdrop", c->embd_pdrop);
    hf_write_nullable(&w, "eos_token_id", c->eos_token_id);
    hf_write_number(&w, "initializer_range", c->initializer_range);
    hf_write_number(&w, "layer_norm_epsilon", c->layer_norm_epsilon);
    hf_write_string(&w, "model_type", "gpt2");
    hf_write_int(&w, "n_ctx", c->n_positions);
    hf_write_int(&w, "n_embd", c->n_embd);
    hf_write_int(&w, "n_head", c->n_head);
    hf_write_nullable(&w, "n_inner", c->n_inner_given ? c->n_inner : -1);
    hf_write_int(&w, "n_layer", c->n_layer);
    hf_write_int(&w, "n_positions", c->n_positions);
    hf_write_bool(&w, "reorder_and_upcast_attn", 0);
    hf_write_number(&w, "resid_pdrop", c->resid_pdrop);
    hf_write_bool(&w, "scale_attn_by_inverse_layer_idx", 0);
    hf_write_bool(&w, "scale_attn_weights", 1);
    hf_write_nullable(&w, "summary_activation", -1);
    hf_write_number(&w, "summary_first_dropout", 0.1);
    hf_write_bool(&w, "summary_proj_to_labels", 1);
    hf_write_string(&w, "summary_type", "cls_index");
    hf_write_bool(&w, "summary_use_proj", 1);
    hf_write_bool(&w, "tie_word_embeddings", 1);
    hf_write_string(&w, "torch_dtype", "float32");
    hf_write_string(&w, "transformers_version", GPT2_TRANSFORMERS_VERSION);
    hf_write_bool(&w, "use_cache", 1);
    hf_write_int(&w, "vocab_size", c->vocab_size);
    return hf_write_end(&w, out);
}

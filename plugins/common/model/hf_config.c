/* Hugging Face config.json lookups shared by architecture plugins. */
#include <string.h>

#include "hf_config.h"

lm_status hf_open(hf_file *f, lm_config *cfg, const char *owner) {
    f->root = NULL;
    f->status = LM_OK;
    f->path = lm_config_string(cfg, "hf_config", NULL);
    if (!f->path) return LM_OK;
    lm_status status = lm_json_parse_file(f->path, &f->root);
    if (status != LM_OK) {
        lm_error_prefix("architecture '%s' (hf_config): ", owner);
        return status;
    }
    if (lm_json_type_of(f->root) != LM_JSON_OBJECT) {
        hf_close(f);
        return lm_error_set(LM_ERR_FORMAT, "hf_config '%s' is not a JSON object (expected a config.json)", f->path);
    }
    return LM_OK;
}

void hf_close(hf_file *f) {
    lm_json_free(f->root);
    f->root = NULL;
}

const lm_json *hf_get(hf_file *f, const char *key) {
    if (!f->root) return NULL;
    return lm_json_get(f->root, key);
}

void hf_fail(hf_file *f, const char *key, const char *wanted) {
    if (f->status != LM_OK) return;
    f->status = lm_error_set(LM_ERR_FORMAT, "hf_config '%s': key '%s' must be %s", f->path, key, wanted);
}

/* An integer from the file (or def); null gives null_value. */
int64_t hf_int(hf_file *f, const char *key, int64_t def, int64_t null_value) {
    const lm_json *v = hf_get(f, key);
    if (!v) return def;
    if (lm_json_type_of(v) == LM_JSON_NULL) return null_value;
    /* eos_token_id may be a list in recent configs: the first id is the one. */
    if (lm_json_type_of(v) == LM_JSON_ARRAY && lm_json_size(v) > 0) v = lm_json_at(v, 0);
    if (lm_json_type_of(v) == LM_JSON_NUMBER && lm_json_is_integer(v)) return lm_json_int(v);
    hf_fail(f, key, "an integer");
    return def;
}

double hf_number(hf_file *f, const char *key, double def) {
    const lm_json *v = hf_get(f, key);
    if (!v) return def;
    if (lm_json_type_of(v) == LM_JSON_NUMBER) return lm_json_number(v);
    hf_fail(f, key, "a number");
    return def;
}

int hf_bool(hf_file *f, const char *key, int def) {
    const lm_json *v = hf_get(f, key);
    if (!v) return def;
    if (lm_json_type_of(v) == LM_JSON_BOOL) return lm_json_bool(v);
    hf_fail(f, key, "true or false");
    return def;
}

const char *hf_string(hf_file *f, const char *key, const char *def) {
    const lm_json *v = hf_get(f, key);
    if (!v) return def;
    if (lm_json_type_of(v) == LM_JSON_STRING) return lm_json_string(v, NULL);
    hf_fail(f, key, "a string");
    return def;
}

lm_status hf_parse_precision(const char *owner, const char *name, lm_precision *out) {
    if (strcmp(name, "fp32") == 0) *out = LM_PRECISION_FP32;
    else if (strcmp(name, "tf32") == 0) *out = LM_PRECISION_TF32;
    else if (strcmp(name, "bf16") == 0) *out = LM_PRECISION_BF16;
    else
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': precision '%s' is unknown: use fp32, tf32 or bf16",
                            owner, name);
    return LM_OK;
}

const char *hf_precision_name(lm_precision p) {
    switch (p) {
    case LM_PRECISION_FP32: return "fp32";
    case LM_PRECISION_TF32: return "tf32";
    case LM_PRECISION_BF16: return "bf16";
    }
    return "fp32";
}

void hf_write_nullable(lm_json_writer *w, const char *key, int64_t value) {
    lm_json_key(w, key);
    if (value < 0) lm_json_write_null(w);
    else lm_json_write_int(w, value);
}

void hf_write_begin(lm_json_writer *w, lm_buffer *out) {
    lm_json_writer_init(w, out, 2);
    lm_json_begin_object(w);
}

lm_status hf_write_end(lm_json_writer *w, lm_buffer *out) {
    lm_json_end_object(w);
    LM_TRY(lm_json_writer_finish(w));
    return lm_buffer_append(out, "\n", 1);
}

void hf_write_int(lm_json_writer *w, const char *key, int64_t value) {
    lm_json_key(w, key);
    lm_json_write_int(w, value);
}

void hf_write_number(lm_json_writer *w, const char *key, double value) {
    lm_json_key(w, key);
    lm_json_write_number(w, value);
}

void hf_write_bool(lm_json_writer *w, const char *key, int value) {
    lm_json_key(w, key);
    lm_json_write_bool(w, value);
}

void hf_write_string(lm_json_writer *w, const char *key, const char *value) {
    lm_json_key(w, key);
    lm_json_write_cstr(w, value);
}

void hf_write_architectures(lm_json_writer *w, const char *model_class) {
    lm_json_key(w, "architectures");
    lm_json_begin_array(w);
    lm_json_write_cstr(w, model_class);
    lm_json_end_array(w);
}

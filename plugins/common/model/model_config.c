/* Architecture configuration reading and checks (model_config.h). */
#include "model_config.h"

#include <stdio.h>
#include <string.h>

lm_status model_config_open(model_config_reader *r, lm_config *cfg, const model_config_variant *variant) {
    const char *arch = variant->model_type;
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->arch = arch;
    LM_TRY(hf_open(&r->file, cfg, arch));
    hf_file *f = &r->file;
    if (!f->root) return LM_OK;
    snprintf(r->source, sizeof r->source, " (hf_config '%s')", f->path);
    lm_status status = LM_OK;
    const char *model_type = hf_string(f, "model_type", arch);
    if (f->status == LM_OK && strcmp(model_type, arch) != 0)
        status = lm_error_set(LM_ERR_INVALID,
                              "hf_config '%s' describes a '%s' model, not '%s': use the matching architecture plugin",
                              f->path, model_type, arch);
    for (size_t i = 0; variant->flags[i].key && status == LM_OK && f->status == LM_OK; i++) {
        const char *key = variant->flags[i].key;
        const int expected = variant->flags[i].expected, value = hf_bool(f, key, expected);
        if (f->status == LM_OK && value != expected)
            status = lm_error_set(LM_ERR_UNSUPPORTED, "hf_config '%s': %s=%s is not supported by architecture '%s' "
                                                      "(only %s with %s=%s)",
                                  f->path, key, value ? "true" : "false", arch, variant->standard, key,
                                  expected ? "true" : "false");
    }
    if (status == LM_OK) status = f->status;
    if (status != LM_OK) hf_close(f);
    return status;
}

void model_config_close(model_config_reader *r) { hf_close(&r->file); }

int64_t model_config_int_or_null(model_config_reader *r, const char *key, int64_t def, int64_t null_value,
                                 int64_t lo, int64_t hi) {
    /* Range-checked in 64 bits before the caller narrows it to int32: a
     * config.json's n_layer of 4294967298 must not train 2 layers. */
    if (lm_config_has(r->cfg, key)) return lm_config_int_range(r->cfg, key, def, lo, hi);
    const lm_json *in_file = hf_get(&r->file, key);
    if (in_file && lm_json_type_of(in_file) == LM_JSON_NULL) return null_value;
    /* The default is checked too: it may come from the file (GPT-2's n_ctx). */
    const int64_t value = hf_int(&r->file, key, def, null_value);
    if ((value >= lo && value <= hi) || r->file.status != LM_OK) return value;
    r->file.status = lm_error_set(LM_ERR_INVALID, "architecture '%s': %s must be an integer between %lld and %lld, "
                                                  "got %lld%s",
                                  r->arch, key, (long long)lo, (long long)hi, (long long)value, r->source);
    return def;
}

int64_t model_config_int(model_config_reader *r, const char *key, int64_t def, int64_t lo, int64_t hi) {
    return model_config_int_or_null(r, key, def, def, lo, hi);
}

double model_config_number(model_config_reader *r, const char *key, double def) {
    return lm_config_number(r->cfg, key, hf_number(&r->file, key, def));
}

const char *model_config_string(model_config_reader *r, const char *key, const char *def) {
    return lm_config_string(r->cfg, key, hf_string(&r->file, key, def));
}

lm_status model_config_validate(model_config_reader *r, model_device *device) {
    model_device_read(device, r->cfg);
    LM_TRY(r->file.status);
    return lm_config_validate(r->cfg);
}

/* The value of the size called `key` (the width and head keys name sizes). */
static int64_t size_of(const model_config_checks *checks, const char *key) {
    for (const model_config_size *s = checks->sizes; s->key; s++)
        if (strcmp(s->key, key) == 0) return s->value;
    return 0;
}

lm_status model_config_check(model_config_reader *r, model_device *device, const model_config_checks *checks) {
    const char *arch = r->arch, *source = r->source;
    LM_TRY(model_device_check(device, arch));
    for (const model_config_size *s = checks->sizes; s->key; s++)
        if (s->value < s->min || s->value > s->max)
            return lm_error_set(LM_ERR_INVALID, "architecture '%s': %s must be between %lld and %lld, got %lld%s", arch,
                                s->key, (long long)s->min, (long long)s->max, (long long)s->value, source);
    const int64_t width = size_of(checks, checks->width_key), heads = size_of(checks, checks->heads_key);
    if (heads < 1 || width % heads != 0)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': %s (%d) must be a multiple of %s (%d)%s", arch,
                            checks->width_key, (int)width, checks->heads_key, (int)heads, source);
    for (const model_config_fraction *d = checks->dropouts; d->key; d++)
        if (!(d->value >= 0.0 && d->value < 1.0))
            return lm_error_set(LM_ERR_INVALID, "architecture '%s': %s must be in [0, 1), got %g%s", arch, d->key,
                                d->value, source);
    const model_config_fraction *eps = &checks->layer_norm_eps;
    if (!(eps->value > 0.0 && eps->value < 1.0))
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': %s must be in (0, 1), got %g%s", arch, eps->key,
                            eps->value, source);
    if (!(checks->initializer_range >= 0.0 && checks->initializer_range < 10.0))
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': initializer_range must be in [0, 10), got %g%s", arch,
                            checks->initializer_range, source);
    return LM_OK;
}

/* model.safetensors + config.json in the Hugging Face layout, so that
 * `transformers` loads what lmcore saves, and the other way round. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_io.h"
#include "safetensors_internal.h"

static lm_status join_path(char *out, size_t cap, const char *dir, const char *file) {
    if ((size_t)snprintf(out, cap, "%s/%s", dir, file) >= cap)
        return lm_error_set(LM_ERR_INVALID, "path too long: '%s/%s'", dir, file);
    return LM_OK;
}

lm_status lm_model_save(const lm_plugin *arch, void *model, const char *dir, const lm_plugin *tokenizer_plugin,
                        void *tokenizer, const char *args_json) {
    char path[PATH_MAX];
    LM_TRY(lm_mkdir_p(dir));
    lm_param_set set;
    LM_TRY(arch->vtable.architecture.parameters(model, &set));
    const lm_param_desc *descs = set.descs;
    const size_t n_descs = set.n_descs;

    lm_status status = LM_OK;
    lm_safetensors_entry *entries = calloc(n_descs ? n_descs : 1, sizeof *entries);
    lm_buffer config = {0};
    if (!entries) {
        status = lm_error_set(LM_ERR_NOMEM, "out of memory saving the model");
        goto fail;
    }
    for (size_t i = 0; i < n_descs; i++) {
        entries[i].name = descs[i].name;
        entries[i].tensor.dtype = LM_F32;
        entries[i].tensor.ndim = descs[i].ndim;
        for (int d = 0; d < descs[i].ndim; d++) entries[i].tensor.shape[d] = descs[i].shape[d];
        entries[i].tensor.data = (float *)set.params + descs[i].offset; /* device memory: staged by the writer */
    }
    static const char *const metadata[] = {"format", "pt", NULL};
    LM_CHECK(join_path(path, sizeof path, dir, "model.safetensors"));
    LM_CHECK(lm_safetensors_write_via(path, entries, n_descs, metadata, lm_safetensors_read_device, set.device));
    LM_CHECK(arch->vtable.architecture.hf_config(model, &config));
    LM_CHECK(join_path(path, sizeof path, dir, "config.json"));
    LM_CHECK(lm_file_write_atomic(path, config.data, config.len));
    if (tokenizer_plugin && tokenizer) {
        LM_CHECK(join_path(path, sizeof path, dir, "tokenizer.json"));
        LM_CHECK(tokenizer_plugin->vtable.tokenizer.save(tokenizer, path));
    }
    if (args_json) {
        LM_CHECK(join_path(path, sizeof path, dir, "training_args.json"));
        LM_CHECK(lm_file_write_atomic(path, args_json, strlen(args_json)));
    }
fail:
    if (status != LM_OK) lm_error_prefix("saving the model to '%s': ", dir);
    lm_buffer_free(&config);
    free(entries);
    return status;
}

const char *lm_non_finite_name(float value) {
    return isnan(value) ? "NaN" : value > 0 ? "+infinity" : "-infinity";
}

size_t lm_first_non_finite(const float *values, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(values[i])) return i;
    return n;
}

/* Values the file holds (every tensor, whatever its dtype). */
static int64_t file_elements(const lm_safetensors *st) {
    int64_t total = 0;
    for (size_t i = 0; i < lm_safetensors_count(st); i++) {
        const char *name;
        lm_tensor t;
        if (lm_safetensors_at(st, i, &name, &t) == LM_OK) total += lm_tensor_numel(&t);
    }
    return total;
}

/* Before the model's buffers exist (the skeleton allocates them on first
 * use): a config.json that describes a larger model than the weights hold
 * fails here, naming both sizes, instead of allocating gigabytes first and
 * failing on the first tensor's shape.  The margin (a quarter, plus 64 Ki
 * values) leaves room for a plugin that pads tensors beyond their saved
 * rows (lm_param_desc.storage); the built-in models pad nothing, and any
 * smaller mismatch is caught by the shapes, before any data is read. */
static lm_status check_file_holds_model(const lm_plugin *arch, void *model, const lm_safetensors *st,
                                        const char *path) {
    lm_arch_info info;
    memset(&info, 0, sizeof info);
    LM_TRY(arch->vtable.architecture.info(model, &info));
    const int64_t held = file_elements(st);
    if (info.n_params > held + held / 4 + ((int64_t)1 << 16))
        return lm_error_set(LM_ERR_FORMAT,
                            "%s holds %lld values but the model described by config.json needs %lld parameters "
                            "(vocab_size %d): config.json does not match these weights (use the config.json saved "
                            "with them)",
                            path, (long long)held, (long long)info.n_params, info.vocab_size);
    return LM_OK;
}

lm_status lm_model_load_weights(const lm_plugin *arch, void *model, const char *path) {
    lm_safetensors *st = NULL;
    float *stage = NULL;
    lm_param_set set;
    lm_status status = lm_safetensors_open(path, &st);
    if (status != LM_OK) return status;
    LM_CHECK(check_file_holds_model(arch, model, st, path));
    LM_CHECK(arch->vtable.architecture.parameters(model, &set));
    /* Every tensor is required, and every shape is checked (header only)
     * before any data is read: a file that lacks one, or has one of
     * another shape, fails before anything reaches the model. */
    size_t largest = 1;
    for (size_t i = 0; i < set.n_descs; i++) {
        const lm_param_desc *d = &set.descs[i];
        lm_tensor t;
        int same = lm_safetensors_find(st, d->name, &t) == LM_OK && t.ndim == d->ndim;
        for (int k = 0; same && k < d->ndim; k++) same = t.shape[k] == d->shape[k];
        /* read_f32 words a missing tensor or a shape mismatch (both shapes), reading nothing */
        if (!same) LM_CHECK(lm_safetensors_read_f32(st, d->name, d->shape, d->ndim, NULL));
        const size_t n = (size_t)lm_tensor_numel(&t);
        if (n > largest) largest = n;
    }
    /* One tensor at a time through a staging buffer the size of the largest
     * (not a host copy of the whole model): each is checked for NaN and
     * infinities once, here, and never per step. */
    LM_CHECK(lm_alloc((void **)&stage, largest * sizeof(float), "a staging buffer for loading weights"));
    for (size_t i = 0; i < set.n_descs; i++) {
        const lm_param_desc *d = &set.descs[i];
        LM_CHECK(lm_safetensors_read_f32(st, d->name, d->shape, d->ndim, stage));
        size_t n = 1;
        for (int k = 0; k < d->ndim; k++) n *= (size_t)d->shape[k];
        const size_t bad = lm_first_non_finite(stage, n);
        if (bad < n) {
            status = lm_error_set(LM_ERR_FORMAT,
                                  "%s: tensor '%s' holds a non-finite value (%s at index %zu): the weights are "
                                  "damaged (a run that diverged, or a corrupt file); load an earlier checkpoint",
                                  path, d->name, lm_non_finite_name(stage[bad]), bad);
            goto fail;
        }
        LM_CHECK(set.device->ops->upload(set.device, set.params + d->offset, stage, n * sizeof(float)));
        LM_CHECK(set.device->ops->sync(set.device)); /* the staging buffer is reused */
    }
    if (arch->vtable.architecture.params_written) LM_CHECK(arch->vtable.architecture.params_written(model));
fail:
    if (status != LM_OK && !strstr(lm_error_message(), path)) lm_error_prefix("loading weights from '%s': ", path);
    lm_free(stage);
    lm_safetensors_close(st);
    return status;
}

lm_status lm_vocab_check(const lm_vocab_info *vocab, int32_t model_vocab, const char *fix) {
    if (vocab->vocab_size > model_vocab)
        return lm_error_set(LM_ERR_INVALID, "the tokenizer has %d tokens but the model's vocab_size is %d: %s",
                            vocab->vocab_size, model_vocab, fix);
    const struct {
        const char *name;
        int32_t id;
    } named[] = {{"unknown", vocab->unk_id}, {"padding", vocab->pad_id}, {"beginning", vocab->bos_id},
                 {"end", vocab->eos_id},     {"[CLS]", vocab->cls_id},   {"[SEP]", vocab->sep_id},
                 {"[MASK]", vocab->mask_id}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (named[i].id >= model_vocab)
            return lm_error_set(LM_ERR_INVALID, "the tokenizer's %s token has id %d, outside the model's vocabulary "
                                                "of %d ids (the tokenizer has %d tokens): %s",
                                named[i].name, named[i].id, model_vocab, vocab->vocab_size, fix);
    for (size_t i = 0; vocab->special_ids && i < vocab->n_special; i++)
        if (vocab->special_ids[i] >= model_vocab)
            return lm_error_set(LM_ERR_INVALID, "the tokenizer's special token id %d is outside the model's "
                                                "vocabulary of %d ids (the tokenizer has %d tokens): %s",
                                vocab->special_ids[i], model_vocab, vocab->vocab_size, fix);
    return LM_OK;
}

lm_status lm_model_type_of(const char *dir, char *out, size_t cap) {
    char path[PATH_MAX];
    LM_TRY(join_path(path, sizeof path, dir, "config.json"));
    lm_json *root;
    LM_TRY(lm_json_parse_file(path, &root));
    const lm_json *type = lm_json_get(root, "model_type");
    lm_status status = LM_OK;
    if (!type || lm_json_type_of(type) != LM_JSON_STRING) {
        status = lm_error_set(LM_ERR_FORMAT, "%s has no \"model_type\" string: is it a Hugging Face config.json?", path);
    } else {
        size_t len;
        const char *s = lm_json_string(type, &len);
        snprintf(out, cap, "%.*s", (int)len, s);
    }
    lm_json_free(root);
    return status;
}

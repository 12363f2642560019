/* model.safetensors + config.json in the Hugging Face layout, so that
 * `transformers` loads what lmcore saves, and the other way round. */
#include <limits.h>
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

/* A host copy of the model's parameters (one download). */
static lm_status read_all_params(const lm_plugin *arch, void *model, lm_param_set *set, float **out) {
    *out = NULL;
    LM_TRY(arch->vtable.architecture.parameters(model, set));
    LM_TRY(lm_alloc((void **)out, set->n_params * sizeof(float), "a host copy of the parameters"));
    lm_status status = set->device->ops->download(set->device, *out, set->params, set->n_params * sizeof(float));
    if (status != LM_OK) {
        lm_free(*out);
        *out = NULL;
    }
    return status;
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

lm_status lm_model_load_weights(const lm_plugin *arch, void *model, const char *path) {
    lm_safetensors *st = NULL;
    float *params = NULL;
    lm_param_set set;
    lm_status status = lm_safetensors_open(path, &st);
    if (status != LM_OK) return status;
    /* Every tensor is required: a file that lacks one, or has one of
     * another shape, fails before anything reaches the model. */
    LM_CHECK(read_all_params(arch, model, &set, &params));
    for (size_t i = 0; i < set.n_descs; i++) {
        const lm_param_desc *d = &set.descs[i];
        LM_CHECK(lm_safetensors_read_f32(st, d->name, d->shape, d->ndim, params + d->offset));
    }
    LM_CHECK(set.device->ops->upload(set.device, set.params, params, set.n_params * sizeof(float)));
    LM_CHECK(set.device->ops->sync(set.device));
    if (arch->vtable.architecture.params_written) LM_CHECK(arch->vtable.architecture.params_written(model));
fail:
    if (status != LM_OK && !strstr(lm_error_message(), path)) lm_error_prefix("loading weights from '%s': ", path);
    lm_free(params);
    lm_safetensors_close(st);
    return status;
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

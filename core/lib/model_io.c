/* model.safetensors + config.json in the Hugging Face layout, so that
 * `transformers` loads what lmcore saves, and the other way round. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_io.h"

static lm_status join_path(char *out, size_t cap, const char *dir, const char *file) {
    if ((size_t)snprintf(out, cap, "%s/%s", dir, file) >= cap)
        return lm_error_set(LM_ERR_INVALID, "path too long: '%s/%s'", dir, file);
    return LM_OK;
}

static lm_status read_all_params(const lm_plugin *arch, void *model, float **out, int64_t *n_params) {
    lm_arch_info info;
    memset(&info, 0, sizeof info);
    LM_TRY(arch->vtable.architecture.info(model, &info));
    *n_params = info.n_params;
    LM_TRY(lm_alloc((void **)out, (size_t)info.n_params * sizeof(float), "a host copy of the parameters"));
    lm_status status = arch->vtable.architecture.read_buffer(model, LM_BUFFER_PARAMS, *out);
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
    const lm_param_desc *descs;
    size_t n_descs;
    LM_TRY(arch->vtable.architecture.params(model, &descs, &n_descs));
    float *params = NULL;
    int64_t n_params = 0;
    LM_TRY(read_all_params(arch, model, &params, &n_params));

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
        entries[i].tensor.data = params + descs[i].offset;
    }
    static const char *const metadata[] = {"format", "pt", NULL};
    LM_CHECK(join_path(path, sizeof path, dir, "model.safetensors"));
    LM_CHECK(lm_safetensors_write(path, entries, n_descs, metadata));
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
    lm_free(params);
    return status;
}

lm_status lm_model_load_weights(const lm_plugin *arch, void *model, const char *path) {
    const lm_param_desc *descs;
    size_t n_descs;
    LM_TRY(arch->vtable.architecture.params(model, &descs, &n_descs));
    lm_safetensors *st = NULL;
    float *params = NULL;
    int64_t n_params = 0;
    lm_status status = lm_safetensors_open(path, &st);
    if (status != LM_OK) return status;
    LM_CHECK(read_all_params(arch, model, &params, &n_params));
    for (size_t i = 0; i < n_descs; i++) {
        status = lm_safetensors_read_f32(st, descs[i].name, descs[i].shape, descs[i].ndim, params + descs[i].offset);
        if (status != LM_OK) goto fail;
    }
    LM_CHECK(arch->vtable.architecture.write_buffer(model, LM_BUFFER_PARAMS, params));
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

/* Helpers shared by the BERT and MLM suites. */
#include "bert_test_util.h"

#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/plugin.h"
#include "lmcore/tensor.h"
#include "model_steps.h"

const void *bert_test_vtable(const char *file, int kind, const char *expected_name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lm_%s.so", LM_TEST_PLUGIN_DIR, file);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* kept open: vtables live in it */
    ck_assert_msg(handle != NULL, "dlopen %s: %s", path, dlerror());
    lm_plugin_describe_fn describe = (lm_plugin_describe_fn)dlsym(handle, LM_PLUGIN_DESCRIBE_SYMBOL);
    ck_assert_msg(describe != NULL, "%s exports no %s", path, LM_PLUGIN_DESCRIBE_SYMBOL);
    const lm_plugin_descriptor *d = describe();
    ck_assert_int_eq(d->abi_major, LM_ABI_MAJOR);
    ck_assert_int_eq(d->kind, kind);
    ck_assert_str_eq(d->name, expected_name);
    return d->vtable;
}

const lm_architecture_vtable *bert_test_arch(void) {
    return bert_test_vtable("arch_bert", LM_KIND_ARCHITECTURE, "bert");
}

const lm_objective_vtable *bert_test_mlm(void) {
    return bert_test_vtable("objective_mlm", LM_KIND_OBJECTIVE, "mlm");
}

static lm_config *make_config(const char *owner, const char *const *settings) {
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, owner), LM_OK);
    for (size_t i = 0; settings && settings[i]; i++) ck_assert_int_eq(lm_config_set_parsed(cfg, settings[i]), LM_OK);
    return cfg;
}

lm_status bert_test_create(void **model, const char *const *settings) {
    lm_config *cfg = make_config("architecture 'bert'", settings);
    *model = NULL;
    lm_status status = bert_test_arch()->create(model, cfg);
    if (status == LM_OK) {
        status = lm_config_validate(cfg);
        if (status != LM_OK) {
            bert_test_arch()->destroy(*model);
            *model = NULL;
        }
    }
    lm_config_destroy(cfg);
    return status;
}

void *bert_test_create_ok(const char *const *settings) {
    void *model = NULL;
    lm_status status = bert_test_create(&model, settings);
    ck_assert_msg(status == LM_OK, "create bert: %s", lm_error_message());
    return model;
}

lm_status bert_test_create_mlm(void **objective, const char *const *settings) {
    lm_config *cfg = make_config("objective 'mlm'", settings);
    *objective = NULL;
    lm_status status = bert_test_mlm()->create(objective, cfg);
    if (status == LM_OK) {
        status = lm_config_validate(cfg);
        if (status != LM_OK) {
            bert_test_mlm()->destroy(*objective);
            *objective = NULL;
        }
    }
    lm_config_destroy(cfg);
    return status;
}

int64_t bert_test_n_params(void *model) {
    lm_arch_info info;
    ck_assert_int_eq(bert_test_arch()->info(model, &info), LM_OK);
    return info.n_params;
}

const lm_param_desc *bert_test_find_param(void *model, const char *name) {
    return lm_test_find_desc(bert_test_arch(), model, name);
}

float *bert_test_read_named(void *model, const char *path) {
    const lm_param_set set = lm_test_params(bert_test_arch(), model);
    const lm_param_desc *descs = set.descs;
    const size_t count = set.n_descs;
    float *host = NULL;
    ck_assert_int_eq(lm_alloc((void **)&host, set.n_params * sizeof(float), "test"), LM_OK);
    memset(host, 0, set.n_params * sizeof(float)); /* padding rows beyond a tensor's shape stay zero */
    lm_safetensors *st = NULL;
    ck_assert_msg(lm_safetensors_open(path, &st) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(lm_safetensors_count(st), count); /* nothing in the file is left unused */
    for (size_t i = 0; i < count; i++) {
        lm_status status = lm_safetensors_read_f32(st, descs[i].name, descs[i].shape, descs[i].ndim,
                                                   host + descs[i].offset);
        ck_assert_msg(status == LM_OK, "%s", lm_error_message());
    }
    lm_safetensors_close(st);
    return host;
}

void bert_test_load_weights(void *model, const char *path) {
    float *host = bert_test_read_named(model, path);
    lm_test_write_params(bert_test_arch(), model, host);
    lm_free(host);
}

void bert_test_compare(const float *a, const float *ref, size_t n, double *max_abs_err, double *max_abs_ref) {
    double err = 0.0, mag = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (!(d <= err)) err = d; /* NaN wins */
        if (fabs((double)ref[i]) > mag) mag = fabs((double)ref[i]);
    }
    *max_abs_err = err;
    *max_abs_ref = mag;
}

static int32_t *read_ids(const lm_safetensors *st, const char *name, int32_t *B, int32_t *T) {
    lm_tensor t;
    ck_assert_int_eq(lm_safetensors_find(st, name, &t), LM_OK);
    ck_assert_int_eq(t.dtype, LM_I32);
    ck_assert_int_eq(t.ndim, 2);
    *B = (int32_t)t.shape[0];
    *T = (int32_t)t.shape[1];
    size_t n = (size_t)lm_tensor_numel(&t);
    int32_t *out = malloc(n * sizeof *out);
    ck_assert_ptr_nonnull(out);
    memcpy(out, t.data, n * sizeof *out);
    return out;
}

void bert_test_load_batch(bert_fixture_batch *fb) {
    memset(fb, 0, sizeof *fb);
    lm_safetensors *st = NULL;
    ck_assert_msg(lm_safetensors_open(BERT_REF_PATH, &st) == LM_OK, "%s", lm_error_message());
    int32_t B, T, B2, T2;
    fb->input_ids = read_ids(st, "input_ids", &B, &T);
    fb->attention_mask = read_ids(st, "attention_mask", &B2, &T2);
    ck_assert(B2 == B && T2 == T);
    fb->token_type_ids = read_ids(st, "token_type_ids", &B2, &T2);
    ck_assert(B2 == B && T2 == T);
    fb->labels = read_ids(st, "labels", &B2, &T2);
    ck_assert(B2 == B && T2 == T);
    lm_safetensors_close(st);
    for (size_t i = 0; i < (size_t)B * (size_t)T; i++) fb->n_targets += fb->labels[i] != LM_IGNORE_INDEX;
    fb->batch.B = B;
    fb->batch.T = T;
    fb->batch.input_ids = fb->input_ids;
    fb->batch.attention_mask = fb->attention_mask;
    fb->batch.token_type_ids = fb->token_type_ids;
    fb->batch.labels = fb->labels;
    fb->batch.n_targets = fb->n_targets;
}

void bert_test_free_batch(bert_fixture_batch *fb) {
    free(fb->input_ids);
    free(fb->attention_mask);
    free(fb->token_type_ids);
    free(fb->labels);
    memset(fb, 0, sizeof *fb);
}

float bert_test_ref_scalar(const char *name, size_t index) {
    lm_safetensors *st = NULL;
    ck_assert_msg(lm_safetensors_open(BERT_REF_PATH, &st) == LM_OK, "%s", lm_error_message());
    lm_tensor t;
    ck_assert_int_eq(lm_safetensors_find(st, name, &t), LM_OK);
    ck_assert_int_eq(t.dtype, LM_F32);
    ck_assert((int64_t)index < lm_tensor_numel(&t));
    float v;
    memcpy(&v, (const char *)t.data + index * sizeof(float), sizeof v);
    lm_safetensors_close(st);
    return v;
}

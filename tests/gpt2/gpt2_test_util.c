/* Helpers shared by the GPT-2 suites. */
#include "gpt2_test_util.h"

#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lmcore/plugin.h"
#include "lmcore/tensor.h"
#include "model_steps.h"

const void *gpt2_test_vtable(const char *file, int kind) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lm_%s.so", LM_TEST_PLUGIN_DIR, file);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* kept open: vtables live in it */
    ck_assert_msg(handle != NULL, "dlopen %s: %s", path, dlerror());
    lm_plugin_describe_fn describe = (lm_plugin_describe_fn)dlsym(handle, LM_PLUGIN_DESCRIBE_SYMBOL);
    ck_assert_msg(describe != NULL, "%s exports no %s", path, LM_PLUGIN_DESCRIBE_SYMBOL);
    const lm_plugin_descriptor *d = describe();
    ck_assert_int_eq(d->abi_major, LM_ABI_MAJOR);
    ck_assert_int_eq(d->kind, kind);
    return d->vtable;
}

const lm_architecture_vtable *gpt2_test_arch(void) {
    return gpt2_test_vtable("arch_gpt2", LM_KIND_ARCHITECTURE);
}

const lm_objective_vtable *gpt2_test_clm(void) { return gpt2_test_vtable("objective_clm", LM_KIND_OBJECTIVE); }

lm_status gpt2_test_create(void **model, const char *const *settings) {
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, "architecture 'gpt2'"), LM_OK);
    for (size_t i = 0; settings && settings[i]; i++) ck_assert_int_eq(lm_config_set_parsed(cfg, settings[i]), LM_OK);
    *model = NULL;
    lm_status status = gpt2_test_arch()->create(model, cfg);
    /* What the core does after create(): unread keys and type errors fail. */
    if (status == LM_OK) {
        status = lm_config_validate(cfg);
        if (status != LM_OK) {
            gpt2_test_arch()->destroy(*model);
            *model = NULL;
        }
    }
    lm_config_destroy(cfg);
    return status;
}

void *gpt2_test_create_ok(const char *const *settings) {
    void *model = NULL;
    lm_status status = gpt2_test_create(&model, settings);
    ck_assert_msg(status == LM_OK, "create gpt2: %s", lm_error_message());
    return model;
}

int64_t gpt2_test_n_params(void *model) {
    lm_arch_info info;
    ck_assert_int_eq(gpt2_test_arch()->info(model, &info), LM_OK);
    return info.n_params;
}

float *gpt2_test_read_named(void *model, const char *path) {
    const lm_param_set set = lm_test_params(gpt2_test_arch(), model);
    float *host = NULL;
    ck_assert_int_eq(lm_alloc((void **)&host, set.n_params * sizeof(float), "test"), LM_OK);
    memset(host, 0, set.n_params * sizeof(float)); /* padding rows beyond a tensor's shape stay zero */
    lm_safetensors *st = NULL;
    ck_assert_msg(lm_safetensors_open(path, &st) == LM_OK, "%s", lm_error_message());
    for (size_t i = 0; i < set.n_descs; i++) {
        const lm_param_desc *d = &set.descs[i];
        lm_status status = lm_safetensors_read_f32(st, d->name, d->shape, d->ndim, host + d->offset);
        ck_assert_msg(status == LM_OK, "%s", lm_error_message());
    }
    lm_safetensors_close(st);
    return host;
}

void gpt2_test_load_weights(void *model, const char *path) {
    float *host = gpt2_test_read_named(model, path);
    lm_test_write_params(gpt2_test_arch(), model, host);
    lm_free(host);
}

void gpt2_test_compare(const float *a, const float *ref, size_t n, double *max_abs_err, double *max_abs_ref) {
    double err = 0.0, mag = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (!(d <= err)) err = d; /* NaN wins */
        if (fabs((double)ref[i]) > mag) mag = fabs((double)ref[i]);
    }
    *max_abs_err = err;
    *max_abs_ref = mag;
}

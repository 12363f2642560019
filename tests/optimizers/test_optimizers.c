/* The optimizer plugins (adamw, sgd, lion) through their vtables, on a
 * model's device as the trainer uses them.
 *
 * Parity: five updates of a small parameter set (fixtures/
 * optimizer_fixture.safetensors, from gen_optimizer_fixture.py) by
 * torch.optim.AdamW, torch.optim.SGD (plain; momentum with dampening;
 * Nesterov with weight decay) and lion_pytorch.Lion, with two parameter
 * groups, a learning rate that changes every step and clipped gradients on
 * two steps.  Parameters and every state buffer are compared after each
 * update:
 *   adamw  within 2 ulp (torch's operations in torch's order, scalars in
 *          double from float32-exact settings: the same numbers as torch)
 *   sgd    within 4 ulp, or 1e-7 absolute where an update cancels the
 *          parameter to near zero (torch's scalar tail loop may round a
 *          fused multiply-add that its vector loop fuses, and vice versa)
 *   lion   the same as sgd
 * The measured worst differences are printed.
 *
 * Behaviour: AdamW bit for bit against lmcore 1.x's kernel
 * (adamw_reference.c) on random data cut into several tasks; results
 * independent of the thread count (and, in the CUDA build of this suite,
 * GPU equal to CPU bit for bit); a bad step changes nothing; state names
 * and sizes; settings_json parses and round-trips; bad settings are refused
 * naming the key; the BF16 params_copy holds the params rounded to nearest
 * even; a step reads nothing back and never waits; unsupported gradient or
 * copy dtypes and (without CUDA) GPU devices are refused at bind.
 *
 * Built twice: test_optimizers (CPU device) and, with CUDA,
 * test_optimizers_cuda (label gpu: the CUDA device, no fork, exits 77
 * without a GPU unless LMCORE_REQUIRE_GPU=1). */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adamw_reference.h"
#include "backend.h"
#include "cuda_probe.h"
#include "lmcore/lmcore.h"
#include "plugin_load.h"
#include "test_main.h"

#ifndef OPT_TEST_DEVICE
#define OPT_TEST_DEVICE "cpu" /* test_optimizers_cuda: "cuda" (CMakeLists.txt) */
#endif

#define FIXTURE LM_TEST_SOURCE_DIR "/tests/optimizers/fixtures/optimizer_fixture.safetensors"

/* ---- plugins ---------------------------------------------------------------------------------- */

static const lm_optimizer_vtable *optimizer_vtable(const char *name) {
    char file[128];
    snprintf(file, sizeof file, "optimizer_%s", name);
    const lm_plugin_descriptor *d = lm_test_plugin(file, LM_KIND_OPTIMIZER);
    ck_assert_str_eq(d->name, name);
    ck_assert_uint_eq(d->vtable_size, sizeof(lm_optimizer_vtable));
    return d->vtable;
}

/* Creates the optimizer from space-separated key=value settings as the core
 * does (create, then the check of unread keys); returns the status of the
 * first that failed, with *self NULL. */
static lm_status try_create(const char *name, const char *settings, void **self) {
    const lm_optimizer_vtable *vt = optimizer_vtable(name);
    char owner[64], text[512];
    snprintf(owner, sizeof owner, "optimizer '%s'", name);
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, owner), LM_OK);
    snprintf(text, sizeof text, "%s", settings ? settings : "");
    for (char *save = NULL, *kv = strtok_r(text, " ", &save); kv; kv = strtok_r(NULL, " ", &save))
        ck_assert_int_eq(lm_config_set_parsed(cfg, kv), LM_OK);
    *self = NULL;
    lm_status status = vt->create(self, cfg);
    if (status == LM_OK) status = lm_config_validate(cfg);
    if (status != LM_OK && *self) {
        vt->destroy(*self);
        *self = NULL;
    }
    lm_config_destroy(cfg);
    return status;
}

static void *create_optimizer(const char *name, const char *settings) {
    void *self = NULL;
    lm_status status = try_create(name, settings, &self);
    ck_assert_msg(status == LM_OK, "optimizer '%s' with '%s': %s", name, settings ? settings : "",
                  lm_error_message());
    return self;
}

/* ---- a model's device and parameters -------------------------------------------------------- */

static lm_backend *make_backend(int threads) {
    lm_backend *be = NULL;
#if defined(OPT_TEST_CUDA)
    (void)threads;
    ck_assert_msg(lm_backend_cuda_create(&be, 0, LM_PRECISION_FP32) == LM_OK, "%s", lm_error_message());
#else
    ck_assert_msg(lm_backend_cpu_create(&be, threads) == LM_OK, "%s", lm_error_message());
#endif
    return be;
}

/* What an optimizer is bound to: buffers on the device, descriptors, and
 * the step state in device memory. */
typedef struct rig {
    lm_backend *be;
    lm_device *dev;
    const lm_optimizer_vtable *vt;
    void *opt;
    lm_param_desc *descs;
    lm_param_set set;
    lm_step_state *state; /* device memory */
} rig;

static void *dev_alloc(rig *r, size_t bytes, const char *what) {
    void *p = NULL;
    ck_assert_msg(r->dev->ops->alloc(r->dev, &p, bytes ? bytes : 1, what) == LM_OK, "%s", lm_error_message());
    return p;
}

static void upload(rig *r, void *dst, const void *src, size_t bytes) {
    ck_assert_msg(r->dev->ops->upload(r->dev, dst, src, bytes) == LM_OK, "%s", lm_error_message());
}

static void download(rig *r, void *dst, const void *src, size_t bytes) {
    ck_assert_msg(r->dev->ops->download(r->dev, dst, src, bytes) == LM_OK, "%s", lm_error_message());
}

/* A rig for n parameters carved into the given tensors (copied), with a
 * BF16 params_copy when with_copy; params and grads start at zero. */
static void rig_init(rig *r, lm_backend *be, size_t n, const lm_param_desc *descs, size_t n_descs, int with_copy) {
    memset(r, 0, sizeof *r);
    r->be = be;
    r->dev = &be->device;
    r->descs = calloc(n_descs ? n_descs : 1, sizeof *r->descs);
    ck_assert_ptr_nonnull(r->descs);
    if (n_descs) memcpy(r->descs, descs, n_descs * sizeof *descs);
    r->set.struct_size = sizeof r->set;
    r->set.grad_dtype = LM_F32;
    r->set.device = r->dev;
    r->set.descs = r->descs;
    r->set.n_descs = n_descs;
    r->set.n_params = n;
    r->set.params = dev_alloc(r, n * sizeof(float), "test params");
    r->set.grads = dev_alloc(r, n * sizeof(float), "test grads");
    if (with_copy) {
        r->set.params_copy = dev_alloc(r, n * sizeof(uint16_t), "test params copy");
        r->set.copy_dtype = LM_BF16;
    }
    r->state = dev_alloc(r, sizeof *r->state, "test step state");
}

/* Two tensors: [0, n_decay) decayed, the rest not (GPT-2's layout). */
static void rig_init_two(rig *r, lm_backend *be, size_t n, size_t n_decay, int with_copy) {
    lm_param_desc descs[2] = {
        {.name = "decayed", .ndim = 1, .weight_decay = 1, .shape = {(int64_t)n_decay}, .offset = 0,
         .storage = n_decay},
        {.name = "not_decayed", .ndim = 1, .weight_decay = 0, .shape = {(int64_t)(n - n_decay)}, .offset = n_decay,
         .storage = n - n_decay},
    };
    rig_init(r, be, n, descs, 2, with_copy);
}

static void rig_bind(rig *r, const char *name, const char *settings) {
    r->vt = optimizer_vtable(name);
    r->opt = create_optimizer(name, settings);
    ck_assert_msg(r->vt->bind(r->opt, &r->set) == LM_OK, "bind: %s", lm_error_message());
}

static void rig_set_state(rig *r, double lr, int64_t step, float clip_scale, int64_t bad_step) {
    lm_step_state host;
    memset(&host, 0, sizeof host);
    host.lr = lr;
    host.step = step;
    host.clip_scale = clip_scale;
    host.bad_step = bad_step;
    upload(r, r->state, &host, sizeof host);
}

static void rig_step(rig *r) {
    ck_assert_msg(r->vt->step(r->opt, r->state) == LM_OK, "step: %s", lm_error_message());
    ck_assert_msg(r->dev->ops->sync(r->dev) == LM_OK, "after step: %s", lm_error_message());
}

static void rig_free(rig *r) {
    if (r->opt) r->vt->destroy(r->opt);
    r->dev->ops->free(r->dev, r->set.params);
    r->dev->ops->free(r->dev, r->set.grads);
    r->dev->ops->free(r->dev, r->set.params_copy);
    r->dev->ops->free(r->dev, r->state);
    free(r->descs);
    memset(r, 0, sizeof *r);
}

/* The optimizer's state buffer `index`, downloaded. */
static float *rig_state(rig *r, size_t index, const char **name) {
    lm_optimizer_state s;
    ck_assert_msg(r->vt->state_at(r->opt, index, &s) == LM_OK, "%s", lm_error_message());
    ck_assert_uint_eq(s.count, r->set.n_params);
    float *host = malloc(s.count * sizeof(float) + 1);
    ck_assert_ptr_nonnull(host);
    download(r, host, s.data, s.count * sizeof(float));
    if (name) *name = s.name;
    return host;
}

static float *rig_params(rig *r) {
    float *host = malloc(r->set.n_params * sizeof(float) + 1);
    ck_assert_ptr_nonnull(host);
    download(r, host, r->set.params, r->set.n_params * sizeof(float));
    return host;
}

/* ---- data and comparisons --------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Normal(0, scale) numbers (Box-Muller), the same for the same seed. */
static float *random_normal(size_t n, float scale, uint64_t seed) {
    float *x = malloc(n * sizeof(float) + 1);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++) {
        double u1 = ((double)(splitmix64(&seed) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(splitmix64(&seed) >> 11) / 9007199254740992.0;
        x[i] = (float)(scale * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
    return x;
}

/* Distance in representable floats (0: equal; sign changes count through zero). */
static int64_t ulp_distance(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    int64_t oa = ia < 0 ? (int64_t)INT32_MIN - ia : ia, ob = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return oa > ob ? oa - ob : ob - oa;
}

typedef struct tolerance {
    int64_t ulp;    /* ... within this many ulp */
    double abs_tol; /* ... or this close in absolute terms */
} tolerance;

typedef struct worst {
    int64_t ulp;
    double abs_err;
} worst;

static void compare(const char *what, int step, const float *got, const float *want, size_t n, tolerance tol,
                    worst *w) {
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(got[i]), "%s after update %d: element %zu is %g", what, step + 1, i, got[i]);
        const int64_t ulp = ulp_distance(got[i], want[i]);
        const double err = fabs((double)got[i] - (double)want[i]);
        if (ulp > w->ulp) w->ulp = ulp;
        if (err > w->abs_err) w->abs_err = err;
        ck_assert_msg(ulp <= tol.ulp || err <= tol.abs_tol,
                      "%s after update %d: element %zu is %.9g, torch has %.9g (%" PRId64 " ulp, %.3g apart; "
                      "tolerance %" PRId64 " ulp or %.3g)",
                      what, step + 1, i, got[i], want[i], ulp, err, tol.ulp, tol.abs_tol);
    }
}

static void assert_bitwise(const char *what, const void *got, const void *want, size_t bytes) {
    if (memcmp(got, want, bytes) == 0) return;
    const unsigned char *g = got, *w = want;
    size_t i = 0;
    while (g[i] == w[i]) i++;
    ck_abort_msg("%s: differs from byte %zu (float %zu) of %zu", what, i, i / 4, bytes);
}

/* bfloat16 of x, rounded to nearest even, written apart from the plugins'
 * formula: keep the top half, then round up when the dropped half is more
 * than half an ulp, or exactly half and the kept half is odd; NaN -> 0x7FC0
 * (torch's c10::BFloat16). */
static uint16_t bf16_expected(float x) {
    if (isnan(x)) return 0x7fc0;
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t upper = bits >> 16, lower = bits & 0xffffu;
    if (lower > 0x8000u || (lower == 0x8000u && (upper & 1u))) upper++;
    return (uint16_t)upper;
}

/* ---- the PyTorch fixture ---------------------------------------------------------------------- */

typedef struct fixture {
    lm_safetensors *st;
    size_t n, steps, n_tensors;
    lm_param_desc descs[8];
    char names[8][32];
    double lrs[16];
    float clip_scales[16];
} fixture;

static const void *fx_data(const fixture *f, const char *name, lm_dtype dtype, size_t count) {
    lm_tensor t;
    ck_assert_msg(lm_safetensors_find(f->st, name, &t) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(t.dtype == dtype && (size_t)lm_tensor_numel(&t) == count, "fixture tensor %s: %s of %lld, want %s of %zu",
                  name, lm_dtype_name(t.dtype), (long long)lm_tensor_numel(&t), lm_dtype_name(dtype), count);
    return t.data;
}

static const float *fx_floats(const fixture *f, const char *name, size_t count) {
    return fx_data(f, name, LM_F32, count);
}

static void fixture_open(fixture *f) {
    memset(f, 0, sizeof *f);
    ck_assert_msg(lm_safetensors_open(FIXTURE, &f->st) == LM_OK, "%s", lm_error_message());
    lm_tensor t;
    ck_assert_int_eq(lm_safetensors_find(f->st, "grads", &t), LM_OK);
    f->steps = (size_t)t.shape[0];
    f->n = (size_t)t.shape[1];
    ck_assert_int_eq(lm_safetensors_find(f->st, "layout.offset", &t), LM_OK);
    f->n_tensors = (size_t)t.shape[0];
    ck_assert(f->n_tensors <= 8 && f->steps <= 16);
    int64_t offsets[8], sizes[8];
    int32_t decay[8];
    /* memcpy: the file's data need not be aligned for 8-byte loads */
    memcpy(offsets, fx_data(f, "layout.offset", LM_I64, f->n_tensors), f->n_tensors * sizeof *offsets);
    memcpy(sizes, fx_data(f, "layout.size", LM_I64, f->n_tensors), f->n_tensors * sizeof *sizes);
    memcpy(decay, fx_data(f, "layout.decay", LM_I32, f->n_tensors), f->n_tensors * sizeof *decay);
    memcpy(f->lrs, fx_data(f, "lrs", LM_F64, f->steps), f->steps * sizeof *f->lrs);
    memcpy(f->clip_scales, fx_floats(f, "clip_scales", f->steps), f->steps * sizeof *f->clip_scales);
    char names[256];
    snprintf(names, sizeof names, "%s", lm_safetensors_metadata(f->st, "layout.names"));
    char *save = NULL, *name = strtok_r(names, " ", &save);
    for (size_t i = 0; i < f->n_tensors; i++, name = strtok_r(NULL, " ", &save)) {
        ck_assert_ptr_nonnull(name);
        snprintf(f->names[i], sizeof f->names[i], "%s", name);
        f->descs[i] = (lm_param_desc){.name = f->names[i], .ndim = 1, .weight_decay = decay[i],
                                      .shape = {sizes[i]}, .offset = (size_t)offsets[i], .storage = (size_t)sizes[i]};
    }
}

/* The `index`-th word of a space-separated metadata value. */
static void metadata_word(const fixture *f, const char *key, size_t index, char *out, size_t cap) {
    const char *value = lm_safetensors_metadata(f->st, key);
    ck_assert_msg(value != NULL, "the fixture has no metadata '%s'", key);
    char text[512];
    snprintf(text, sizeof text, "%s", value);
    char *save = NULL, *word = strtok_r(text, " ", &save);
    for (size_t i = 0; i < index && word; i++) word = strtok_r(NULL, " ", &save);
    ck_assert_msg(word != NULL, "metadata '%s' has no word %zu", key, index);
    snprintf(out, cap, "%s", word);
}

/* Tolerances against torch, by optimizer (see the comment at the top). */
static tolerance torch_tolerance(const char *optimizer) {
    if (strcmp(optimizer, "adamw") == 0) return (tolerance){2, 0.0};
    return (tolerance){4, 1e-7};
}

/* Runs fixture case `index` through its plugin and compares every update. */
START_TEST(matches_torch) {
    fixture f;
    fixture_open(&f);
    char case_name[64], key[96], optimizer[32], settings[256], state_names[128];
    metadata_word(&f, "cases", (size_t)_i, case_name, sizeof case_name);
    snprintf(key, sizeof key, "%s.optimizer", case_name);
    metadata_word(&f, key, 0, optimizer, sizeof optimizer);
    snprintf(key, sizeof key, "%s.settings", case_name);
    snprintf(settings, sizeof settings, "%s", lm_safetensors_metadata(f.st, key));
    snprintf(key, sizeof key, "%s.state", case_name);
    snprintf(state_names, sizeof state_names, "%s", lm_safetensors_metadata(f.st, key));

    rig r;
    rig_init(&r, make_backend(2), f.n, f.descs, f.n_tensors, 0);
    upload(&r, r.set.params, fx_floats(&f, "init", f.n), f.n * sizeof(float));
    rig_bind(&r, optimizer, settings);
    size_t n_state = 0;
    ck_assert_int_eq(r.vt->state_count(r.opt, &n_state), LM_OK);
    const tolerance tol = torch_tolerance(optimizer);
    worst w_params = {0, 0.0}, w_state = {0, 0.0};
    const float *grads = fx_floats(&f, "grads", f.steps * f.n);
    snprintf(key, sizeof key, "%s.params", case_name);
    const float *want_params = fx_floats(&f, key, f.steps * f.n);
    for (size_t s = 0; s < f.steps; s++) {
        upload(&r, r.set.grads, grads + s * f.n, f.n * sizeof(float));
        rig_set_state(&r, f.lrs[s], (int64_t)s, f.clip_scales[s], 0);
        rig_step(&r);
        float *params = rig_params(&r);
        char what[128];
        snprintf(what, sizeof what, "%s: params", case_name);
        compare(what, (int)s, params, want_params + s * f.n, f.n, tol, &w_params);
        free(params);
        for (size_t k = 0; k < n_state; k++) {
            const char *name;
            float *state = rig_state(&r, k, &name);
            char want_name[64], state_key[96];
            snprintf(state_key, sizeof state_key, "%s.state", case_name);
            metadata_word(&f, state_key, k, want_name, sizeof want_name);
            ck_assert_str_eq(name, want_name);
            char tensor[128];
            snprintf(tensor, sizeof tensor, "%s.%s", case_name, name);
            snprintf(what, sizeof what, "%s: %s", case_name, name);
            compare(what, (int)s, state, fx_floats(&f, tensor, f.steps * f.n) + s * f.n, f.n, tol, &w_state);
            free(state);
        }
    }
    /* The fixture names every state buffer torch keeps, and nothing else. */
    size_t want_states = 0;
    for (const char *c = state_names; *c; c++) want_states += (c == state_names || c[-1] == ' ') && *c != ' ';
    ck_assert_uint_eq(n_state, want_states);
    fprintf(stderr, "  %-13s vs torch over %zu updates: params worst %" PRId64 " ulp (%.3g), state worst %" PRId64
                    " ulp (%.3g); tolerance %" PRId64 " ulp or %.3g\n",
            case_name, f.steps, w_params.ulp, w_params.abs_err, w_state.ulp, w_state.abs_err, tol.ulp, tol.abs_tol);
    lm_backend *be = r.be;
    rig_free(&r);
    be->ops->destroy(be);
    lm_safetensors_close(f.st);
}
END_TEST

/* ---- behaviour ------------------------------------------------------------------------------- */

static const char *const plugin_names[] = {"adamw", "sgd", "lion"};
/* Settings that use every part of each update. */
static const char *const busy_settings[] = {"weight_decay=0.1", "momentum=0.9 weight_decay=0.01 nesterov=true",
                                            "weight_decay=0.3"};

/* lmcore 1.x's kernel over two ranges (decayed prefix, then the rest), as
 * the 1.x GPT-2 plugin called it, against the plugin: the same bits. */
START_TEST(adamw_bit_identical_to_lmcore_1) {
    enum { N = 100003, N_DECAY = 70001, STEPS = 4 };
    const float lr_values[STEPS] = {1e-3f, 6e-4f, 3.3e-4f, 1e-5f};
    const float clip_values[STEPS] = {1.0f, 0.37f, 1.0f, 0.9f};
    const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, wd = 0.01f;
    float *param = random_normal(N, 0.02f, 1), *m = calloc(N, sizeof(float)), *v = calloc(N, sizeof(float));
    ck_assert(m && v);
    rig r;
    rig_init_two(&r, make_backend(3), N, N_DECAY, 0);
    upload(&r, r.set.params, param, N * sizeof(float));
    rig_bind(&r, "adamw", "weight_decay=0.01 beta1=0.9 beta2=0.999 eps=1e-8");
    for (int s = 0; s < STEPS; s++) {
        float *grad = random_normal(N, s == 1 ? 3.0f : 0.5f, 100 + (uint64_t)s);
        upload(&r, r.set.grads, grad, N * sizeof(float));
        /* 1.x rounded the schedule's learning rate to float: the plugin does too. */
        rig_set_state(&r, (double)lr_values[s] + 1e-12, s, clip_values[s], 0);
        rig_step(&r);
        const float lr = (float)((double)lr_values[s] + 1e-12);
        adamw_reference(param, grad, m, v, N_DECAY, lr, beta1, beta2, eps, wd, clip_values[s], s + 1);
        adamw_reference(param + N_DECAY, grad + N_DECAY, m + N_DECAY, v + N_DECAY, N - N_DECAY, lr, beta1, beta2, eps,
                        0.0f, clip_values[s], s + 1);
        free(grad);
    }
    float *got = rig_params(&r), *got_m = rig_state(&r, 0, NULL), *got_v = rig_state(&r, 1, NULL);
    assert_bitwise("params", got, param, N * sizeof(float));
    assert_bitwise("exp_avg", got_m, m, N * sizeof(float));
    assert_bitwise("exp_avg_sq", got_v, v, N * sizeof(float));
    free(got);
    free(got_m);
    free(got_v);
    free(param);
    free(m);
    free(v);
    lm_backend *be = r.be;
    rig_free(&r);
    be->ops->destroy(be);
}
END_TEST

/* Runs `steps` updates of plugin `index` on random data (tensors of odd
 * sizes across several tasks) and returns params then every state buffer,
 * concatenated (caller frees). */
static float *run_random(lm_backend *be, int index, int steps, size_t n, size_t *n_out) {
    rig r;
    rig_init_two(&r, be, n, n / 3 + 7, 1);
    float *param = random_normal(n, 0.05f, 7);
    upload(&r, r.set.params, param, n * sizeof(float));
    free(param);
    rig_bind(&r, plugin_names[index], busy_settings[index]);
    for (int s = 0; s < steps; s++) {
        float *grad = random_normal(n, 1.0f, 200 + (uint64_t)s);
        upload(&r, r.set.grads, grad, n * sizeof(float));
        free(grad);
        rig_set_state(&r, 1e-3 / (s + 1), s, s == 1 ? 0.25f : 1.0f, 0);
        rig_step(&r);
    }
    size_t n_state = 0;
    ck_assert_int_eq(r.vt->state_count(r.opt, &n_state), LM_OK);
    float *all = malloc((1 + n_state) * n * sizeof(float) + n * sizeof(uint16_t));
    ck_assert_ptr_nonnull(all);
    download(&r, all, r.set.params, n * sizeof(float));
    for (size_t k = 0; k < n_state; k++) {
        float *state = rig_state(&r, k, NULL);
        memcpy(all + (1 + k) * n, state, n * sizeof(float));
        free(state);
    }
    download(&r, all + (1 + n_state) * n, r.set.params_copy, n * sizeof(uint16_t));
    *n_out = (1 + n_state) * n * sizeof(float) + n * sizeof(uint16_t);
    rig_free(&r);
    return all;
}

/* The same updates on one CPU thread and on this suite's device (several
 * CPU threads, or the GPU): the same bits. */
START_TEST(device_and_threads_agree) {
    const size_t n = 3 * 32768 + 1234;
    /* One after the other: the CPU thread count is process-wide (the last
     * CPU backend created sets it). */
    lm_backend *one = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&one, 1), LM_OK);
    size_t bytes_one = 0, bytes_many = 0;
    float *a = run_random(one, _i, 4, n, &bytes_one);
    one->ops->destroy(one);
    lm_backend *many = make_backend(4);
    float *b = run_random(many, _i, 4, n, &bytes_many);
    many->ops->destroy(many);
    ck_assert_uint_eq(bytes_one, bytes_many);
    char what[96];
    snprintf(what, sizeof what, "%s: params, state and params_copy", plugin_names[_i]);
    assert_bitwise(what, b, a, bytes_one);
    free(a);
    free(b);
}
END_TEST

START_TEST(bad_step_changes_nothing) {
    const size_t n = 40000;
    rig r;
    rig_init_two(&r, make_backend(2), n, 30000, 1);
    float *param = random_normal(n, 0.05f, 11), *grad = random_normal(n, 1.0f, 12);
    upload(&r, r.set.params, param, n * sizeof(float));
    upload(&r, r.set.grads, grad, n * sizeof(float));
    rig_bind(&r, plugin_names[_i], busy_settings[_i]);
    rig_set_state(&r, 1e-3, 0, 1.0f, 0);
    rig_step(&r); /* state buffers hold something */
    size_t n_state = 0;
    ck_assert_int_eq(r.vt->state_count(r.opt, &n_state), LM_OK);
    float *before = rig_params(&r), *before_state[2] = {NULL, NULL};
    uint16_t *copy_before = malloc(n * sizeof(uint16_t)), *copy_after = malloc(n * sizeof(uint16_t));
    ck_assert(copy_before && copy_after);
    download(&r, copy_before, r.set.params_copy, n * sizeof(uint16_t));
    for (size_t k = 0; k < n_state; k++) before_state[k] = rig_state(&r, k, NULL);
    /* A diverged run: a later step with other gradients and bad_step set. */
    float *other = random_normal(n, 5.0f, 13);
    upload(&r, r.set.grads, other, n * sizeof(float));
    rig_set_state(&r, 1e-2, 1, 0.5f, 1);
    rig_step(&r);
    float *after = rig_params(&r);
    assert_bitwise("params after a bad step", after, before, n * sizeof(float));
    download(&r, copy_after, r.set.params_copy, n * sizeof(uint16_t));
    assert_bitwise("params_copy after a bad step", copy_after, copy_before, n * sizeof(uint16_t));
    for (size_t k = 0; k < n_state; k++) {
        const char *name;
        float *state = rig_state(&r, k, &name);
        assert_bitwise(name, state, before_state[k], n * sizeof(float));
        free(state);
        free(before_state[k]);
    }
    free(before);
    free(after);
    free(param);
    free(grad);
    free(other);
    free(copy_before);
    free(copy_after);
    lm_backend *be = r.be;
    rig_free(&r);
    be->ops->destroy(be);
}
END_TEST

START_TEST(state_names_and_sizes) {
    static const struct {
        const char *plugin, *settings;
        size_t count;
        const char *names[2];
    } cases[] = {
        {"adamw", NULL, 2, {"exp_avg", "exp_avg_sq"}},
        {"sgd", NULL, 0, {NULL, NULL}},
        {"sgd", "momentum=0.9", 1, {"momentum_buffer", NULL}},
        {"lion", NULL, 1, {"exp_avg", NULL}},
    };
    const size_t n = 1000;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        rig r;
        rig_init_two(&r, make_backend(1), n, 600, 0);
        r.vt = optimizer_vtable(cases[c].plugin);
        r.opt = create_optimizer(cases[c].plugin, cases[c].settings);
        size_t count = 99;
        /* Before bind there is no state to describe. */
        ck_assert_int_eq(r.vt->state_count(r.opt, &count), LM_ERR_INVALID);
        ck_assert_int_eq(r.vt->bind(r.opt, &r.set), LM_OK);
        ck_assert_int_eq(r.vt->state_count(r.opt, &count), LM_OK);
        ck_assert_uint_eq(count, cases[c].count);
        for (size_t k = 0; k < count; k++) {
            lm_optimizer_state s;
            ck_assert_int_eq(r.vt->state_at(r.opt, k, &s), LM_OK);
            ck_assert_str_eq(s.name, cases[c].names[k]);
            ck_assert_ptr_nonnull(s.data);
            ck_assert_uint_eq(s.count, n);
            ck_assert_int_eq(s.per_parameter, 1);
            /* Zero-filled: a fresh start. */
            float *host = rig_state(&r, k, NULL);
            for (size_t i = 0; i < n; i++) ck_assert_msg(host[i] == 0.0f, "%s[%zu] = %g", s.name, i, host[i]);
            free(host);
        }
        lm_optimizer_state s;
        ck_assert_int_eq(r.vt->state_at(r.opt, count, &s), LM_ERR_INVALID);
        ck_assert_msg(strstr(lm_error_message(), cases[c].plugin) != NULL, "%s", lm_error_message());
        /* Binding twice is a mistake the plugin names. */
        ck_assert_int_eq(r.vt->bind(r.opt, &r.set), LM_ERR_INVALID);
        lm_backend *be = r.be;
        rig_free(&r);
        be->ops->destroy(be);
    }
}
END_TEST

static lm_json *settings_object(const char *plugin, const char *settings, lm_buffer *members) {
    const lm_optimizer_vtable *vt = optimizer_vtable(plugin);
    void *opt = create_optimizer(plugin, settings);
    ck_assert_int_eq(vt->settings_json(opt, members), LM_OK);
    vt->destroy(opt);
    lm_buffer text = {0};
    ck_assert_int_eq(lm_buffer_appendf(&text, "{%s}", members->data), LM_OK);
    lm_json *root = NULL;
    ck_assert_msg(lm_json_parse(text.data, text.len, plugin, &root) == LM_OK, "%s: %s", text.data,
                  lm_error_message());
    lm_buffer_free(&text);
    return root;
}

static double member(const lm_json *root, const char *key, size_t index) {
    const lm_json *v = lm_json_get(root, key);
    ck_assert_msg(v != NULL, "no member '%s'", key);
    if (lm_json_type_of(v) == LM_JSON_ARRAY) v = lm_json_at(v, index);
    ck_assert_int_eq(lm_json_type_of(v), LM_JSON_NUMBER);
    return lm_json_number(v);
}

START_TEST(settings_json_parses) {
    lm_buffer members = {0};
    /* AdamW's defaults, spelled as torch's state_dict spells them. */
    lm_json *root = settings_object("adamw", NULL, &members);
    ck_assert_str_eq(members.data, "\"betas\": [0.9, 0.999], \"eps\": 1e-08, \"weight_decay\": 0.01");
    lm_json_free(root);
    lm_buffer_clear(&members);
    /* Numbers round-trip. */
    root = settings_object("adamw", "beta1=0.123456789012345678 beta2=0.9995 eps=3.3e-9 weight_decay=0.1", &members);
    ck_assert(member(root, "betas", 0) == 0.123456789012345678);
    ck_assert(member(root, "betas", 1) == 0.9995);
    ck_assert(member(root, "eps", 0) == 3.3e-9);
    ck_assert(member(root, "weight_decay", 0) == 0.1);
    lm_json_free(root);
    lm_buffer_clear(&members);
    root = settings_object("sgd", "momentum=0.9 nesterov=true weight_decay=0.0001", &members);
    ck_assert(member(root, "momentum", 0) == 0.9);
    ck_assert(member(root, "dampening", 0) == 0.0);
    ck_assert(member(root, "weight_decay", 0) == 0.0001);
    ck_assert_int_eq(lm_json_type_of(lm_json_get(root, "nesterov")), LM_JSON_BOOL);
    ck_assert(lm_json_bool(lm_json_get(root, "nesterov")));
    lm_json_free(root);
    lm_buffer_clear(&members);
    root = settings_object("lion", NULL, &members);
    ck_assert(member(root, "betas", 0) == 0.9);
    ck_assert(member(root, "betas", 1) == 0.99);
    ck_assert(member(root, "weight_decay", 0) == 0.0);
    lm_json_free(root);
    /* Appended: what the buffer held stays in front. */
    lm_buffer_clear(&members);
    ck_assert_int_eq(lm_buffer_appendf(&members, "\"lr\": 1, "), LM_OK);
    lm_json_free(settings_object("lion", NULL, &members));
    ck_assert(strncmp(members.data, "\"lr\": 1, \"betas\"", 16) == 0);
    lm_buffer_free(&members);
}
END_TEST

START_TEST(bad_settings_refused) {
    static const struct {
        const char *plugin, *settings, *expect;
    } cases[] = {
        {"adamw", "beta1=1", "'beta1'"},
        {"adamw", "beta1=-0.1", "'beta1'"},
        {"adamw", "beta2=1.5", "'beta2'"},
        {"adamw", "eps=0", "'eps'"},
        {"adamw", "weight_decay=-0.01", "'weight_decay'"},
        {"adamw", "betas1=0.9", "'betas1'"}, /* a typo: the core's check of unread keys */
        {"adamw", "beta1=fast", "'beta1'"},  /* not a number */
        {"sgd", "momentum=-0.9", "'momentum'"},
        {"sgd", "dampening=1.5", "'dampening'"},
        {"sgd", "weight_decay=-1", "'weight_decay'"},
        {"sgd", "nesterov=true", "nesterov needs momentum > 0 and dampening 0"},
        {"sgd", "nesterov=true momentum=0.9 dampening=0.1", "nesterov needs momentum > 0 and dampening 0"},
        {"sgd", "maximize=true", "'maximize'"},
        {"lion", "beta1=1.01", "'beta1'"},
        {"lion", "beta2=-1", "'beta2'"},
        {"lion", "weight_decay=-0.5", "'weight_decay'"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        void *self = NULL;
        lm_status status = try_create(cases[c].plugin, cases[c].settings, &self);
        ck_assert_msg(status != LM_OK, "%s with %s was accepted", cases[c].plugin, cases[c].settings);
        ck_assert_ptr_null(self);
        ck_assert_msg(strstr(lm_error_message(), cases[c].expect) != NULL, "%s with %s: '%s' does not say %s",
                      cases[c].plugin, cases[c].settings, lm_error_message(), cases[c].expect);
        char name[64];
        snprintf(name, sizeof name, "optimizer '%s'", cases[c].plugin);
        ck_assert_msg(strstr(lm_error_message(), name) != NULL, "'%s' does not name %s", lm_error_message(), name);
    }
    /* NaN is refused too (it fails every comparison). */
    const lm_optimizer_vtable *vt = optimizer_vtable("adamw");
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, "optimizer 'adamw'"), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "eps", NAN), LM_OK);
    void *self = NULL;
    ck_assert_int_eq(vt->create(&self, cfg), LM_ERR_INVALID);
    ck_assert_ptr_null(self);
    ck_assert_msg(strstr(lm_error_message(), "'eps'") != NULL, "%s", lm_error_message());
    lm_config_destroy(cfg);
}
END_TEST

/* Hand-checked roundings, then every plugin's copy after real updates. */
START_TEST(params_copy_is_bf16_rne) {
    static const struct {
        uint32_t bits;
        uint16_t want;
    } table[] = {
        {0x3f800000u, 0x3f80}, /* 1.0: exact */
        {0x3f808000u, 0x3f80}, /* a tie, the kept half even: down */
        {0x3f818000u, 0x3f82}, /* a tie, the kept half odd: up to even */
        {0x3f807fffu, 0x3f80}, /* below half */
        {0x3f808001u, 0x3f81}, /* above half */
        {0xbf818000u, 0xbf82}, /* negative ties round the magnitude */
        {0x7f7fffffu, 0x7f80}, /* the largest float rounds up to infinity */
        {0x7f800000u, 0x7f80}, /* infinity */
        {0xff800000u, 0xff80},
        {0x7fc00001u, 0x7fc0}, /* NaN: torch's canonical bfloat16 NaN */
        {0xffc12345u, 0x7fc0},
        {0x00000001u, 0x0000}, /* the smallest subnormal: to zero */
        {0x80000000u, 0x8000}, /* -0 */
    };
    enum { N = sizeof table / sizeof *table };
    float values[N];
    for (size_t i = 0; i < N; i++) memcpy(&values[i], &table[i].bits, sizeof values[i]);
    for (size_t p = 0; p < 3; p++) {
        rig r;
        rig_init_two(&r, make_backend(1), N, 5, 1);
        upload(&r, r.set.params, values, sizeof values);
        /* Zero gradients and no decay: the update leaves every value as it is. */
        rig_bind(&r, plugin_names[p], "weight_decay=0");
        rig_set_state(&r, 1e-3, 0, 1.0f, 0);
        rig_step(&r);
        uint16_t copy[N];
        download(&r, copy, r.set.params_copy, sizeof copy);
        for (size_t i = 0; i < N; i++)
            ck_assert_msg(copy[i] == table[i].want, "%s: bf16 of 0x%08x is 0x%04x, want 0x%04x", plugin_names[p],
                          (unsigned)table[i].bits, (unsigned)copy[i], (unsigned)table[i].want);
        lm_backend *be = r.be;
        rig_free(&r);
        be->ops->destroy(be);
    }
    /* After real updates, the copy is the updated params rounded. */
    for (int p = 0; p < 3; p++) {
        const size_t n = 70000;
        size_t bytes = 0;
        lm_backend *be = make_backend(2);
        float *all = run_random(be, p, 3, n, &bytes);
        const float *params = all;
        const uint16_t *copy = (const uint16_t *)(all + (bytes - n * sizeof(uint16_t)) / sizeof(float));
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(copy[i] == bf16_expected(params[i]), "%s: copy[%zu] = 0x%04x for %.9g, want 0x%04x",
                          plugin_names[p], i, (unsigned)copy[i], params[i], (unsigned)bf16_expected(params[i]));
        free(all);
        be->ops->destroy(be);
    }
}
END_TEST

/* The graph-capturable promise: an update reads nothing back and never
 * waits for the device (the device counts both). */
START_TEST(step_never_waits) {
    const size_t n = 50000;
    rig r;
    rig_init_two(&r, make_backend(2), n, 20000, 1);
    float *grad = random_normal(n, 1.0f, 21);
    upload(&r, r.set.grads, grad, n * sizeof(float));
    free(grad);
    rig_bind(&r, plugin_names[_i], busy_settings[_i]);
    for (int s = 0; s < 3; s++) {
        rig_set_state(&r, 1e-3, s, s == 1 ? 0.5f : 1.0f, 0);
        lm_device_counters before, after;
        r.dev->ops->counters(r.dev, &before);
        ck_assert_msg(r.vt->step(r.opt, r.state) == LM_OK, "%s", lm_error_message());
        r.dev->ops->counters(r.dev, &after);
        ck_assert_msg(after.downloads == before.downloads, "%s: step %d downloaded %" PRIu64 " times",
                      plugin_names[_i], s, after.downloads - before.downloads);
        ck_assert_msg(after.syncs == before.syncs, "%s: step %d waited for the device %" PRIu64 " times",
                      plugin_names[_i], s, after.syncs - before.syncs);
        ck_assert_msg(after.uploads == before.uploads, "%s: step %d uploaded %" PRIu64 " times", plugin_names[_i],
                      s, after.uploads - before.uploads);
    }
    ck_assert_msg(r.dev->ops->sync(r.dev) == LM_OK, "%s", lm_error_message());
    lm_backend *be = r.be;
    rig_free(&r);
    be->ops->destroy(be);
}
END_TEST

START_TEST(bind_refuses_what_it_cannot_serve) {
    for (size_t p = 0; p < 3; p++) {
        char name[64];
        snprintf(name, sizeof name, "optimizer '%s'", plugin_names[p]);
        rig r;
        rig_init_two(&r, make_backend(1), 100, 50, 1);
        r.vt = optimizer_vtable(plugin_names[p]);
        r.opt = create_optimizer(plugin_names[p], NULL);
        /* step before bind */
        ck_assert_int_eq(r.vt->step(r.opt, r.state), LM_ERR_INVALID);
        /* BF16 gradients */
        lm_param_set set = r.set;
        set.grad_dtype = LM_BF16;
        ck_assert_int_eq(r.vt->bind(r.opt, &set), LM_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(lm_error_message(), name) && strstr(lm_error_message(), "F32"), "%s",
                      lm_error_message());
        /* an F16 copy of the params */
        set = r.set;
        set.copy_dtype = LM_F16;
        ck_assert_int_eq(r.vt->bind(r.opt, &set), LM_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(lm_error_message(), name) && strstr(lm_error_message(), "BF16"), "%s",
                      lm_error_message());
        /* overlapping tensors */
        set = r.set;
        lm_param_desc overlapping[2] = {r.descs[0], r.descs[1]};
        overlapping[1].offset -= 1;
        set.descs = overlapping;
        ck_assert_int_eq(r.vt->bind(r.opt, &set), LM_ERR_INVALID);
        ck_assert_msg(strstr(lm_error_message(), "overlaps"), "%s", lm_error_message());
        /* a tensor beyond the buffer */
        overlapping[1].offset += 2;
        ck_assert_int_eq(r.vt->bind(r.opt, &set), LM_ERR_INVALID);
#if !defined(LM_HAVE_CUDA)
        /* a GPU model, in a build without CUDA */
        lm_device gpu = *r.dev;
        gpu.type = LM_DEVICE_CUDA;
        gpu.description = "cuda:0 (pretend)";
        set = r.set;
        set.device = &gpu;
        ck_assert_int_eq(r.vt->bind(r.opt, &set), LM_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(lm_error_message(), name) && strstr(lm_error_message(), "no CUDA"), "%s",
                      lm_error_message());
#endif
        /* and after all these refusals, the real thing still binds */
        ck_assert_msg(r.vt->bind(r.opt, &r.set) == LM_OK, "%s", lm_error_message());
        lm_backend *be = r.be;
        rig_free(&r);
        be->ops->destroy(be);
    }
}
END_TEST

/* Tensors handed over in any order give the same update (ranges are built
 * from offsets, not from the order of the descriptors). */
START_TEST(descriptor_order_does_not_matter) {
    fixture f;
    fixture_open(&f);
    float *results[2];
    for (int reversed = 0; reversed < 2; reversed++) {
        lm_param_desc descs[8];
        for (size_t i = 0; i < f.n_tensors; i++) descs[i] = f.descs[reversed ? f.n_tensors - 1 - i : i];
        rig r;
        rig_init(&r, make_backend(1), f.n, descs, f.n_tensors, 0);
        upload(&r, r.set.params, fx_floats(&f, "init", f.n), f.n * sizeof(float));
        upload(&r, r.set.grads, fx_floats(&f, "grads", f.steps * f.n), f.n * sizeof(float));
        rig_bind(&r, "adamw", "weight_decay=0.5");
        rig_set_state(&r, 1e-2, 0, 1.0f, 0);
        rig_step(&r);
        results[reversed] = rig_params(&r);
        lm_backend *be = r.be;
        rig_free(&r);
        be->ops->destroy(be);
    }
    assert_bitwise("params", results[1], results[0], f.n * sizeof(float));
    free(results[0]);
    free(results[1]);
    lm_safetensors_close(f.st);
}
END_TEST

static Suite *optimizer_suite(void) {
    Suite *s = suite_create("optimizers");
    TCase *parity = tcase_create("torch");
    /* The fixture's five cases: adamw, sgd, sgd_momentum, sgd_nesterov, lion. */
    tcase_add_loop_test(parity, matches_torch, 0, 5);
    tcase_add_test(parity, adamw_bit_identical_to_lmcore_1);
    suite_add_tcase(s, parity);
    TCase *behaviour = tcase_create("behaviour");
    tcase_add_loop_test(behaviour, device_and_threads_agree, 0, 3);
    tcase_add_loop_test(behaviour, bad_step_changes_nothing, 0, 3);
    tcase_add_loop_test(behaviour, step_never_waits, 0, 3);
    tcase_add_test(behaviour, state_names_and_sizes);
    tcase_add_test(behaviour, settings_json_parses);
    tcase_add_test(behaviour, bad_settings_refused);
    tcase_add_test(behaviour, params_copy_is_bf16_rne);
    tcase_add_test(behaviour, bind_refuses_what_it_cannot_serve);
    tcase_add_test(behaviour, descriptor_order_does_not_matter);
    suite_add_tcase(s, behaviour);
    return s;
}

int main(void) { return lm_test_main_for_device(OPT_TEST_DEVICE, optimizer_suite); }

/* The vocabulary padded inside the model (pad_vocab_to_multiple_of=N): the
 * tied word embeddings get Vp = ceil(V / N) * N rows in the flat buffer,
 * the logits Vp columns, and the loss ops score the first V of them.
 *
 * A padded model must compute what the unpadded one does: the same loss and
 * parameter gradients (over every descriptor), the same logits() and
 * generated tokens, the padding rows of the weights and gradients exactly
 * 0 through any number of optimizer steps (adamw, sgd and lion, weight
 * decay on), and files that load into a model padded either way.  The CPU
 * is forced to pad (auto pads only on CUDA), with V = 300 (not a multiple
 * of 128: Vp = 384).
 *
 * Not bit for bit on the CPU: OpenBLAS (through the kernels' split GEMM)
 * blocks and orders a GEMM of 384 output columns differently from one of
 * 300, so the logits and every gradient below them differ in the last bits
 * (measured: logits within 1.3e-7 of the largest, gradients within 4.4e-7
 * of the largest gradient, the losses equal).  Hence TOL_* below,
 * with margin; what must be exact is exact: the padding rows of the weights
 * and gradients stay 0, the saved files are the same tensors, the tokens
 * generated are the same.  (The CPU pads only when told to: auto pads on
 * CUDA, whose cuBLAS picks its algorithm by shape too.)  Differences that
 * small still grow over steps (Adam normalises the noise of a gradient that
 * is 0 in exact arithmetic, Lion takes its sign), so each training step
 * starts both models from the unpadded model's weights.
 *
 * The loss kernels are checked directly too: with a row stride > V, the
 * same bits in the first V columns as the unpadded call, nothing read from
 * the padding columns, and 0 written there (in place and fused). */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cuda_probe.h"
#include "generate.h"
#include "kernels.h"
#include "lmcore/json.h"
#include "lmcore/lmcore.h"
#include "lmcore/safetensors.h"
#include "model_io.h"
#include "model_steps.h"
#include "registry.h"
#include "small_models.h"
#include "test_main.h"

/* The CUDA build compiles this suite a second time with the models and
 * the backend ops on the GPU (test_vocab_padding_cuda, label gpu). */
#ifndef VOCABPAD_TEST_DEVICE
#define VOCABPAD_TEST_DEVICE "cpu"
#endif
#ifdef VOCABPAD_TEST_CUDA
/* The GPU's loss kernels against their CPU twin: tests/gpu's tolerance
 * for dlogits (another summation order); the padding columns still exact. */
#define TOL_OPS 1e-5
#else
#define TOL_OPS 0.0 /* the CPU backend's ops are the twins */
#endif

enum { V = LM_TEST_SMALL_V, VP = 384, N = LM_TEST_SMALL_N, WIDTH = 32 };

/* Relative to the largest reference value of the tensor (or row set). */
#define TOL_LOGITS 1e-6
#define TOL_GRADS 2e-6
#define TOL_LOSS 1e-6
static double worst_logits, worst_grads, worst_loss; /* measured, printed by the tests */

/* ---- plugins ---- */

static const void *plugin_vtable(const char *file, lm_plugin_kind kind) {
    return lm_test_plugin(file, kind)->vtable;
}

/* A small model (tests/common/small_models.h) on the test's device,
 * padded to `pad` (NULL: the key not given, auto), plus `extra` (NULL-ended). */
static lm_status try_create(const char *arch, const char *pad, const char *const *extra, void **model) {
    return lm_test_small_model_try_create(arch, VOCABPAD_TEST_DEVICE, "pad_vocab_to_multiple_of", pad, extra, model);
}

static void *create(const char *arch, const char *pad, const char *const *extra) {
    return lm_test_small_model_create(arch, VOCABPAD_TEST_DEVICE, "pad_vocab_to_multiple_of", pad, extra);
}

/* ---- comparisons over the descriptors ---- */

/* max |a - b| / max |b| over n floats (0 when b is all 0 and a == b). */
static double relative_error(const float *a, const float *b, size_t n) {
    double err = 0.0, mag = 0.0;
    for (size_t j = 0; j < n; j++) {
        const double e = fabs((double)a[j] - (double)b[j]);
        if (e > err || isnan(e)) err = isnan(e) ? INFINITY : e;
        if (fabs((double)b[j]) > mag) mag = fabs((double)b[j]);
    }
    return err == 0.0 ? 0.0 : mag > 0.0 ? err / mag : INFINITY;
}

/* Every tensor of `a` (a flat host copy of model ma) equal to the
 * same-named tensor of `b` (model mb), in name and shape, and its values
 * within `tol` of the largest value of all of b's tensors (tol 0: bit for
 * bit): what saving, hashing and the optimizer's names see.  (Of all: a
 * gradient that is 0 in exact arithmetic, the attention keys' bias, is
 * rounding noise on both sides.)  Returns the worst relative error. */
static double compare_tensors(const lm_architecture_vtable *vt, void *ma, const float *a, void *mb, const float *b,
                              double tol, const char *what) {
    lm_param_set sa = lm_test_params(vt, ma), sb = lm_test_params(vt, mb);
    ck_assert_uint_eq(sa.n_descs, sb.n_descs);
    double worst = 0.0, largest = 0.0;
    for (size_t i = 0; i < sb.n_descs; i++)
        for (size_t j = 0; j < lm_test_desc_numel(&sb.descs[i]); j++)
            if (fabs((double)b[sb.descs[i].offset + j]) > largest) largest = fabs((double)b[sb.descs[i].offset + j]);
    for (size_t i = 0; i < sa.n_descs; i++) {
        const lm_param_desc *da = &sa.descs[i], *db = &sb.descs[i];
        ck_assert_str_eq(da->name, db->name);
        ck_assert_int_eq(da->ndim, db->ndim);
        for (int32_t k = 0; k < da->ndim; k++) ck_assert_int_eq(da->shape[k], db->shape[k]);
        const size_t n = lm_test_desc_numel(da);
        if (tol == 0.0) {
            for (size_t j = 0; j < n; j++)
                ck_assert_msg(memcmp(&a[da->offset + j], &b[db->offset + j], sizeof(float)) == 0,
                              "%s: %s[%zu] is %.9g padded, %.9g unpadded", what, da->name, j,
                              (double)a[da->offset + j], (double)b[db->offset + j]);
            continue;
        }
        double err = 0.0;
        for (size_t j = 0; j < n; j++) {
            const double e = fabs((double)a[da->offset + j] - (double)b[db->offset + j]) / largest;
            if (!(e <= err)) err = e; /* NaN included */
        }
        ck_assert_msg(err <= tol, "%s: %s differs by %.3g of its largest value (tolerance %g)", what, da->name, err,
                      tol);
        if (err > worst) worst = err;
    }
    return worst;
}

/* Copies every tensor of model `from` into model `to` (per descriptor: the
 * padding of `to` keeps its own values). */
static void copy_weights(const lm_architecture_vtable *vt, void *from, void *to) {
    lm_param_set sf = lm_test_params(vt, from), st = lm_test_params(vt, to);
    float *a = lm_test_read_params(vt, from), *b = lm_test_read_params(vt, to);
    for (size_t i = 0; i < sf.n_descs; i++)
        memcpy(b + st.descs[i].offset, a + sf.descs[i].offset, lm_test_desc_numel(&sf.descs[i]) * sizeof(float));
    lm_test_write_params(vt, to, b);
    ck_assert_int_eq(vt->params_written(to), LM_OK);
    lm_free(a);
    lm_free(b);
}

/* The padding of the tensor `name` (its storage after its shape) in a
 * host copy: every element equal to `want` (bits). */
static void assert_padding(const lm_architecture_vtable *vt, void *model, const float *host, const char *name,
                           float want, const char *what) {
    const lm_param_desc *d = lm_test_find_desc(vt, model, name);
    const size_t n = lm_test_desc_numel(d);
    ck_assert_msg(d->storage > n, "%s is not padded (storage %zu, %zu elements)", name, d->storage, n);
    for (size_t j = n; j < d->storage; j++)
        ck_assert_msg(memcmp(&host[d->offset + j], &want, sizeof want) == 0, "%s: %s padding[%zu] = %.9g, not %g",
                      what, name, j - n, (double)host[d->offset + j], (double)want);
}

/* ---- the loss kernels with a stride ---- */

/* Rows of V logits (labels: some unscored), packed and strided copies, the
 * strided one's padding columns set to `pad`. */
typedef struct strided_case {
    float packed[N * V], strided[N * VP];
    int32_t labels[N];
} strided_case;

static void make_strided(strided_case *c, float pad) {
    uint64_t state = 11;
    for (int n = 0; n < N; n++) {
        c->labels[n] = n % 5 == 2 ? LM_IGNORE_INDEX : (int32_t)(lm_test_random_next(&state) % V);
        for (int j = 0; j < V; j++) c->packed[n * V + j] = (float)(lm_test_random_next(&state) % 20001) / 1000.0f - 10.0f;
        memcpy(&c->strided[n * VP], &c->packed[n * V], V * sizeof(float));
        for (int j = V; j < VP; j++) c->strided[n * VP + j] = pad;
    }
}

static void assert_rows(const float *strided, const float *packed, float pad, const char *what) {
    for (int n = 0; n < N; n++) {
        ck_assert_msg(memcmp(&strided[n * VP], &packed[n * V], V * sizeof(float)) == 0, "%s: row %d differs", what,
                      n);
        for (int j = V; j < VP; j++)
            ck_assert_msg(memcmp(&strided[n * VP + j], &pad, sizeof pad) == 0, "%s: row %d padding[%d] = %g, not %g",
                          what, n, j - V, (double)strided[n * VP + j], (double)pad);
    }
}

START_TEST(loss_kernels_with_a_stride) {
    static strided_case c;
    float want_losses[N], got_losses[N];
    const float dloss = 0.037f;
    /* forward: the padding columns hold the model's 0 logits, which must
     * not enter the softmax (as -inf would not). */
    make_strided(&c, 0.0f);
    const double want_sum = lm_cpu_crossentropy_forward(want_losses, c.packed, c.labels, N, V, V);
    const double got_sum = lm_cpu_crossentropy_forward(got_losses, c.strided, c.labels, N, V, VP);
    ck_assert_msg(memcmp(got_losses, want_losses, sizeof got_losses) == 0, "forward losses differ");
    ck_assert_msg(memcmp(&got_sum, &want_sum, sizeof got_sum) == 0, "forward sum %.17g, unpadded %.17g", got_sum,
                  want_sum);

    /* in-place backward and the fused op: padding columns not read (7
     * there would change every softmax) and written 0. */
    make_strided(&c, 7.0f);
    lm_cpu_crossentropy_backward(c.packed, c.packed, c.labels, dloss, N, V, V);
    lm_cpu_crossentropy_backward(c.strided, c.strided, c.labels, dloss, N, V, VP);
    assert_rows(c.strided, c.packed, 0.0f, "in-place backward");

    make_strided(&c, 7.0f);
    lm_cpu_crossentropy_forward_backward(want_losses, c.packed, c.labels, dloss, N, V, V);
    lm_cpu_crossentropy_forward_backward(got_losses, c.strided, c.labels, dloss, N, V, VP);
    ck_assert_msg(memcmp(got_losses, want_losses, sizeof got_losses) == 0, "fused losses differ");
    assert_rows(c.strided, c.packed, 0.0f, "fused classifier");

    /* out of place: dlogits += ..., nothing added to the padding columns. */
    make_strided(&c, 7.0f);
    static float dpacked[N * V], dstrided[N * VP];
    for (int i = 0; i < N * V; i++) dpacked[i] = 0.5f;
    for (int i = 0; i < N * VP; i++) dstrided[i] = i % VP < V ? 0.5f : 3.0f;
    lm_cpu_crossentropy_backward(dpacked, c.packed, c.labels, dloss, N, V, V);
    lm_cpu_crossentropy_backward(dstrided, c.strided, c.labels, dloss, N, V, VP);
    assert_rows(dstrided, dpacked, 3.0f, "out-of-place backward");
}
END_TEST

/* The backend's ops (what the models call, on the device of this build)
 * with the stride: the CPU twins' unpadded results in the first V columns
 * (within TOL_OPS), 0 in the padding columns, which held 7. */
static void assert_rows_close(const float *strided, const float *packed, int n_rows, const char *what) {
    for (int n = 0; n < n_rows; n++) {
        const double err = relative_error(&strided[n * VP], &packed[n * V], V);
        ck_assert_msg(err <= TOL_OPS, "%s: row %d differs by %.3g", what, n, err);
        for (int j = V; j < VP; j++)
            ck_assert_msg(strided[n * VP + j] == 0.0f && !signbit(strided[n * VP + j]), "%s: row %d padding[%d] = %g",
                          what, n, j - V, (double)strided[n * VP + j]);
    }
}

START_TEST(loss_ops_through_the_backend) {
    lm_backend *be = NULL;
    ck_assert_msg(lm_backend_create(&be, VOCABPAD_TEST_DEVICE, LM_PRECISION_FP32, 0) == LM_OK, "%s",
                  lm_error_message());
    static strided_case c;
    static float got[N * VP];
    float want_losses[N], got_losses[N];
    make_strided(&c, 7.0f);
    int64_t scored = 0;
    for (int n = 0; n < N; n++) scored += c.labels[n] != LM_IGNORE_INDEX;
    const float loss_scale = 0.5f, dloss = loss_scale / (float)scored;
    float *d_logits = NULL, *d_losses = NULL;
    int32_t *d_labels = NULL;
    int64_t *d_count = NULL;
    ck_assert_int_eq(be->ops->alloc(be, (void **)&d_logits, sizeof c.strided, "logits"), LM_OK);
    ck_assert_int_eq(be->ops->alloc(be, (void **)&d_losses, sizeof got_losses, "losses"), LM_OK);
    ck_assert_int_eq(be->ops->alloc(be, (void **)&d_labels, sizeof c.labels, "labels"), LM_OK);
    ck_assert_int_eq(be->ops->alloc(be, (void **)&d_count, sizeof scored, "count"), LM_OK);
    ck_assert_int_eq(be->ops->upload(be, d_labels, c.labels, sizeof c.labels), LM_OK);
    ck_assert_int_eq(be->ops->upload(be, d_count, &scored, sizeof scored), LM_OK);

    /* forward (nothing written to the logits) */
    (void)lm_cpu_crossentropy_forward(want_losses, c.packed, c.labels, N, V, V);
    ck_assert_int_eq(be->ops->upload(be, d_logits, c.strided, sizeof c.strided), LM_OK);
    be->ops->crossentropy_forward(be, d_losses, d_logits, d_labels, N, V, VP);
    ck_assert_int_eq(be->ops->download(be, got_losses, d_losses, sizeof got_losses), LM_OK);
    ck_assert_msg(relative_error(got_losses, want_losses, N) <= TOL_OPS, "backend forward losses");

    /* in-place backward */
    ck_assert_int_eq(be->ops->upload(be, d_logits, c.strided, sizeof c.strided), LM_OK);
    be->ops->crossentropy_backward(be, d_logits, d_logits, d_labels, loss_scale, d_count, N, V, VP);
    ck_assert_int_eq(be->ops->download(be, got, d_logits, sizeof got), LM_OK);
    static float want[N * V];
    memcpy(want, c.packed, sizeof want);
    lm_cpu_crossentropy_backward(want, want, c.labels, dloss, N, V, V);
    assert_rows_close(got, want, N, "backend in-place backward");

    /* the fused classifier */
    ck_assert_int_eq(be->ops->upload(be, d_logits, c.strided, sizeof c.strided), LM_OK);
    be->ops->crossentropy_forward_backward(be, d_losses, d_logits, d_labels, loss_scale, d_count, N, V, VP);
    ck_assert_int_eq(be->ops->download(be, got, d_logits, sizeof got), LM_OK);
    ck_assert_int_eq(be->ops->download(be, got_losses, d_losses, sizeof got_losses), LM_OK);
    memcpy(want, c.packed, sizeof want);
    lm_cpu_crossentropy_forward_backward(want_losses, want, c.labels, dloss, N, V, V);
    assert_rows_close(got, want, N, "backend fused classifier");
    ck_assert_msg(relative_error(got_losses, want_losses, N) <= TOL_OPS, "backend fused losses");
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    be->ops->free(be, d_logits);
    be->ops->free(be, d_losses);
    be->ops->free(be, d_labels);
    be->ops->free(be, d_count);
    lm_backend_release(be);
}
END_TEST

/* ---- the models ---- */


START_TEST(setting_and_layout) {
    const char *arch = lm_test_small_archs[_i];
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    void *plain = create(arch, "1", NULL), *padded = create(arch, "128", NULL), *by_default = create(arch, NULL, NULL);
    lm_arch_info pi, qi, di;
    ck_assert_int_eq(vt->info(plain, &pi), LM_OK);
    ck_assert_int_eq(vt->info(padded, &qi), LM_OK);
    ck_assert_int_eq(vt->info(by_default, &di), LM_OK);
    /* What a user sees: the real vocabulary, the real parameter count. */
    ck_assert_int_eq(qi.vocab_size, V);
    ck_assert_int_eq(qi.n_params, pi.n_params);
    lm_param_set ps = lm_test_params(vt, plain), qs = lm_test_params(vt, padded), ds = lm_test_params(vt, by_default);
#ifdef VOCABPAD_TEST_CUDA
    ck_assert_uint_eq(ds.n_params, qs.n_params); /* auto pads to 128 on CUDA */
#else
    ck_assert_uint_eq(ds.n_params, ps.n_params); /* auto pads nothing on the CPU */
#endif
    /* the extra rows: (Vp - V) x C, and for BERT the decoder bias's Vp - V */
    const size_t extra = (size_t)(VP - V) * WIDTH + (strcmp(arch, "bert") == 0 ? (size_t)(VP - V) : 0);
    ck_assert_uint_eq(qs.n_params, ps.n_params + extra);
    const lm_param_desc *wte = lm_test_find_desc(vt, padded, lm_test_small_wte_names[_i]);
    ck_assert_int_eq(wte->shape[0], V);
    ck_assert_uint_eq(wte->storage, (size_t)VP * WIDTH);
    vt->destroy(plain);
    vt->destroy(padded);
    vt->destroy(by_default);

    /* Bad values: one line naming the key and what it takes. */
    static const char *const bad[] = {"0", "-128", "many", "12x", "65537", ""};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        void *model = NULL;
        ck_assert_int_eq(try_create(arch, bad[k], NULL, &model), LM_ERR_INVALID);
        const char *message = lm_error_message();
        ck_assert_msg(strstr(message, "pad_vocab_to_multiple_of must be auto") && strstr(message, "an integer from 1 "
                                                                                                   "to 65536") &&
                          !strchr(message, '\n'),
                      "'%s': %s", bad[k], message);
    }
    static const char *const as_number[] = {"pad_vocab_to_multiple_of=1.5", NULL};
    void *model = NULL;
    ck_assert_int_eq(try_create(arch, NULL, as_number, &model), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "got '1.5'"), "%s", lm_error_message());
    static const char *const as_int[] = {"pad_vocab_to_multiple_of=64", NULL};
    model = create(arch, NULL, as_int);
    ck_assert_uint_eq(lm_test_find_desc(vt, model, lm_test_small_wte_names[_i])->storage, (size_t)320 * WIDTH);
    vt->destroy(model);
}
END_TEST

/* An optimizer plugin bound to the model, weight decay 0.1 (momentum 0.9 for sgd). */
static void *bind_optimizer(const char *name, const lm_architecture_vtable *vt, void *model,
                            const lm_optimizer_vtable **ovt) {
    char file[64], owner[64];
    snprintf(file, sizeof file, "optimizer_%s", name);
    snprintf(owner, sizeof owner, "optimizer '%s'", name);
    *ovt = plugin_vtable(file, LM_KIND_OPTIMIZER);
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, owner), LM_OK);
    ck_assert_int_eq(lm_config_set_number(cfg, "weight_decay", 0.1), LM_OK);
    if (strcmp(name, "sgd") == 0) ck_assert_int_eq(lm_config_set_number(cfg, "momentum", 0.9), LM_OK);
    void *optimizer = NULL;
    ck_assert_msg((*ovt)->create(&optimizer, cfg) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(lm_config_validate(cfg), LM_OK);
    lm_config_destroy(cfg);
    lm_param_set set = lm_test_params(vt, model);
    ck_assert_msg((*ovt)->bind(optimizer, &set) == LM_OK, "%s", lm_error_message());
    return optimizer;
}

static void optimizer_step(const lm_architecture_vtable *vt, void *model, const lm_optimizer_vtable *ovt,
                           void *optimizer, lm_step_state *state, float *norm) {
    lm_param_set set = lm_test_params(vt, model);
    lm_device *dev = set.device;
    const double lr = 1e-2, max_norm = 1.0;
    ck_assert_int_eq(dev->ops->upload(dev, &state->max_grad_norm, &max_norm, sizeof max_norm), LM_OK);
    ck_assert_int_eq(dev->ops->upload(dev, &state->lr, &lr, sizeof lr), LM_OK);
    ck_assert_int_eq(dev->ops->step_clip(dev, state, set.grads, LM_F32, set.n_params), LM_OK);
    ck_assert_msg(ovt->step(optimizer, state) == LM_OK, "%s", lm_error_message());
    *norm = lm_test_state_read(vt, model, state).grad_norm;
    ck_assert_int_eq(dev->ops->step_finish(dev, state), LM_OK);
    ck_assert_msg(dev->ops->sync(dev) == LM_OK, "%s", lm_error_message());
}

/* Training steps on the padded and the unpadded model side by side, with
 * each optimizer: every step, from the same weights (the unpadded model's,
 * copied), the same loss, gradient norm and gradients over the
 * descriptors (within TOL_*), and the padding of the weights and
 * gradients exactly 0 throughout (weight decay on).  The first step runs
 * forward then backward (the two loss ops), the others forward_train (the
 * fused op).  Before each backward the padding of the gradients is set to
 * 1 and the gradients accumulated into: it must still be 1 after, i.e. the
 * head's GEMMs add exactly 0 there (no memset hides it). */
START_TEST(training_matches_unpadded) {
    const char *arch = lm_test_small_archs[_i % 2];
    static const char *const optimizers[] = {"adamw", "sgd", "lion"};
    const char *opt = optimizers[_i / 2];
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    void *models[2] = {create(arch, "1", NULL), create(arch, "128", NULL)};
    const lm_optimizer_vtable *ovt[2];
    void *optimizers_bound[2];
    lm_step_state *states[2];
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(vt->init_weights(models[m], 1234), LM_OK);
        optimizers_bound[m] = bind_optimizer(opt, vt, models[m], &ovt[m]);
        states[m] = lm_test_state_new(vt, models[m], 5, 0);
    }
    const int is_bert = strcmp(arch, "bert") == 0;
    const char *bias = is_bert ? "cls.predictions.bias" : NULL;
    for (int step = 0; step < 4; step++) {
        if (step > 0) copy_weights(vt, models[0], models[1]);
        lm_test_small_batch batch;
        lm_test_small_batch_make(&batch, !is_bert, 100 + (uint64_t)step, LM_TEST_SMALL_IDS_WITH_TOP);
        float loss[2], norm[2];
        for (int m = 0; m < 2; m++) {
            lm_test_state_key(vt, models[m], states[m], 5, (uint64_t)step);
            if (step == 0) {
                ck_assert_msg(lm_test_forward(vt, models[m], &batch.batch, states[m], &loss[m]) == LM_OK, "%s",
                              lm_error_message());
            } else {
                ck_assert_msg(vt->forward_train(models[m], &batch.batch, states[m], 1.0f) == LM_OK, "%s",
                              lm_error_message());
                loss[m] = lm_test_state_read(vt, models[m], states[m]).loss;
            }
            int accumulate = 0;
            if (m == 1 && step > 0) { /* the padding of the gradients at 1, then accumulate into it */
                float *grads = lm_test_read_grads(vt, models[m]);
                memset(grads, 0, lm_test_params(vt, models[m]).n_params * sizeof(float));
                const char *padded_names[2] = {lm_test_small_wte_names[_i % 2], bias};
                for (int k = 0; k < 2 && padded_names[k]; k++) {
                    const lm_param_desc *d = lm_test_find_desc(vt, models[m], padded_names[k]);
                    for (size_t j = lm_test_desc_numel(d); j < d->storage; j++) grads[d->offset + j] = 1.0f;
                }
                lm_param_set set = lm_test_params(vt, models[m]);
                ck_assert_int_eq(set.device->ops->upload(set.device, set.grads, grads, set.n_params * sizeof(float)),
                                 LM_OK);
                lm_free(grads);
                accumulate = 1;
            }
            ck_assert_msg(vt->backward(models[m], 1.0f, accumulate) == LM_OK, "%s", lm_error_message());
            if (accumulate) {
                float *grads = lm_test_read_grads(vt, models[m]);
                assert_padding(vt, models[m], grads, lm_test_small_wte_names[_i % 2], 1.0f, "accumulated gradients");
                if (bias) assert_padding(vt, models[m], grads, bias, 1.0f, "accumulated gradients");
                lm_param_set set = lm_test_params(vt, models[m]);
                const lm_param_desc *d = lm_test_find_desc(vt, models[m], lm_test_small_wte_names[_i % 2]);
                for (size_t j = lm_test_desc_numel(d); j < d->storage; j++) grads[d->offset + j] = 0.0f;
                if (bias) {
                    d = lm_test_find_desc(vt, models[m], bias);
                    for (size_t j = lm_test_desc_numel(d); j < d->storage; j++) grads[d->offset + j] = 0.0f;
                }
                ck_assert_int_eq(set.device->ops->upload(set.device, set.grads, grads, set.n_params * sizeof(float)),
                                 LM_OK);
                lm_free(grads);
            }
        }
        const double loss_err = relative_error(&loss[1], &loss[0], 1);
        ck_assert_msg(loss_err <= TOL_LOSS && isfinite(loss[0]), "%s step %d: loss %.9g padded, %.9g unpadded", arch,
                      step, (double)loss[1], (double)loss[0]);
        if (loss_err > worst_loss) worst_loss = loss_err;
        float *g0 = lm_test_read_grads(vt, models[0]), *g1 = lm_test_read_grads(vt, models[1]);
        const double grad_err = compare_tensors(vt, models[1], g1, models[0], g0, TOL_GRADS, "gradients");
        if (grad_err > worst_grads) worst_grads = grad_err;
        assert_padding(vt, models[1], g1, lm_test_small_wte_names[_i % 2], 0.0f, "gradients");
        if (bias) assert_padding(vt, models[1], g1, bias, 0.0f, "gradients");
        lm_free(g0);
        lm_free(g1);
        for (int m = 0; m < 2; m++) optimizer_step(vt, models[m], ovt[m], optimizers_bound[m], states[m], &norm[m]);
        ck_assert_msg(relative_error(&norm[1], &norm[0], 1) <= TOL_GRADS, "%s step %d: norm %.9g padded, %.9g", arch,
                      step, (double)norm[1], (double)norm[0]);
        float *p1 = lm_test_read_params(vt, models[1]);
        assert_padding(vt, models[1], p1, lm_test_small_wte_names[_i % 2], 0.0f, "weights");
        if (bias) assert_padding(vt, models[1], p1, bias, 0.0f, "weights");
        lm_free(p1);
    }
    printf("%s with %s: worst loss difference %.3g, gradients %.3g (of the largest gradient)\n", arch, opt,
           worst_loss, worst_grads);
    for (int m = 0; m < 2; m++) {
        lm_test_state_free(vt, models[m], states[m]);
        ovt[m]->destroy(optimizers_bound[m]);
        vt->destroy(models[m]);
    }
}
END_TEST

/* logits() of a padded model: [B, T, V], the same bits as unpadded (for
 * BERT both after an inference forward and after one with labels, whose
 * sparse head recomputes every row). */
START_TEST(logits_match_unpadded) {
    const char *arch = lm_test_small_archs[_i];
    const int is_bert = strcmp(arch, "bert") == 0;
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    void *models[2] = {create(arch, "1", NULL), create(arch, "128", NULL)};
    static float logits[2][N * V];
    for (int with_labels = 0; with_labels < 2; with_labels++) {
        lm_test_small_batch batch;
        lm_test_small_batch_make(&batch, !is_bert, 7, LM_TEST_SMALL_IDS_WITH_TOP);
        if (!with_labels) batch.batch.labels = NULL;
        for (int m = 0; m < 2; m++) {
            ck_assert_int_eq(vt->init_weights(models[m], 99), LM_OK);
            ck_assert_int_eq(vt->set_training(models[m], 0), LM_OK);
            lm_step_state *state = lm_test_state_new(vt, models[m], 1, 0);
            ck_assert_msg(vt->forward(models[m], &batch.batch, state) == LM_OK, "%s", lm_error_message());
            ck_assert_msg(vt->logits(models[m], logits[m], (size_t)N * V) == LM_OK, "%s", lm_error_message());
            /* the padded size is no valid destination: the user sees V */
            if (m == 1) ck_assert_int_eq(vt->logits(models[m], logits[m], (size_t)N * VP), LM_ERR_INVALID);
            lm_test_state_free(vt, models[m], state);
        }
        const double err = relative_error(logits[1], logits[0], (size_t)N * V);
        ck_assert_msg(err <= TOL_LOGITS, "%s logits (labels %d) differ by %.3g of the largest", arch, with_labels, err);
        if (err > worst_logits) worst_logits = err;
    }
    printf("%s logits: worst difference %.3g of the largest\n", arch, worst_logits);
    vt->destroy(models[0]);
    vt->destroy(models[1]);
}
END_TEST

static lm_plugin plugin_of(const char *name, const lm_architecture_vtable *vt, int cached) {
    lm_plugin plugin = lm_test_arch_plugin(name, vt);
    if (!cached) {
        plugin.vtable.architecture.generate_reset = NULL;
        plugin.vtable.architecture.generate_step = NULL;
    }
    return plugin;
}

/* GPT-2's generation (with its KV cache and with full forwards through
 * logits()) picks the same tokens padded: greedy, and sampling with top-k,
 * top-p and a repetition penalty, which all work over the V real ids. */
START_TEST(generation_matches_unpadded) {
    const lm_architecture_vtable *vt = lm_test_arch_vtable("gpt2");
    void *models[2] = {create("gpt2", "1", NULL), create("gpt2", "128", NULL)};
    const int32_t prompt[3] = {V - 1, 17, 42};
    const lm_generate_options options[2] = {
        {.max_new_tokens = 12, .temperature = 0.0, .top_k = 0, .top_p = 1.0, .seed = 1, .eos_id = -1},
        {.max_new_tokens = 12, .temperature = 1.5, .top_k = 50, .top_p = 0.95, .seed = 3, .eos_id = -1,
         .repetition_penalty = 1.3}};
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(vt->init_weights(models[m], 5), LM_OK);
        ck_assert_int_eq(vt->set_training(models[m], 0), LM_OK);
    }
    for (int o = 0; o < 2; o++) {
        for (int cached = 0; cached < 2; cached++) {
            lm_ids out[2];
            for (int m = 0; m < 2; m++) {
                memset(&out[m], 0, sizeof out[m]);
                lm_plugin plugin = plugin_of("gpt2", vt, cached);
                lm_handle handle = {&plugin, models[m]};
                lm_generate_stats stats;
                ck_assert_msg(lm_generate(handle, prompt, 3, &options[o], &out[m], &stats) == LM_OK, "%s",
                              lm_error_message());
                ck_assert_int_eq(stats.used_kv_cache, cached);
            }
            ck_assert_uint_eq(out[0].len, 12);
            ck_assert_uint_eq(out[1].len, out[0].len);
            for (size_t k = 0; k < out[0].len; k++)
                ck_assert_msg(out[0].data[k] == out[1].data[k] && out[1].data[k] < V,
                              "options %d cache %d: token %zu is %d padded, %d unpadded", o, cached, k,
                              (int)out[1].data[k], (int)out[0].data[k]);
            lm_ids_free(&out[0]);
            lm_ids_free(&out[1]);
        }
    }
    vt->destroy(models[0]);
    vt->destroy(models[1]);
}
END_TEST

/* A saved padded model is the unpadded model's files: config.json's
 * vocab_size is V and the word embeddings [V, C]; each loads into a model
 * padded the other way, which then computes the same logits. */
START_TEST(saved_files_cross_load) {
    const char *arch = lm_test_small_archs[_i];
    const int is_bert = strcmp(arch, "bert") == 0;
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    lm_plugin plugin = plugin_of(arch, vt, 1);
    for (int from_padded = 0; from_padded < 2; from_padded++) {
        char dir[64] = "/tmp/lm_vocabpad_XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        void *source = create(arch, from_padded ? "128" : "1", NULL);
        ck_assert_int_eq(vt->init_weights(source, 31), LM_OK);
        ck_assert_msg(lm_model_save(&plugin, source, dir, NULL, NULL, NULL) == LM_OK, "%s", lm_error_message());

        char path[256];
        snprintf(path, sizeof path, "%s/config.json", dir);
        lm_json *config = NULL;
        ck_assert_int_eq(lm_json_parse_file(path, &config), LM_OK);
        ck_assert_int_eq(lm_json_int(lm_json_get(config, "vocab_size")), V);
        ck_assert_ptr_null(lm_json_get(config, "pad_vocab_to_multiple_of")); /* lmcore's, not the model's */
        lm_json_free(config);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        lm_safetensors *st = NULL;
        ck_assert_int_eq(lm_safetensors_open(path, &st), LM_OK);
        lm_tensor t;
        ck_assert_int_eq(lm_safetensors_find(st, lm_test_small_wte_names[_i], &t), LM_OK);
        ck_assert_int_eq(t.ndim, 2);
        ck_assert_int_eq(t.shape[0], V);
        ck_assert_int_eq(t.shape[1], WIDTH);
        if (is_bert) {
            ck_assert_int_eq(lm_safetensors_find(st, "cls.predictions.bias", &t), LM_OK);
            ck_assert_int_eq(t.shape[0], V);
        }
        lm_safetensors_close(st);

        char hf_config[300];
        snprintf(hf_config, sizeof hf_config, "hf_config=%s/config.json", dir);
        const char *const from_file[] = {hf_config, NULL};
        void *target = create(arch, from_padded ? "1" : "128", from_file);
        ck_assert_msg(lm_model_load_weights(&plugin, target, path) == LM_OK, "%s", lm_error_message());
        float *a = lm_test_read_params(vt, source), *b = lm_test_read_params(vt, target);
        compare_tensors(vt, target, b, source, a, 0.0, "loaded weights"); /* bit for bit */
        if (!from_padded) assert_padding(vt, target, b, lm_test_small_wte_names[_i], 0.0f, "loaded weights");
        lm_free(a);
        lm_free(b);

        static float logits[2][N * V];
        lm_test_small_batch batch;
        lm_test_small_batch_make(&batch, !is_bert, 3, LM_TEST_SMALL_IDS_WITH_TOP);
        batch.batch.labels = NULL;
        void *pair[2] = {source, target};
        for (int m = 0; m < 2; m++) {
            ck_assert_int_eq(vt->set_training(pair[m], 0), LM_OK);
            ck_assert_msg(vt->forward(pair[m], &batch.batch, NULL) == LM_OK, "%s", lm_error_message());
            ck_assert_msg(vt->logits(pair[m], logits[m], (size_t)N * V) == LM_OK, "%s", lm_error_message());
        }
        const double err = relative_error(logits[1], logits[0], (size_t)N * V);
        ck_assert_msg(err <= TOL_LOGITS, "%s: logits differ by %.3g after loading", arch, err);
        vt->destroy(source);
        vt->destroy(target);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -r %s", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

static Suite *vocab_padding_suite(void) {
    Suite *s = suite_create("vocab_padding");
    TCase *kernels = tcase_create("kernels");
    tcase_add_test(kernels, loss_kernels_with_a_stride);
    tcase_add_test(kernels, loss_ops_through_the_backend);
    suite_add_tcase(s, kernels);
    TCase *models = tcase_create("models");
    tcase_set_timeout(models, 120);
    tcase_add_loop_test(models, setting_and_layout, 0, 2);
    tcase_add_loop_test(models, training_matches_unpadded, 0, 6);
    tcase_add_loop_test(models, logits_match_unpadded, 0, 2);
    tcase_add_test(models, generation_matches_unpadded);
    tcase_add_loop_test(models, saved_files_cross_load, 0, 2);
    suite_add_tcase(s, models);
    return s;
}

int main(void) { return lm_test_main_for_device(VOCABPAD_TEST_DEVICE, vocab_padding_suite); }

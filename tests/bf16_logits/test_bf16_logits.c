/* GPT-2 and BERT with logits_dtype=bf16 against the same models in fp32
 * (forced on the CPU, where auto keeps fp32): the classifier's logits and
 * their gradients stored in bf16, the tied head's GEMMs on the model's BF16
 * params_copy and a bf16 copy of their input (plugins/common/model/
 * model_head.c).
 *
 * bf16 is not fp32: every logit carries a relative rounding of up to 2^-9,
 * and the head reads its weight and input rounded too, so the numbers are
 * compared within tolerances measured here and stated below (the measured
 * worst values are printed):
 *
 *   TOL_LOSS   the loss, relative (forward, and forward_train's fused op);
 *   TOL_GRADS  every parameter gradient, relative to the largest gradient
 *              over all tensors (lm_test_compare_tensors);
 *   TOL_LOGITS logits(), relative to the largest |logit| (and each value a
 *              bf16 value exactly: widened, not recomputed);
 *   TOL_TRAIN  20 AdamW steps from the same weights on the same batches:
 *              the bf16 run's loss at every step, relative to fp32's.
 *
 * What must be exact is checked exactly: the params_copy equals the
 * parameters rounded (kernels/bf16.h) after init, after every optimizer
 * step, after loading saved weights (the path a checkpoint resume takes:
 * lm_model_load_weights, then params_written; test_bf16_logits_resume.sh
 * resumes a checkpoint through the CLI, test_bf16_logits_ddp.sh broadcasts
 * rank 0's weights) and after the host wrote the weights; saving writes fp32 tensors identical to the fp32 model's
 * for the same weights; logits_dtype is refused by name when unknown.
 *
 * The same source builds test_bf16_logits_cuda (label gpu): the models on
 * the CUDA backend (precision fp32; the bf16 head's GEMMs are cuBLASLt's
 * CUDA_R_16BF), against fp32 on the GPU, within the same tolerances; it
 * exits 77 without a GPU. */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf16.h"
#include "bf16_compare.h"
#include "cuda_probe.h"
#include "lmcore/lmcore.h"
#include "lmcore/safetensors.h"
#include "model_io.h"
#include "model_steps.h"
#include "registry.h"
#include "small_models.h"
#include "test_main.h"

#ifndef BF16_TEST_DEVICE
#define BF16_TEST_DEVICE "cpu"
#endif

enum { V = LM_TEST_SMALL_V, N = LM_TEST_SMALL_N, WIDTH = 32, TRAIN_STEPS = 20 };

#define TOL_LOSS 4e-4
#define TOL_GRADS 1e-2
#define TOL_LOGITS 1e-2
#define TOL_TRAIN 2e-3
static double worst_loss, worst_grads, worst_logits, worst_train;

/* ---- models ---- */

/* A small model (tests/common/small_models.h) on the test's device with
 * `logits_dtype` (NULL: the key not given) and `extra` settings (NULL-ended). */
static lm_status try_create(const char *arch, const char *logits_dtype, const char *const *extra, void **model) {
    return lm_test_small_model_try_create(arch, BF16_TEST_DEVICE, "logits_dtype", logits_dtype, extra, model);
}

static void *create(const char *arch, const char *logits_dtype, const char *const *extra) {
    return lm_test_small_model_create(arch, BF16_TEST_DEVICE, "logits_dtype", logits_dtype, extra);
}

/* ---- tests ---- */

START_TEST(setting) {
    const char *arch = lm_test_small_archs[_i];
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    /* Unset (auto) and fp32: no copy on the CPU; bf16: a BF16 copy of the
     * whole flat buffer. */
    const char *const values[] = {NULL, "auto", "fp32", "bf16"};
    for (int k = 0; k < 4; k++) {
        void *model = create(arch, values[k], NULL);
        lm_param_set set = lm_test_params(vt, model);
        const int bf16 = k == 3;
#ifdef BF16_TEST_CUDA
        (void)bf16; /* auto is fp32 on CUDA with precision fp32 too */
        ck_assert_int_eq(set.params_copy != NULL, k == 3);
#else
        ck_assert_int_eq(set.params_copy != NULL, bf16);
#endif
        ck_assert_int_eq(set.copy_dtype, set.params_copy ? LM_BF16 : LM_F32);
        vt->destroy(model);
    }
    /* An unknown value: one error naming the key and the values. */
    void *model = NULL;
    ck_assert_int_eq(try_create(arch, "fp16", NULL, &model), LM_ERR_INVALID);
    ck_assert_ptr_null(model);
    const char *msg = lm_error_message();
    ck_assert_msg(strstr(msg, "logits_dtype 'fp16'") && strstr(msg, "auto") && strstr(msg, "fp32") &&
                      strstr(msg, "bf16") && !strchr(msg, '\n'),
                  "%s", msg);
    /* auto on CUDA with precision=bf16 is bf16 (NOTES.md); the CPU computes in fp32 whatever the precision. */
    const char *const bf16_precision[] = {"precision=bf16", NULL};
    model = create(arch, NULL, bf16_precision);
#ifdef BF16_TEST_CUDA
    ck_assert_ptr_nonnull(lm_test_params(vt, model).params_copy);
#else
    ck_assert_ptr_null(lm_test_params(vt, model).params_copy);
#endif
    vt->destroy(model);
}
END_TEST

/* The loss of forward then backward, and of forward_train (the fused op),
 * and every gradient: bf16 against fp32 from the same weights.  _i: the
 * architecture, and whether the vocabulary is padded (to 128: 300 -> 384,
 * as CUDA's auto pads). */
START_TEST(loss_and_gradients_match_fp32) {
    const char *arch = lm_test_small_archs[_i % 2];
    const int is_bert = _i % 2 == 1;
    const char *const padded[] = {"pad_vocab_to_multiple_of=128", NULL};
    const char *const *extra = _i >= 2 ? padded : NULL;
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    void *models[2] = {create(arch, "fp32", extra), create(arch, "bf16", extra)};
    lm_step_state *states[2];
    lm_test_pair_init(vt, models, 77, 3, states);
    lm_test_assert_copy_is_rounded(vt, models[1], "after init");
    for (int fused = 0; fused < 2; fused++) {
        const double loss_err = lm_test_pair_loss_and_backward(vt, models, states, !is_bert, 40 + (uint64_t)fused, 3,
                                                               (uint64_t)fused, fused, TOL_LOSS, arch);
        if (loss_err > worst_loss) worst_loss = loss_err;
        float *g0 = lm_test_read_grads(vt, models[0]), *g1 = lm_test_read_grads(vt, models[1]);
        lm_param_set set = lm_test_params(vt, models[1]);
        const double err = lm_test_compare_tensors(&set, g1, g0, TOL_GRADS, "gradients");
        if (err > worst_grads) worst_grads = err;
        /* The padding rows of the tied head's gradient stay exactly 0 (dlogits is 0 there). */
        const lm_param_desc *d = lm_test_find_desc(vt, models[1], lm_test_small_wte_names[_i % 2]);
        for (size_t j = lm_test_desc_numel(d); j < d->storage; j++) ck_assert_float_eq(g1[d->offset + j], 0.0f);
        lm_free(g0);
        lm_free(g1);
    }
    printf("%s%s: loss within %.3g (relative), gradients within %.3g of the largest\n", arch,
           _i >= 2 ? " padded" : "", worst_loss, worst_grads);
    lm_test_pair_destroy(vt, models, states);
}
END_TEST

/* logits(): [B, T, V] floats, each a bf16 value widened, close to fp32's;
 * after an inference forward, and (BERT) after one with labels, whose
 * sparse head is recomputed on every row. */
START_TEST(logits_are_widened_bf16) {
    const char *arch = lm_test_small_archs[_i];
    const int is_bert = _i == 1;
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    void *models[2] = {create(arch, "fp32", NULL), create(arch, "bf16", NULL)};
    static float logits[2][N * V];
    for (int with_labels = 0; with_labels < 1 + is_bert; with_labels++) {
        lm_test_small_batch batch;
        lm_test_small_batch_make(&batch, !is_bert, 9, LM_TEST_SMALL_IDS_RANDOM);
        if (!with_labels) batch.batch.labels = NULL;
        for (int m = 0; m < 2; m++) {
            ck_assert_int_eq(vt->init_weights(models[m], 5), LM_OK);
            ck_assert_int_eq(vt->set_training(models[m], 0), LM_OK);
            lm_step_state *state = lm_test_state_new(vt, models[m], 1, 0);
            ck_assert_msg(vt->forward(models[m], &batch.batch, state) == LM_OK, "%s", lm_error_message());
            ck_assert_msg(vt->logits(models[m], logits[m], (size_t)N * V) == LM_OK, "%s", lm_error_message());
            lm_test_state_free(vt, models[m], state);
        }
        double largest = 0.0, worst = 0.0;
        for (size_t j = 0; j < (size_t)N * V; j++) largest = fmax(largest, fabs(logits[0][j]));
        for (size_t j = 0; j < (size_t)N * V; j++) {
            uint32_t bits;
            memcpy(&bits, &logits[1][j], sizeof bits);
            ck_assert_msg((bits & 0xffffu) == 0, "%s: logit %zu = %.9g is no bf16 value", arch, j, (double)logits[1][j]);
            worst = fmax(worst, fabs(logits[1][j] - logits[0][j]) / largest);
        }
        ck_assert_msg(worst <= TOL_LOGITS, "%s labels %d: logits differ by %.3g of the largest", arch, with_labels,
                      worst);
        if (worst > worst_logits) worst_logits = worst;
    }
    printf("%s: logits() within %.3g of the largest fp32 logit\n", arch, worst_logits);
    for (int m = 0; m < 2; m++) vt->destroy(models[m]);
}
END_TEST

/* 20 AdamW steps, fp32 and bf16 from the same weights on the same batches
 * (the step's usual path: forward_train, backward, clip, update): the
 * losses track, and after every step the copy the optimizer rewrote is the
 * new parameters rounded. */
START_TEST(training_tracks_fp32) {
    const char *arch = lm_test_small_archs[_i];
    const int is_bert = _i == 1;
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    void *models[2] = {create(arch, "fp32", NULL), create(arch, "bf16", NULL)};
    const lm_test_pair_training run = lm_test_pair_train(vt, models, !is_bert, TRAIN_STEPS, TOL_TRAIN, arch);
    if (run.worst > worst_train) worst_train = run.worst;
    printf("%s: %d steps, losses within %.3g (relative) of fp32's; %.4f -> %.4f\n", arch, TRAIN_STEPS, worst_train,
           (double)run.first, (double)run.last);
    lm_test_pair_destroy(vt, models, NULL);
}
END_TEST

/* Saving writes the fp32 weights (the copy is no tensor of the file),
 * the same bytes as an fp32 model with the same weights; loading them into
 * a bf16 model rebuilds its copy (lm_model_load_weights, the path of a
 * checkpoint resume), and so does params_written after the host wrote
 * other weights. */
START_TEST(saving_and_loading_rebuild_the_copy) {
    const char *arch = lm_test_small_archs[_i];
    const lm_architecture_vtable *vt = lm_test_arch_vtable(arch);
    lm_plugin plugin = lm_test_arch_plugin(arch, vt);
    char dirs[2][64] = {"/tmp/lm_bf16logits_XXXXXX", "/tmp/lm_bf16logits_XXXXXX"};
    void *sources[2] = {create(arch, "fp32", NULL), create(arch, "bf16", NULL)};
    for (int m = 0; m < 2; m++) {
        ck_assert_ptr_nonnull(mkdtemp(dirs[m]));
        ck_assert_int_eq(vt->init_weights(sources[m], 31), LM_OK);
        ck_assert_msg(lm_model_save(&plugin, sources[m], dirs[m], NULL, NULL, NULL) == LM_OK, "%s",
                      lm_error_message());
    }
    char paths[2][128];
    lm_buffer files[2];
    for (int m = 0; m < 2; m++) {
        snprintf(paths[m], sizeof paths[m], "%s/model.safetensors", dirs[m]);
        memset(&files[m], 0, sizeof files[m]);
        ck_assert_int_eq(lm_file_read(paths[m], &files[m]), LM_OK);
    }
    ck_assert_uint_eq(files[0].len, files[1].len);
    ck_assert_msg(memcmp(files[0].data, files[1].data, files[0].len) == 0, "model.safetensors differs with bf16 logits");
    lm_safetensors *st = NULL;
    ck_assert_int_eq(lm_safetensors_open(paths[1], &st), LM_OK);
    lm_tensor t;
    ck_assert_int_eq(lm_safetensors_find(st, lm_test_small_wte_names[_i], &t), LM_OK);
    ck_assert_int_eq(t.dtype, LM_F32);
    lm_safetensors_close(st);

    void *target = create(arch, "bf16", NULL); /* its own weights: zeros until loaded */
    ck_assert_int_eq(vt->init_weights(target, 99), LM_OK);
    ck_assert_msg(lm_model_load_weights(&plugin, target, paths[1]) == LM_OK, "%s", lm_error_message());
    lm_test_assert_copy_is_rounded(vt, target, "after loading");
    /* The same logits as the model it was saved from. */
    static float logits[2][N * V];
    lm_test_small_batch batch;
    lm_test_small_batch_make(&batch, _i == 0, 4, LM_TEST_SMALL_IDS_RANDOM);
    batch.batch.labels = NULL;
    void *pair[2] = {sources[1], target};
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(vt->set_training(pair[m], 0), LM_OK);
        ck_assert_msg(vt->forward(pair[m], &batch.batch, NULL) == LM_OK, "%s", lm_error_message());
        ck_assert_msg(vt->logits(pair[m], logits[m], (size_t)N * V) == LM_OK, "%s", lm_error_message());
    }
    ck_assert_msg(memcmp(logits[0], logits[1], sizeof logits[0]) == 0, "%s: logits differ after loading", arch);

    /* The host writes other weights: params_written rebuilds the copy. */
    float *params = lm_test_read_params(vt, target);
    lm_param_set set = lm_test_params(vt, target);
    for (size_t j = 0; j < set.n_params; j++) params[j] = params[j] * 0.5f + 1e-3f;
    lm_test_write_params(vt, target, params);
    ck_assert_int_eq(vt->params_written(target), LM_OK);
    lm_test_assert_copy_is_rounded(vt, target, "after params_written");
    lm_free(params);

    for (int m = 0; m < 2; m++) {
        lm_buffer_free(&files[m]);
        vt->destroy(sources[m]);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -r %s", dirs[m]);
        ck_assert_int_eq(system(cmd), 0);
    }
    vt->destroy(target);
}
END_TEST

static Suite *bf16_logits_suite(void) {
    Suite *s = suite_create("bf16_logits");
    TCase *tc = tcase_create("models");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, setting, 0, 2);
    tcase_add_loop_test(tc, loss_and_gradients_match_fp32, 0, 4);
    tcase_add_loop_test(tc, logits_are_widened_bf16, 0, 2);
    tcase_add_loop_test(tc, training_tracks_fp32, 0, 2);
    tcase_add_loop_test(tc, saving_and_loading_rebuild_the_copy, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_main_for_device(BF16_TEST_DEVICE, bf16_logits_suite); }

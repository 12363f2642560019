/* Comparing a model with bf16 storage (logits_dtype, activation_dtype)
 * against the same model in fp32, for the suites that do
 * (tests/bf16_logits, tests/bf16_ffn): relative errors, every parameter
 * tensor within a tolerance of the largest, the BF16 params_copy equal to
 * the parameters rounded, and the two models run side by side (a "pair":
 * models[0] the reference, models[1] the one under test) through one
 * forward and backward or through AdamW steps.  Header-only, like the rest
 * of tests/common. */
#ifndef LMCORE_TESTS_BF16_COMPARE_H
#define LMCORE_TESTS_BF16_COMPARE_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bf16.h"
#include "lmcore/lmcore.h"
#include "model_steps.h"
#include "small_models.h"

static inline double lm_test_relative(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

/* Every tensor of a (the bf16 model's) against b (the fp32 model's):
 * within tol of the largest |b| over all tensors (their shapes, not the
 * padding rows).  Returns the worst. */
static inline double lm_test_compare_tensors(const lm_param_set *set, const float *a, const float *b, double tol,
                                             const char *what) {
    double largest = 0.0, worst = 0.0;
    for (size_t i = 0; i < set->n_descs; i++)
        for (size_t j = 0; j < lm_test_desc_numel(&set->descs[i]); j++)
            largest = fmax(largest, fabs((double)b[set->descs[i].offset + j]));
    ck_assert_msg(largest > 0.0, "%s: all zero", what);
    for (size_t i = 0; i < set->n_descs; i++) {
        const lm_param_desc *d = &set->descs[i];
        for (size_t j = 0; j < lm_test_desc_numel(d); j++) {
            const double e = fabs((double)a[d->offset + j] - (double)b[d->offset + j]) / largest;
            ck_assert_msg(e <= tol, "%s: %s[%zu] = %.9g, fp32 %.9g (%.3g of the largest, tolerance %g)", what,
                          d->name, j, (double)a[d->offset + j], (double)b[d->offset + j], e, tol);
            if (e > worst) worst = e;
        }
    }
    return worst;
}

/* The model's params_copy is its parameters rounded, every element (the
 * padding and gaps too: the copy is of the whole flat buffer). */
static inline void lm_test_assert_copy_is_rounded(const lm_architecture_vtable *vt, void *model, const char *what) {
    lm_param_set set = lm_test_params(vt, model);
    ck_assert_ptr_nonnull(set.params_copy);
    ck_assert_int_eq(set.copy_dtype, LM_BF16);
    float *params = lm_test_read_params(vt, model);
    uint16_t *copy = malloc(set.n_params * sizeof *copy);
    ck_assert_ptr_nonnull(copy);
    ck_assert_int_eq(set.device->ops->download(set.device, copy, set.params_copy, set.n_params * sizeof *copy), LM_OK);
    for (size_t j = 0; j < set.n_params; j++)
        ck_assert_msg(copy[j] == lm_bf16_from_float(params[j]), "%s: copy[%zu] = 0x%04x, params %.9g rounds to 0x%04x",
                      what, j, copy[j], (double)params[j], lm_bf16_from_float(params[j]));
    free(copy);
    lm_free(params);
}

/* ---- a pair: models[0] the reference, models[1] under test ---- */

/* Both models from the same weights (weights_seed), each with a step state
 * whose dropout key is (key_seed, 0); free with lm_test_pair_destroy. */
static inline void lm_test_pair_init(const lm_architecture_vtable *vt, void *const models[2], uint64_t weights_seed,
                                     uint64_t key_seed, lm_step_state *states[2]) {
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(vt->init_weights(models[m], weights_seed), LM_OK);
        states[m] = lm_test_state_new(vt, models[m], key_seed, 0);
    }
}

/* Frees the states (when states is not NULL) and destroys the models. */
static inline void lm_test_pair_destroy(const lm_architecture_vtable *vt, void *const models[2],
                                        lm_step_state *const states[2]) {
    for (int m = 0; m < 2; m++) {
        if (states) lm_test_state_free(vt, models[m], states[m]);
        vt->destroy(models[m]);
    }
}

/* One small batch (causal: GPT-2's; from batch_seed) through both models
 * with the same dropout key (key_seed, micro_batch): forward then backward,
 * or with `fused` forward_train (the fused op) then backward.  Asserts
 * models[1]'s loss finite and within tol of models[0]'s, relative (`label`
 * names the case in a failure); returns that error and leaves the
 * gradients for the caller to compare. */
static inline double lm_test_pair_loss_and_backward(const lm_architecture_vtable *vt, void *const models[2],
                                                    lm_step_state *const states[2], int causal, uint64_t batch_seed,
                                                    uint64_t key_seed, uint64_t micro_batch, int fused, double tol,
                                                    const char *label) {
    lm_test_small_batch batch;
    lm_test_small_batch_make(&batch, causal, batch_seed, LM_TEST_SMALL_IDS_RANDOM);
    float loss[2];
    for (int m = 0; m < 2; m++) {
        lm_test_state_key(vt, models[m], states[m], key_seed, micro_batch);
        if (fused) {
            ck_assert_msg(vt->forward_train(models[m], &batch.batch, states[m], 1.0f) == LM_OK, "%s",
                          lm_error_message());
            loss[m] = lm_test_state_read(vt, models[m], states[m]).loss;
        } else {
            ck_assert_msg(lm_test_forward(vt, models[m], &batch.batch, states[m], &loss[m]) == LM_OK, "%s",
                          lm_error_message());
        }
        ck_assert_msg(vt->backward(models[m], 1.0f, 0) == LM_OK, "%s", lm_error_message());
    }
    const double err = lm_test_relative(loss[1], loss[0]);
    ck_assert_msg(isfinite(loss[1]) && err <= tol,
                  "%s fused %d: loss %.9g, reference %.9g (relative %.3g, tolerance %g)", label, fused,
                  (double)loss[1], (double)loss[0], err, tol);
    return err;
}

/* What lm_test_pair_train measured: the worst relative loss error over the
 * steps, and models[1]'s first and last losses. */
typedef struct {
    double worst;
    float first, last;
} lm_test_pair_training;

/* `steps` AdamW steps of both models from the same weights (seed 2024) on
 * the same batches (four, seeds 500 to 503, revisited: the loss falls), the
 * step's usual path (forward_train, backward, clip, update; dropout key
 * (8, step)).  Asserts at every step models[1]'s loss within tol of
 * models[0]'s, relative, and its params_copy the new parameters rounded;
 * and at the end that both losses fell.  `label` names the case. */
static inline lm_test_pair_training lm_test_pair_train(const lm_architecture_vtable *vt, void *const models[2],
                                                       int causal, int steps, double tol, const char *label) {
    void *optimizers[2];
    lm_step_state *states[2];
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(vt->init_weights(models[m], 2024), LM_OK);
        optimizers[m] = lm_test_adamw_bind(models[m], vt);
        states[m] = lm_test_state_new(vt, models[m], 8, 0);
    }
    float first[2] = {0, 0}, loss[2] = {0, 0};
    double worst = 0.0;
    for (int step = 0; step < steps; step++) {
        lm_test_small_batch batch;
        lm_test_small_batch_make(&batch, causal, 500 + (uint64_t)(step % 4), LM_TEST_SMALL_IDS_RANDOM);
        for (int m = 0; m < 2; m++) {
            lm_test_state_key(vt, models[m], states[m], 8, (uint64_t)step);
            ck_assert_msg(vt->forward_train(models[m], &batch.batch, states[m], 1.0f) == LM_OK, "%s",
                          lm_error_message());
            loss[m] = lm_test_state_read(vt, models[m], states[m]).loss;
            ck_assert_msg(vt->backward(models[m], 1.0f, 0) == LM_OK, "%s", lm_error_message());
            lm_test_adamw_step(vt, models[m], optimizers[m], states[m], 3e-3, 1.0f, NULL);
            if (step == 0) first[m] = loss[m];
        }
        const double err = lm_test_relative(loss[1], loss[0]);
        ck_assert_msg(isfinite(loss[1]) && err <= tol,
                      "%s step %d: loss %.9g, reference %.9g (relative %.3g, tolerance %g)", label, step,
                      (double)loss[1], (double)loss[0], err, tol);
        if (err > worst) worst = err;
        lm_test_assert_copy_is_rounded(vt, models[1], "after an optimizer step");
    }
    ck_assert_msg(loss[1] < first[1] && loss[0] < first[0], "%s: the loss did not fall (%g -> %g)", label,
                  (double)first[1], (double)loss[1]);
    for (int m = 0; m < 2; m++) {
        lm_test_state_free(vt, models[m], states[m]);
        lm_test_adamw()->destroy(optimizers[m]);
    }
    return (lm_test_pair_training){worst, first[1], loss[1]};
}

#endif

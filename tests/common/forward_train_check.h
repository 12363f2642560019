/* The fused classifier through a model (tests/gpt2, tests/bert): training
 * with forward_train (loss and dlogits in one op, as the trainer runs a
 * micro-batch) against forward + backward (crossentropy_forward, then
 * crossentropy_backward in backward), on two models of the same settings
 * and weights.  Header-only, like the rest of tests/common. */
#ifndef LMCORE_TESTS_FORWARD_TRAIN_CHECK_H
#define LMCORE_TESTS_FORWARD_TRAIN_CHECK_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_steps.h"

#define LM_TEST_FORWARD_TRAIN_STEPS 3

/* Steps of two micro-batches each (accumulate 0 then 1, the dropout key
 * the micro-batch's index, loss_scale 1/3 as the trainer's
 * 1 / gradient_accumulation_steps can be), then AdamW.  fused: forward_train, else
 * forward.  Writes every micro-batch's loss, each step's gradient norm,
 * the gradients of the first step (n_params floats into grads). */
static inline void lm_test_forward_train_run(const lm_architecture_vtable *vt, void *model, const lm_batch *batch,
                                             int fused, float *losses, float *norms, float *grads) {
    void *optimizer = lm_test_adamw_bind(model, vt);
    lm_step_state *state = lm_test_state_new(vt, model, 99, 0);
    const float scale = 1.0f / 3.0f; /* not a power of two: every scaling rounds */
    for (int step = 0; step < LM_TEST_FORWARD_TRAIN_STEPS; step++) {
        for (int micro = 0; micro < 2; micro++) {
            const int index = 2 * step + micro;
            lm_test_state_key(vt, model, state, 99, (uint64_t)index);
            lm_status status = fused ? vt->forward_train(model, batch, state, scale) : vt->forward(model, batch, state);
            ck_assert_msg(status == LM_OK, "%s", lm_error_message());
            losses[index] = lm_test_state_read(vt, model, state).loss;
            ck_assert_msg(vt->backward(model, scale, micro) == LM_OK, "%s", lm_error_message());
        }
        if (step == 0) {
            float *first = lm_test_read_grads(vt, model);
            memcpy(grads, first, lm_test_params(vt, model).n_params * sizeof(float));
            lm_free(first);
        }
        lm_test_adamw_step(vt, model, optimizer, state, 1e-3, 1.0f, &norms[step]);
    }
    lm_test_state_free(vt, model, state);
    lm_test_adamw()->destroy(optimizer);
}

/* models[0] trains with forward, models[1] with forward_train, from the
 * same weights.  tol < 0: bit for bit (the CPU: the fused op is the two
 * ops' arithmetic); else losses within tol relative and the first step's
 * gradients within tol of their largest magnitude (a GPU, whose fused
 * kernel sums in another order: last-ulp differences). */
static inline void lm_test_check_forward_train(const lm_architecture_vtable *vt, void *models[2],
                                               const lm_batch *batch, double tol, const char *label) {
    enum { MICRO = 2 * LM_TEST_FORWARD_TRAIN_STEPS };
    const size_t n = lm_test_params(vt, models[0]).n_params;
    float losses[2][MICRO], norms[2][LM_TEST_FORWARD_TRAIN_STEPS], *grads[2], *params[2];
    ck_assert_ptr_nonnull(vt->forward_train);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(lm_alloc((void **)&grads[k], n * sizeof(float), "test grads"), LM_OK);
        lm_test_forward_train_run(vt, models[k], batch, k, losses[k], norms[k], grads[k]);
        params[k] = lm_test_read_params(vt, models[k]);
    }
    if (tol < 0) {
        ck_assert_msg(memcmp(losses[0], losses[1], sizeof losses[0]) == 0, "%s: forward_train changed the losses",
                      label);
        ck_assert_msg(memcmp(grads[0], grads[1], n * sizeof(float)) == 0, "%s: forward_train changed the gradients",
                      label);
        ck_assert_msg(memcmp(norms[0], norms[1], sizeof norms[0]) == 0, "%s: forward_train changed the norms", label);
        ck_assert_msg(memcmp(params[0], params[1], n * sizeof(float)) == 0,
                      "%s: forward_train changed the weights after %d steps", label, LM_TEST_FORWARD_TRAIN_STEPS);
        printf("%s: forward_train = forward + backward, bit for bit (%d micro-batches, %d AdamW steps)\n", label,
               MICRO, LM_TEST_FORWARD_TRAIN_STEPS);
    } else {
        double worst_loss = 0.0, err = 0.0, mag = 0.0;
        for (int i = 0; i < MICRO; i++) {
            double rel = fabs((double)losses[1][i] - losses[0][i]) / fabs((double)losses[0][i]);
            if (!(rel <= worst_loss)) worst_loss = rel;
        }
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)grads[1][i] - grads[0][i]);
            if (!(d <= err)) err = d;
            if (fabs((double)grads[0][i]) > mag) mag = fabs((double)grads[0][i]);
        }
        printf("%s: forward_train vs forward + backward: worst loss relative difference %.2e, first-step "
               "gradients max abs difference %.2e (largest %.2e)\n",
               label, worst_loss, err, mag);
        ck_assert_msg(worst_loss <= tol, "%s: losses differ by %.3g relative", label, worst_loss);
        ck_assert_msg(err <= tol * mag, "%s: gradients differ by %.3g (largest %.3g)", label, err, mag);
    }
    for (int k = 0; k < 2; k++) {
        lm_free(grads[k]);
        lm_free(params[k]);
    }
}

#endif

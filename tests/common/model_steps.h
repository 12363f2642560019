/* A few training steps of an architecture plugin on one batch, for the
 * tests that train two models and compare them (tests/gpt2, tests/bert).
 * Header-only, like the rest of tests/common. */
#ifndef LMCORE_TESTS_MODEL_STEPS_H
#define LMCORE_TESTS_MODEL_STEPS_H

#include <check.h>
#include <stdint.h>

#include "lmcore/architecture.h"
#include "lmcore/status.h"

/* `steps` steps of zero_grad, forward, backward, grad_norm and AdamW
 * (lr 1e-3, weight decay 0.01, gradients scaled by 0.5) on `batch`, with
 * dropout seed 99 and the step number as the dropout step; writes each
 * step's loss and gradient norm.  Fails the test on any error. */
static inline void lm_test_train_steps(const lm_architecture_vtable *vt, void *model, lm_batch *batch, int steps,
                                       float *losses, float *norms) {
    for (int step = 0; step < steps; step++) {
        batch->seed = 99;
        batch->step = (uint64_t)step;
        ck_assert_int_eq(vt->zero_grad(model), LM_OK);
        ck_assert_msg(vt->forward(model, batch, &losses[step]) == LM_OK, "%s", lm_error_message());
        ck_assert_msg(vt->backward(model, 1.0f) == LM_OK, "%s", lm_error_message());
        ck_assert_msg(vt->grad_norm(model, &norms[step]) == LM_OK, "%s", lm_error_message());
        lm_optim_params p = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                             .grad_scale = 0.5f, .t = step + 1};
        ck_assert_msg(vt->optimizer_step(model, &p) == LM_OK, "%s", lm_error_message());
    }
}

/* The recompute= settings each architecture must train with bit for bit as
 * without: with attention dropout, and without it (no dropped
 * probabilities are kept then; att aliases preatt). */
typedef struct lm_test_recompute_case {
    const char *setting;
    const char *attention_dropout;
} lm_test_recompute_case;
static const lm_test_recompute_case lm_test_recompute_cases[] = {
    {"recompute=activations", "0.1"},
    {"recompute=attention", "0.1"},
    {"recompute=activations", "0"},
    {"recompute=attention", "0"},
};
#define LM_TEST_RECOMPUTE_CASES (sizeof lm_test_recompute_cases / sizeof lm_test_recompute_cases[0])

#endif

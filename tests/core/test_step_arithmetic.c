/* The reference step arithmetic of liblmcore (lmcore/device.h: what every
 * device computes for step_clip and step_finish) against
 * torch.nn.utils.clip_grad_norm_: the coefficient max_norm / (norm + 1e-6)
 * clamped at 1, so that a norm a hair under max_norm is scaled too; a
 * non-finite norm flagged once with the step that saw it, including a
 * finite sum of squares whose root is beyond FLT_MAX. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "lmcore/lmcore.h"
#include "test_main.h"

static lm_step_state state_at(int64_t step, double max_grad_norm) {
    lm_step_state s;
    memset(&s, 0, sizeof s);
    s.step = step;
    s.max_grad_norm = max_grad_norm;
    s.clip_scale = 1.0f;
    return s;
}

/* torch: clip_coef = max_norm / (total_norm + 1e-6); clamp(max=1.0). */
static float torch_clip_scale(double max_norm, float norm) {
    double coefficient = max_norm / ((double)norm + 1e-6);
    return coefficient < 1.0 ? (float)coefficient : 1.0f;
}

START_TEST(clip_scale_is_torchs_clamped_coefficient) {
    const struct {
        double sum, max_norm;
    } cases[] = {
        {4.0, 1.0},                                      /* norm 2: halved, less a hair */
        {1.0, 1.0},                                      /* norm == max: 1 / (1 + 1e-6) < 1 */
        {(1.0 - 5e-7) * (1.0 - 5e-7), 1.0},              /* under max by less than 1e-6: still scaled */
        {(1.0 - 4e-6) * (1.0 - 4e-6), 1.0},              /* under max by more: 1 */
        {0.25, 1.0},                                     /* well under: 1 */
        {1e6, 0.5},
        {0.0, 1.0},                                      /* no gradient: 1 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lm_step_state s = state_at(7, cases[i].max_norm);
        lm_step_clip_from_sum(&s, cases[i].sum);
        const float norm = (float)sqrt(cases[i].sum);
        ck_assert_msg(s.grad_norm == norm, "case %zu: norm %.9g, want %.9g", i, s.grad_norm, norm);
        const float want = torch_clip_scale(cases[i].max_norm, norm);
        ck_assert_msg(s.clip_scale == want, "case %zu (sum %.17g, max %g): clip scale %.9g, torch %.9g", i,
                      cases[i].sum, cases[i].max_norm, s.clip_scale, want);
        ck_assert_int_eq(s.bad_step, 0);
    }
    /* The case the old "norm > max" test got wrong: scaled, below 1. */
    lm_step_state s = state_at(0, 1.0);
    lm_step_clip_from_sum(&s, (1.0 - 5e-7) * (1.0 - 5e-7));
    ck_assert(s.clip_scale < 1.0f);
    /* max_grad_norm 0: no clipping whatever the norm (the Trainer's max_grad_norm=0). */
    s = state_at(0, 0.0);
    lm_step_clip_from_sum(&s, 1e12);
    ck_assert(s.clip_scale == 1.0f);
}
END_TEST

START_TEST(non_finite_norm_is_flagged_once) {
    const double sums[] = {NAN, INFINITY, 1e80 /* finite, but its root is beyond FLT_MAX */};
    for (size_t i = 0; i < sizeof sums / sizeof sums[0]; i++) {
        lm_step_state s = state_at(41, 1.0);
        lm_step_clip_from_sum(&s, sums[i]);
        ck_assert_msg(s.bad_step == 42, "sum %g: bad_step %lld, want 42 (the step that saw it, counted from 1)",
                      sums[i], (long long)s.bad_step);
        ck_assert_int_eq(s.bad_what, LM_BAD_GRAD_NORM);
        ck_assert(!isfinite(s.bad_value));
        ck_assert(!isfinite(s.grad_norm));
    }
    /* A finite sum just under the float limit is no failure. */
    lm_step_state s = state_at(41, 1.0);
    lm_step_clip_from_sum(&s, (double)FLT_MAX * (double)FLT_MAX * 0.25);
    ck_assert_int_eq(s.bad_step, 0);
    ck_assert(isfinite(s.grad_norm));
    /* An earlier flag stands. */
    s = state_at(41, 1.0);
    s.bad_step = 3;
    s.bad_what = LM_BAD_LOSS;
    lm_step_clip_from_sum(&s, NAN);
    ck_assert_int_eq(s.bad_step, 3);
    ck_assert_int_eq(s.bad_what, LM_BAD_LOSS);
}
END_TEST

START_TEST(finish_resets_the_clip_and_counts_the_step) {
    lm_step_state s = state_at(9, 1.0);
    lm_step_micro_batch_end(&s, 3.0, 4.0, 1);
    s.loss = 2.0f;
    lm_step_micro_batch_end(&s, 1.0, 4.0, 1);
    lm_step_clip_from_sum(&s, 16.0);
    ck_assert(s.clip_scale < 1.0f);
    lm_step_finish(&s);
    ck_assert_int_eq(s.step, 10);
    ck_assert(s.clip_scale == 1.0f);
    ck_assert(s.loss_sum == 0.0);
    ck_assert(s.step_loss == 0.5);  /* 0 * 3/4 + 2 * 1/4 */
    for (int i = 0; i < LM_LOSS_SUMS; i++) ck_assert(s.loss_sums[i] == 0.5);
}
END_TEST

int main(void) {
    Suite *s = suite_create("step_arithmetic");
    TCase *tc = tcase_create("clip");
    tcase_add_test(tc, clip_scale_is_torchs_clamped_coefficient);
    tcase_add_test(tc, non_finite_norm_is_flagged_once);
    tcase_add_test(tc, finish_resets_the_clip_and_counts_the_step);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}

/* Learning-rate schedules against transformers' get_scheduler
 * (fixtures/schedules.json, from gen_schedule_fixture.py): every name,
 * warmup as steps or as a ratio, each schedule's own settings; the values
 * the device would compute (lm_schedule_lr of lmcore/step.h) at every step
 * and one past the end; and the refusals, each naming the key. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lmcore/lmcore.h"
#include "schedule.h"
#include "test_main.h"

#define FIXTURE LM_TEST_SOURCE_DIR "/tests/core/fixtures/schedules.json"

static double number(const lm_json *o, const char *key) {
    const lm_json *v = lm_json_get(o, key);
    ck_assert_msg(v && lm_json_type_of(v) == LM_JSON_NUMBER, "fixture: %s is not a number", key);
    return lm_json_number(v);
}

/* The case's lr_scheduler_kwargs as a config (NULL when there are none). */
static lm_config *kwargs_of(const lm_json *kwargs) {
    if (!kwargs || lm_json_size(kwargs) == 0) return NULL;
    lm_config *cfg = NULL;
    ck_assert_int_eq(lm_config_create(&cfg, "lr_scheduler_kwargs"), LM_OK);
    for (size_t i = 0; i < lm_json_size(kwargs); i++) {
        size_t len;
        const char *key = lm_json_key_at(kwargs, i, &len);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)len, key);
        ck_assert_int_eq(lm_config_set_number(cfg, name, lm_json_number(lm_json_at(kwargs, i))), LM_OK);
    }
    return cfg;
}

START_TEST(every_schedule_matches_transformers) {
    lm_json *root = NULL;
    ck_assert_msg(lm_json_parse_file(FIXTURE, &root) == LM_OK, "%s", lm_error_message());
    const lm_json *cases = lm_json_get(root, "cases");
    ck_assert(cases && lm_json_size(cases) >= 14);
    int names_seen = 0;
    for (size_t c = 0; c < lm_json_size(cases); c++) {
        const lm_json *k = lm_json_at(cases, c);
        size_t len;
        const char *name_text = lm_json_string(lm_json_get(k, "name"), &len);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)len, name_text);
        lm_config *kwargs = kwargs_of(lm_json_get(k, "kwargs"));
        lm_schedule s;
        lm_status status = lm_schedule_make(&s, name, number(k, "learning_rate"), (int64_t)number(k, "total_steps"),
                                            (int64_t)number(k, "warmup_steps"), number(k, "warmup_ratio"), kwargs);
        ck_assert_msg(status == LM_OK, "case %zu (%s): %s", c, name, lm_error_message());
        ck_assert_str_eq(lm_schedule_name(s.kind), name);
        const lm_json *lrs = lm_json_get(k, "lrs");
        for (size_t step = 0; step < lm_json_size(lrs); step++) {
            double want = lm_json_number(lm_json_at(lrs, step)), got = lm_schedule_lr(&s, (int64_t)step);
            /* Python's float arithmetic in another order (base * factor):
             * a few ulps apart at most. */
            ck_assert_msg(fabs(got - want) <= 4e-16 * fabs(want) + 1e-300,
                          "%s case %zu, step %zu: lmcore %.17g, transformers %.17g", name, c, step, got, want);
        }
        names_seen |= 1 << s.kind;
        lm_config_destroy(kwargs);
    }
    /* Every get_scheduler name was covered. */
    ck_assert_int_eq(names_seen, (1 << LM_SCHEDULE_HOST) - 1);
    lm_json_free(root);
}
END_TEST

/* lmcore 0.1's linear schedule, which runs before this one were made with:
 * the same bits (the quickstart's validation loss depends on it). */
START_TEST(linear_keeps_the_old_arithmetic) {
    lm_schedule s;
    ck_assert_int_eq(lm_schedule_make(&s, "linear", 1e-3, 292, 20, 0.0, NULL), LM_OK);
    for (int64_t step = 0; step < 300; step++) {
        double old;
        if (step < 20) old = 1e-3 * (double)step / 20.0;
        else {
            double remaining = (double)(292 - step), span = (double)(292 - 20);
            old = 1e-3 * (remaining > 0 ? remaining : 0) / span;
        }
        ck_assert_msg(lm_schedule_lr(&s, step) == old, "step %lld", (long long)step);
    }
}
END_TEST

static void expect_refusal(const char *name, double lr, int64_t total, int64_t warmup, double ratio,
                           const char *kwarg, double value, const char *needle) {
    lm_config *kwargs = NULL;
    if (kwarg) {
        ck_assert_int_eq(lm_config_create(&kwargs, "lr_scheduler_kwargs"), LM_OK);
        ck_assert_int_eq(lm_config_set_number(kwargs, kwarg, value), LM_OK);
    }
    lm_schedule s;
    ck_assert_int_eq(lm_schedule_make(&s, name, lr, total, warmup, ratio, kwargs), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), needle) != NULL, "'%s' not in: %s", needle, lm_error_message());
    lm_config_destroy(kwargs);
}

START_TEST(bad_settings_are_refused_by_name) {
    expect_refusal("cosine_annealing", 1e-3, 10, 0, 0, NULL, 0,
                   "lr_scheduler_type 'cosine_annealing' is unknown: use linear, cosine, cosine_with_restarts, "
                   "polynomial, constant, constant_with_warmup, inverse_sqrt, or a Lua function");
    expect_refusal("constant", 1e-3, 10, 3, 0, NULL, 0, "'constant' has no warmup");
    expect_refusal("linear", 1e-3, 10, 3, 0.1, NULL, 0, "give warmup_steps (3) or warmup_ratio (0.1), not both");
    expect_refusal("linear", 1e-3, 10, 0, 1.5, NULL, 0, "warmup_ratio must be in [0, 1]");
    expect_refusal("linear", 1e-3, 10, -1, 0, NULL, 0, "warmup_steps must be >= 0");
    expect_refusal("linear", 0.0, 10, 0, 0, NULL, 0, "learning_rate must be a positive number");
    expect_refusal("linear", 1e-3, 10, 0, 0, "num_cycles", 2, "unknown key 'num_cycles' for lr_scheduler_kwargs");
    expect_refusal("cosine", 1e-3, 10, 0, 0, "power", 2, "unknown key 'power' for lr_scheduler_kwargs (known: num_cycles)");
    expect_refusal("cosine", 1e-3, 10, 0, 0, "num_cycles", -1, "num_cycles must be > 0");
    expect_refusal("polynomial", 1e-3, 10, 0, 0, "lr_end", 1e-2, "lr_end (0.01) must be >= 0 and below the learning");
    expect_refusal("polynomial", 1e-8, 10, 0, 0, NULL, 0, "must be above lr_end");
    expect_refusal("inverse_sqrt", 1e-3, 10, 0, 0, "timescale", 0, "timescale must be > 0");
}
END_TEST

int main(void) {
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("get_scheduler");
    tcase_add_test(tc, every_schedule_matches_transformers);
    tcase_add_test(tc, linear_keeps_the_old_arithmetic);
    tcase_add_test(tc, bad_settings_are_refused_by_name);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}

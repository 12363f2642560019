/* Logger 'jsonl': one line per STEP event (the trainer's logging points),
 * thinned by `every` with the mean step loss since the previous step line,
 * one per evaluation (at any step: mid-epoch ones carry a fractional
 * epoch_index), run begin/end and message; none per PROGRESS event. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logger_test_util.h"
#include "test_main.h"

static char *open_jsonl(test_logger *t, const char *dir, const char *every) {
    char *path = malloc(600);
    snprintf(path, 600, "%s/log.jsonl", dir);
    char arg[700];
    snprintf(arg, sizeof arg, "path=%s", path);
    lm_config *cfg = test_config("logger 'jsonl'", arg, every, NULL);
    lm_status s = test_logger_open(t, "jsonl", cfg);
    ck_assert_msg(s == LM_OK, "create failed: %s", lm_error_message());
    lm_config_destroy(cfg);
    return path;
}

static void send(test_logger *t, lm_event_kind kind, int64_t step, int64_t total, double epoch, const lm_scalar *sc,
                 size_t n) {
    lm_event ev = test_event(kind, step, 0.5 * (double)step, sc, n);
    ev.total_steps = total;
    ev.epoch = epoch;
    if (kind == LM_EVENT_RUN_BEGIN) ev.text = "gpt2 on cpu";
    lm_status s = test_logger_log(t, &ev);
    ck_assert_msg(s == LM_OK, "log failed: %s", lm_error_message());
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* A run that fails before its first event (a bad setting found after the
 * loggers were made) must leave no empty log.jsonl behind. */
START_TEST(no_event_no_file) {
    char *dir = test_temp_dir("jsonl");
    test_logger t;
    char *path = open_jsonl(&t, dir, NULL);
    test_logger_close(&t);
    ck_assert_int_ne(access(path, F_OK), 0);
    test_remove_dir(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(progress_makes_no_line_and_evaluations_come_at_any_step) {
    char *dir = test_temp_dir("jsonl");
    test_logger t;
    char *path = open_jsonl(&t, dir, NULL);
    send(&t, LM_EVENT_RUN_BEGIN, 0, 20, 0, NULL, 0);
    for (int64_t s = 1; s <= 20; s++) {
        send(&t, LM_EVENT_PROGRESS, s, 20, (double)s / 8.0, NULL, 0);
        if (s % 5 == 0 || s == 20) { /* logging_steps 5 */
            lm_scalar sc[] = {{"loss", 10.0 - (double)s / 4.0}, {"learning_rate", 1e-3}};
            send(&t, LM_EVENT_STEP, s, 20, (double)s / 8.0, sc, 2);
        }
        if (s == 6 || s == 16) { /* eval_steps: mid-epoch, 8 steps per epoch */
            lm_scalar es[] = {{"eval_loss", 7.5}, {"epoch_index", (double)s / 8.0}};
            send(&t, LM_EVENT_EVAL, s, 20, (double)s / 8.0, es, 2);
        }
    }
    test_logger_close(&t);
    char *text = test_read_file(path, NULL);
    ck_assert_int_eq(count(text, "\n"), 1 + 4 + 2);
    ck_assert_int_eq(count(text, "\"event\":\"step\""), 4);
    ck_assert_int_eq(count(text, "progress"), 0);
    ck_assert_ptr_nonnull(strstr(text, "{\"event\":\"step\",\"step\":5,\"total_steps\":20,\"epoch\":0.625,"));
    ck_assert_ptr_nonnull(strstr(text, "\"loss\":8.75,"));
    ck_assert_ptr_nonnull(strstr(text, "{\"event\":\"eval\",\"step\":6,\"total_steps\":20,\"epoch\":0.75,"));
    ck_assert_ptr_nonnull(strstr(text, "\"epoch_index\":0.75}"));
    ck_assert_ptr_nonnull(strstr(text, "\"epoch_index\":2}"));
    free(text);
    free(path);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(every_thins_logging_points_weighting_their_intervals) {
    char *dir = test_temp_dir("jsonl");
    test_logger t;
    char *path = open_jsonl(&t, dir, "every=100");
    send(&t, LM_EVENT_RUN_BEGIN, 0, 130, 0, NULL, 0);
    const int64_t at[] = {50, 100, 130};
    const double losses[] = {4.0, 3.0, 2.0};
    for (int i = 0; i < 3; i++) {
        lm_scalar sc[] = {{"loss", losses[i]}};
        send(&t, LM_EVENT_STEP, at[i], 130, (double)at[i] / 100.0, sc, 1);
    }
    test_logger_close(&t);
    char *text = test_read_file(path, NULL);
    ck_assert_int_eq(count(text, "\"event\":\"step\""), 2); /* 100 and the last step, not 50 */
    ck_assert_ptr_nonnull(strstr(text, "\"step\":100,\"total_steps\":130,\"epoch\":1,\"elapsed\":50,\"loss\":3.5}"));
    ck_assert_ptr_nonnull(strstr(text, "\"step\":130,\"total_steps\":130,\"epoch\":1.3,\"elapsed\":65,\"loss\":2}"));
    free(text);
    free(path);

    /* A resumed run (RUN_BEGIN at 100): its first STEP covers 100..150 only. */
    path = open_jsonl(&t, dir, "every=100");
    send(&t, LM_EVENT_RUN_BEGIN, 100, 230, 1, NULL, 0);
    lm_scalar a[] = {{"loss", 3.0}}, b[] = {{"loss", 2.0}};
    send(&t, LM_EVENT_STEP, 150, 230, 1.5, a, 1);
    send(&t, LM_EVENT_STEP, 200, 230, 2.0, b, 1);
    test_logger_close(&t);
    text = test_read_file(path, NULL);
    ck_assert_ptr_nonnull(strstr(text, "\"step\":200,\"total_steps\":230,\"epoch\":2,\"elapsed\":100,\"loss\":2.5}"));
    free(text);
    free(path);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("logger_jsonl");
    TCase *tc = tcase_create("jsonl");
    tcase_add_test(tc, no_event_no_file);
    tcase_add_test(tc, progress_makes_no_line_and_evaluations_come_at_any_step);
    tcase_add_test(tc, every_thins_logging_points_weighting_their_intervals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(suite(), NULL);
}

/* Logger 'csv': the file equals the one Python's csv module writes for the
 * same rows (fixtures/gen_csv_fixture.py: quoting, header order, empty
 * fields, number spelling); PROGRESS events make no row; every row is on
 * disk at once; `every` thins the logging points, the loss of a row being
 * the mean step loss since the previous one; numbers read back exactly;
 * errors are clear. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logger_test_util.h"
#include "test_main.h"

#define FIXTURE LM_TEST_SOURCE_DIR "/tests/loggers/fixtures/csv_expected.csv"

typedef struct scripted {
    lm_event_kind kind;
    int64_t step;
    double elapsed;
    size_t n;
    lm_scalar scalars[7];
} scripted;

/* Keep in sync with fixtures/gen_csv_fixture.py (which leaves out what
 * makes no row: RUN_BEGIN, MESSAGE, PROGRESS). */
static const scripted script[] = {
    {LM_EVENT_RUN_BEGIN, 0, 0.0, 1, {{"n_params", 1000}}},
    {LM_EVENT_PROGRESS, 1, 0.2, 0, {{NULL, 0}}},
    {LM_EVENT_STEP, 1, 0.25, 7,
     {{"loss", 10.5},
      {"learning_rate", 2e-05},
      {"grad_norm", 1.0 / 3.0},
      {"tokens_per_second", 1500.0},
      {"rss,mb", 100.5},
      {"say \"hi\"", 3.0},
      {"multi\nline", 1e-300}}},
    {LM_EVENT_STEP, 2, 0.5, 6,
     {{"loss", 9.75},
      {"learning_rate", 1e-05},
      {"grad_norm", 2.5},
      {"tokens_per_second", 1600.0},
      {"rss,mb", 101.0},
      {"multi\nline", 1e20}}},
    {LM_EVENT_PROGRESS, 2, 0.45, 0, {{NULL, 0}}},
    {LM_EVENT_MESSAGE, 2, 0.6, 0, {{NULL, 0}}},
    {LM_EVENT_EVAL, 2, 0.75, 6,
     {{"train_loss", 10.125},
      {"eval_loss", 9.5},
      {"perplexity", 13359.726829661873},
      {"epoch_index", 1},
      {"eval_runtime", 0.125},
      {"eval_samples_per_second", 96}}},
    {LM_EVENT_PROGRESS, 3, 0.9, 0, {{NULL, 0}}},
    {LM_EVENT_STEP, 3, 1.0, 6,
     {{"loss", 9.0},
      {"learning_rate", 0.0},
      {"grad_norm", 0.125},
      {"tokens_per_second", 1700.0},
      {"rss,mb", 99.0},
      {"late_metric", 5.0}}},
    {LM_EVENT_RUN_END, 3, 1.25, 6,
     {{"train_runtime", 1.25},
      {"train_samples_per_second", 19.2},
      {"train_steps_per_second", 2.4},
      {"train_loss", 9.75},
      {"eval_loss", NAN},
      {"perplexity", NAN}}},
};
#define N_SCRIPT (sizeof script / sizeof script[0])

static void log_scripted(test_logger *t, const scripted *s) {
    lm_event ev = test_event(s->kind, s->step, s->elapsed, s->scalars, s->n);
    ev.text = s->kind == LM_EVENT_MESSAGE ? "hello, \"world\"" : NULL;
    lm_status st = test_logger_log(t, &ev);
    ck_assert_msg(st == LM_OK, "log failed: %s", lm_error_message());
}

static char *open_csv(test_logger *t, const char *dir, const char *extra) {
    char *path = malloc(600);
    snprintf(path, 600, "%s/log.csv", dir);
    char arg[700];
    snprintf(arg, sizeof arg, "path=%s", path);
    lm_config *cfg = test_config("logger 'csv'", arg, extra, NULL);
    lm_status s = test_logger_open(t, "csv", cfg);
    ck_assert_msg(s == LM_OK, "create failed: %s", lm_error_message());
    lm_config_destroy(cfg);
    return path;
}

static int count_lines(const char *text) {
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

START_TEST(file_equals_python_csv_writer) {
    char *dir = test_temp_dir("csv");
    test_logger t;
    char *path = open_csv(&t, dir, NULL);
    for (size_t i = 0; i < N_SCRIPT; i++) log_scripted(&t, &script[i]);
    test_logger_close(&t);
    char *got = test_read_file(path, NULL);
    char *want = test_read_file(FIXTURE, NULL);
    ck_assert_msg(want != NULL, "missing fixture %s: run fixtures/gen_csv_fixture.py", FIXTURE);
    ck_assert_str_eq(got, want);
    free(got);
    free(want);
    free(path);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(rows_are_flushed_one_by_one) {
    char *dir = test_temp_dir("csv");
    test_logger t;
    char *path = open_csv(&t, dir, NULL);
    log_scripted(&t, &script[0]); /* run begin: no row, and the header waits for the first step */
    log_scripted(&t, &script[1]); /* PROGRESS: no row either */
    /* Nothing written yet, so no file: a run that fails before its first
     * row leaves no empty log.csv behind. */
    ck_assert_int_ne(access(path, F_OK), 0);
    log_scripted(&t, &script[2]);
    char *text = test_read_file(path, NULL);
    ck_assert_int_eq(count_lines(text), 3); /* header (with a quoted line break inside) + one row */
    ck_assert_ptr_nonnull(strstr(text, "\nstep,1,0.5,0.25,10.5,"));
    free(text);
    log_scripted(&t, &script[4]); /* PROGRESS */
    text = test_read_file(path, NULL);
    ck_assert_int_eq(count_lines(text), 3);
    free(text);
    log_scripted(&t, &script[6]); /* EVAL */
    text = test_read_file(path, NULL);
    ck_assert_int_eq(count_lines(text), 4);
    free(text);
    test_logger_close(&t);
    free(path);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(every_averages_the_loss_of_its_window) {
    char *dir = test_temp_dir("csv");
    test_logger t;
    char *path = open_csv(&t, dir, "every=2");
    double losses[] = {4.0, 3.0, 2.5, 1.25, 1.0, 0.5};
    for (int i = 0; i < 5; i++) { /* steps 1..5 of 6: rows at 2 and 4; 5 waits */
        lm_scalar s[] = {{"loss", losses[i]}, {"learning_rate", 1e-3}};
        lm_event ev = test_event(LM_EVENT_STEP, i + 1, 0.5 * (i + 1), s, 2);
        ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    }
    lm_scalar s[] = {{"loss", losses[5]}, {"learning_rate", 1e-3}};
    lm_event ev = test_event(LM_EVENT_STEP, 6, 3.0, s, 2); /* the last step is always written */
    ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    test_logger_close(&t);
    char *text = test_read_file(path, NULL);
    ck_assert_int_eq(count_lines(text), 4);
    ck_assert_ptr_nonnull(strstr(text, "\nstep,2,1,1,3.5,0.001,"));
    ck_assert_ptr_nonnull(strstr(text, "\nstep,4,2,2,1.875,0.001,"));
    ck_assert_ptr_nonnull(strstr(text, "\nstep,6,3,3,0.75,0.001,"));
    free(text);
    free(path);

    /* Logging points 50 steps apart, the last one 30: each STEP's loss
     * counts with the steps it covers, (4 x 50 + 3 x 50 + 2 x 30) / 130. */
    path = open_csv(&t, dir, "every=1000");
    ev = test_event(LM_EVENT_RUN_BEGIN, 0, 0, NULL, 0);
    ev.total_steps = 130;
    ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    const int64_t at[] = {50, 100, 130};
    for (int i = 0; i < 3; i++) {
        lm_scalar loss[] = {{"loss", 4.0 - i}};
        ev = test_event(LM_EVENT_STEP, at[i], 0.5 * (double)at[i], loss, 1);
        ev.total_steps = 130;
        ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    }
    test_logger_close(&t);
    text = test_read_file(path, NULL);
    ck_assert_int_eq(count_lines(text), 2);
    const char *row = strstr(text, "\nstep,130,65,65,");
    ck_assert_msg(row != NULL, "no row at the last step in:\n%s", text);
    ck_assert_double_eq(strtod(row + 16, NULL), 410.0 / 130.0); /* read back exactly */
    free(text);
    free(path);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

/* An evaluation before the first step (eval_on_start) waits for that step
 * to fix the header, then comes first: the step columns are not lost.  A
 * run with evaluations and no step at all writes them at its end. */
START_TEST(an_evaluation_before_the_first_step_keeps_the_step_columns) {
    char *dir = test_temp_dir("csv");
    test_logger t;
    char *path = open_csv(&t, dir, NULL);
    log_scripted(&t, &script[0]); /* run begin */
    lm_event ev = test_event(LM_EVENT_EVAL, 0, 0.125, script[6].scalars, script[6].n);
    ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    ck_assert_int_ne(access(path, F_OK), 0); /* held: no header yet */
    log_scripted(&t, &script[2]); /* the first STEP */
    char *text = test_read_file(path, NULL);
    ck_assert_msg(strncmp(text, "event,step,epoch,elapsed,loss,learning_rate,grad_norm,", 54) == 0, "%s", text);
    const char *eval_row = strstr(text, "\neval,0,");
    const char *step_row = strstr(text, "\nstep,1,");
    ck_assert_msg(eval_row && step_row && eval_row < step_row, "rows out of order:\n%s", text);
    ck_assert_ptr_nonnull(strstr(eval_row, ",9.5,13359.726829661873,1,0.125,96,"));
    free(text);
    test_logger_close(&t);
    free(path);

    path = open_csv(&t, dir, NULL);
    ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    test_logger_close(&t); /* stopped before any step: the row is still written */
    text = test_read_file(path, NULL);
    ck_assert_msg(text && strstr(text, "\neval,0,") != NULL, "%s", text ? text : "(no file)");
    free(text);
    free(path);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(numbers_read_back_exactly) {
    char *dir = test_temp_dir("csv");
    test_logger t;
    char *path = open_csv(&t, dir, NULL);
    const double values[] = {0.1, 1.0 / 3.0, 2.0 / 3.0 * 1e-7, 6.02214076e23, -1e-310, 123456789.123, 1e14, 2.5e-5};
    size_t n = sizeof values / sizeof *values;
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    lm_scalar s[8];
    for (size_t i = 0; i < n; i++) s[i] = (lm_scalar){names[i], values[i]};
    lm_event ev = test_event(LM_EVENT_STEP, 1, 0.1, s, n);
    ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    test_logger_close(&t);
    char *text = test_read_file(path, NULL);
    char *row = strstr(text, "\nstep,");
    ck_assert_ptr_nonnull(row);
    char *field = row + 1;
    for (int skip = 0; skip < 4; skip++) field = strchr(field, ',') + 1; /* event,step,epoch,elapsed */
    for (size_t i = 0; i < n; i++) {
        char *end;
        double v = strtod(field, &end);
        ck_assert_msg(v == values[i], "value %zu: wrote '%.*s' for %.17g", i, (int)(end - field), field, values[i]);
        ck_assert(*end == ',');
        field = end + 1;
    }
    ck_assert_ptr_nonnull(strstr(text, ",0.1,"));        /* short, not 0.10000000000000001 */
    ck_assert_ptr_nonnull(strstr(text, ",100000000000000,")); /* integral: no exponent */
    free(text);
    free(path);
    test_remove_dir(dir);
    free(dir);
}
END_TEST

START_TEST(bad_settings_are_clear_errors) {
    test_logger t;
    lm_config *cfg = test_config("logger 'csv'", NULL);
    ck_assert_int_eq(test_logger_open(&t, "csv", cfg), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "needs a 'path'"));
    lm_config_destroy(cfg);
    cfg = test_config("logger 'csv'", "path=/nonexistent_dir_lmcore/x.csv", NULL);
    ck_assert_int_eq(test_logger_open(&t, "csv", cfg), LM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "/nonexistent_dir_lmcore/x.csv"));
    lm_config_destroy(cfg);
    cfg = test_config("logger 'csv'", "path=/tmp/lm_never.csv", "every=0", NULL);
    ck_assert_int_eq(test_logger_open(&t, "csv", cfg), LM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "'every'"));
    lm_config_destroy(cfg);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("logger_csv");
    TCase *tc = tcase_create("csv");
    tcase_add_test(tc, file_equals_python_csv_writer);
    tcase_add_test(tc, rows_are_flushed_one_by_one);
    tcase_add_test(tc, every_averages_the_loss_of_its_window);
    tcase_add_test(tc, an_evaluation_before_the_first_step_keeps_the_step_columns);
    tcase_add_test(tc, numbers_read_back_exactly);
    tcase_add_test(tc, bad_settings_are_clear_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(suite(), NULL);
}

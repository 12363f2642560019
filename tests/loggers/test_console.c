/* Logger 'console': on a terminal the progress bar is redrawn on PROGRESS
 * events (every optimizer step, at most every 0.1 s, always at the last
 * step) with the loss of the last STEP; plain lines come at STEP events
 * whose step is a multiple of `every` (and the last), with the mean step
 * loss since the previous line; after a resume the rate counts only this
 * process's steps; evaluations make a table that keeps the reference
 * report's "Epoch | Training Loss | ..." columns while they fall on epoch
 * ends and gains a Step column from the first that does not.  stdout and
 * stderr are captured into files around each run. */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logger_test_util.h"
#include "test_main.h"

typedef struct capture {
    char *dir;
    int saved_out, saved_err;
    char *out, *err; /* what was printed, once captured */
} capture;

static void capture_begin(capture *c) {
    memset(c, 0, sizeof *c);
    c->dir = test_temp_dir("console");
    char path[600];
    fflush(stdout);
    fflush(stderr);
    c->saved_out = dup(STDOUT_FILENO);
    c->saved_err = dup(STDERR_FILENO);
    snprintf(path, sizeof path, "%s/out", c->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    snprintf(path, sizeof path, "%s/err", c->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static void capture_end(capture *c) {
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved_out, STDOUT_FILENO);
    dup2(c->saved_err, STDERR_FILENO);
    close(c->saved_out);
    close(c->saved_err);
    char path[600];
    snprintf(path, sizeof path, "%s/out", c->dir);
    c->out = test_read_file(path, NULL);
    snprintf(path, sizeof path, "%s/err", c->dir);
    c->err = test_read_file(path, NULL);
    ck_assert_ptr_nonnull(c->out);
    ck_assert_ptr_nonnull(c->err);
}

static void capture_free(capture *c) {
    free(c->out);
    free(c->err);
    test_remove_dir(c->dir);
    free(c->dir);
}

static void open_console(test_logger *t, const char *progress, const char *every) {
    char p[64];
    snprintf(p, sizeof p, "progress=%s", progress);
    lm_config *cfg = test_config("logger 'console'", p, every, NULL);
    lm_status s = test_logger_open(t, "console", cfg);
    ck_assert_msg(s == LM_OK, "create failed: %s", lm_error_message());
    lm_config_destroy(cfg);
}

static void send(test_logger *t, lm_event_kind kind, int64_t step, int64_t total, double elapsed, double epoch,
                 const lm_scalar *scalars, size_t n) {
    lm_event ev = test_event(kind, step, elapsed, scalars, n);
    ev.total_steps = total;
    ev.epoch = epoch;
    ev.total_epochs = 3;
    if (kind == LM_EVENT_RUN_BEGIN) ev.text = "gpt2 on cpu";
    lm_status s = test_logger_log(t, &ev);
    ck_assert_msg(s == LM_OK, "log failed: %s", lm_error_message());
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

START_TEST(bar_is_redrawn_on_progress_with_the_last_logged_loss) {
    test_logger t;
    open_console(&t, "bar", NULL);
    capture c;
    capture_begin(&c);
    send(&t, LM_EVENT_RUN_BEGIN, 0, 6, 0, 0, NULL, 0);
    send(&t, LM_EVENT_PROGRESS, 1, 6, 0.5, 0.5, NULL, 0); /* drawn: the first */
    send(&t, LM_EVENT_PROGRESS, 2, 6, 0.52, 1.0, NULL, 0); /* not: 0.02 s later */
    lm_scalar step2[] = {{"loss", 3.25}, {"learning_rate", 1e-3}, {"grad_norm", 1}, {"tokens_per_second", 100}};
    send(&t, LM_EVENT_STEP, 2, 6, 0.53, 1.0, step2, 4); /* a logging point: drawn with its loss */
    send(&t, LM_EVENT_PROGRESS, 3, 6, 1.5, 1.5, NULL, 0);
    send(&t, LM_EVENT_PROGRESS, 4, 6, 2.0, 2.0, NULL, 0);
    send(&t, LM_EVENT_PROGRESS, 5, 6, 2.01, 2.5, NULL, 0); /* rate-limited */
    send(&t, LM_EVENT_PROGRESS, 6, 6, 2.02, 3.0, NULL, 0); /* the last step: always drawn */
    capture_end(&c);
    test_logger_close(&t);
    /* Before the first STEP the bar has no loss. */
    ck_assert_msg(strstr(c.err, "\r[1/6 00:01 < 00:03, 2.00 it/s, Epoch 0.50/3]   ") != NULL, "%s", c.err);
    ck_assert_ptr_null(strstr(c.err, "Epoch 1.00/3]   ")); /* step 2's PROGRESS came too soon to draw */
    ck_assert_msg(strstr(c.err, "\r[2/6 00:01 < 00:01, 3.77 it/s, Epoch 1.00/3] loss 3.2500   ") != NULL, "%s", c.err);
    ck_assert_msg(strstr(c.err, "\r[3/6 00:02 < 00:02, 2.00 it/s, Epoch 1.50/3] loss 3.2500   ") != NULL, "%s", c.err);
    ck_assert_ptr_nonnull(strstr(c.err, "\r[4/6 "));
    ck_assert_ptr_null(strstr(c.err, "\r[5/6 "));
    ck_assert_msg(strstr(c.err, "\r[6/6 00:02 < 00:00, 2.97 it/s, Epoch 3.00/3] loss 3.2500   ") != NULL, "%s", c.err);
    ck_assert_int_eq(count(c.err, "\r["), 5);
    ck_assert_int_eq(count(c.err, "\n"), 1); /* only the "training ..." line: the bar stays on its line */
    capture_free(&c);
}
END_TEST

START_TEST(a_resumed_run_counts_only_its_own_steps) {
    test_logger t;
    open_console(&t, "bar", NULL);
    capture c;
    capture_begin(&c);
    send(&t, LM_EVENT_RUN_BEGIN, 100, 200, 0, 1.0, NULL, 0); /* from checkpoint-100 */
    send(&t, LM_EVENT_PROGRESS, 110, 200, 5.0, 1.1, NULL, 0);
    capture_end(&c);
    test_logger_close(&t);
    /* 10 steps in 5 s: 2 it/s, 90 steps left: 45 s (not 110 / 5 = 22 it/s). */
    ck_assert_msg(strstr(c.err, "[110/200 00:05 < 00:45, 2.00 it/s, Epoch 1.10/3]") != NULL, "%s", c.err);
    capture_free(&c);

    /* Without a RUN_BEGIN the first PROGRESS tells: its own step was done here. */
    open_console(&t, "bar", NULL);
    capture_begin(&c);
    send(&t, LM_EVENT_PROGRESS, 51, 200, 0.5, 0.5, NULL, 0);
    send(&t, LM_EVENT_PROGRESS, 60, 200, 5.0, 0.6, NULL, 0);
    capture_end(&c);
    test_logger_close(&t);
    ck_assert_msg(strstr(c.err, "[60/200 00:05 < 01:10, 2.00 it/s, Epoch 0.60/3]") != NULL, "%s", c.err);
    capture_free(&c);
}
END_TEST

START_TEST(lines_come_at_logging_points_thinned_by_every) {
    test_logger t;
    open_console(&t, "lines", "every=100");
    capture c;
    capture_begin(&c);
    send(&t, LM_EVENT_RUN_BEGIN, 0, 230, 0, 0, NULL, 0);
    const int64_t points[] = {50, 100, 150, 200, 230}; /* logging_steps 50, and the last step */
    const double losses[] = {4.0, 3.0, 2.5, 2.0, 1.0};
    for (int i = 0; i < 5; i++) {
        for (int64_t s = i ? points[i - 1] + 1 : 1; s <= points[i]; s++)
            send(&t, LM_EVENT_PROGRESS, s, 230, 0.1 * (double)s, (double)s / 100.0, NULL, 0);
        lm_scalar sc[] = {
            {"loss", losses[i]}, {"learning_rate", 1e-4}, {"grad_norm", 0.5}, {"tokens_per_second", 1234}};
        send(&t, LM_EVENT_STEP, points[i], 230, 0.1 * (double)points[i], (double)points[i] / 100.0, sc, 4);
    }
    capture_end(&c);
    test_logger_close(&t);
    /* Lines at 100 (mean of 4.0 and 3.0), 200 (2.5 and 2.0) and 230 (the
     * last step: its own interval); none per PROGRESS, none at 50 or 150. */
    ck_assert_int_eq(count(c.err, "\n"), 4);
    ck_assert_msg(strstr(c.err, "[100/230 00:10 < 00:13, 10.00 it/s, Epoch 1.00/3] loss 3.5000 lr 0.0001 "
                                "grad_norm 0.500 tokens/s 1234\n") != NULL,
                  "%s", c.err);
    ck_assert_ptr_nonnull(strstr(c.err, "[200/230 00:20 < 00:03, 10.00 it/s, Epoch 2.00/3] loss 2.2500 "));
    ck_assert_ptr_nonnull(strstr(c.err, "[230/230 00:23 < 00:00, 10.00 it/s, Epoch 2.30/3] loss 1.0000 "));
    ck_assert_ptr_null(strstr(c.err, "\r"));
    capture_free(&c);

    /* A window of unequal intervals weighs each STEP's loss by its steps:
     * (4.0 x 50 + 3.0 x 50 + 2.0 x 30) / 130. */
    open_console(&t, "lines", "every=1000");
    capture_begin(&c);
    send(&t, LM_EVENT_RUN_BEGIN, 0, 130, 0, 0, NULL, 0);
    for (int i = 0; i < 3; i++) {
        const int64_t at[] = {50, 100, 130};
        lm_scalar sc[] = {{"loss", losses[i] - (i == 2 ? 0.5 : 0)}};
        send(&t, LM_EVENT_STEP, at[i], 130, (double)at[i], (double)at[i] / 100.0, sc, 1);
    }
    capture_end(&c);
    test_logger_close(&t);
    ck_assert_int_eq(count(c.err, "\n"), 2);
    ck_assert_msg(strstr(c.err, "[130/130 02:10 < 00:00, 1.00 it/s, Epoch 1.30/3] loss 3.1538 ") != NULL, "%s",
                  c.err);
    capture_free(&c);
}
END_TEST

static void eval(test_logger *t, int64_t step, double epoch_index, double train, double loss) {
    lm_scalar es[] = {{"train_loss", train},    {"eval_loss", loss},  {"perplexity", exp(loss)},
                      {"epoch_index", epoch_index}, {"eval_runtime", 1}, {"eval_samples_per_second", 10}};
    send(t, LM_EVENT_EVAL, step, 30, 1, epoch_index, es, 6);
}

START_TEST(epoch_table_gains_a_step_column_for_mid_epoch_evaluations) {
    test_logger t;
    open_console(&t, "lines", NULL);
    capture c;
    capture_begin(&c);
    send(&t, LM_EVENT_RUN_BEGIN, 0, 30, 0, 0, NULL, 0);
    eval(&t, 10, 1, 5.0, 4.5);     /* an epoch end: the reference report's table */
    eval(&t, 15, 1.5, 4.75, 4.25); /* mid-epoch: a new header with Step */
    eval(&t, 20, 2, 4.5, 4.0);     /* an epoch end under it: a whole epoch */
    capture_end(&c);
    test_logger_close(&t);
    ck_assert_str_eq(c.out, "Epoch  | Training Loss | Validation Loss | Perplexity\n"
                            "1      | 5.000000      | 4.500000        | 90.02\n"
                            "Step   | Epoch  | Training Loss | Validation Loss | Perplexity\n"
                            "15     | 1.50   | 4.750000      | 4.250000        | 70.11\n"
                            "20     | 2      | 4.500000      | 4.000000        | 54.60\n");
    capture_free(&c);

    /* A run evaluated every N steps starts with the Step table; a second
     * fit with the same logger starts its own table. */
    open_console(&t, "lines", NULL);
    capture_begin(&c);
    send(&t, LM_EVENT_RUN_BEGIN, 0, 30, 0, 0, NULL, 0);
    eval(&t, 4, 0.34, 6.0, 5.5);
    send(&t, LM_EVENT_RUN_BEGIN, 0, 30, 0, 0, NULL, 0);
    eval(&t, 10, 1, 5.0, 4.5);
    capture_end(&c);
    test_logger_close(&t);
    ck_assert_str_eq(c.out, "Step   | Epoch  | Training Loss | Validation Loss | Perplexity\n"
                            "4      | 0.34   | 6.000000      | 5.500000        | 244.69\n"
                            "Epoch  | Training Loss | Validation Loss | Perplexity\n"
                            "1      | 5.000000      | 4.500000        | 90.02\n");
    capture_free(&c);
}
END_TEST

START_TEST(summary_and_messages) {
    test_logger t;
    open_console(&t, "bar", NULL);
    capture c;
    capture_begin(&c);
    send(&t, LM_EVENT_RUN_BEGIN, 0, 6, 0, 0, NULL, 0);
    send(&t, LM_EVENT_PROGRESS, 6, 6, 3, 3, NULL, 0);
    lm_event ev = test_event(LM_EVENT_MESSAGE, 0, 0, NULL, 0);
    ev.level = LM_LOG_WARN;
    ev.text = "disk almost full";
    ck_assert_int_eq(test_logger_log(&t, &ev), LM_OK);
    lm_scalar end[] = {{"train_runtime", 3},  {"train_samples_per_second", 16}, {"train_steps_per_second", 2},
                       {"train_loss", 4.25}, {"eval_loss", 4.0},               {"perplexity", exp(4.0)}};
    send(&t, LM_EVENT_RUN_END, 6, 6, 3, 3, end, 6);
    capture_end(&c);
    test_logger_close(&t);
    /* The message ends the bar's line first. */
    ck_assert_msg(strstr(c.err, "Epoch 3.00/3]   \nwarning: disk almost full\n") != NULL, "%s", c.err);
    ck_assert_str_eq(c.out, "TrainOutput(global_step=6, training_loss=4.250000, train_runtime=3.00 s (00:03), "
                            "train_samples_per_second=16.000, train_steps_per_second=2.000, epoch=3.00)\n"
                            "Validation loss: 4.0000, Perplexity: 54.60\n");
    capture_free(&c);
}
END_TEST

/* The final evaluation, already the table's last row, is not repeated by
 * the summary; an evaluation made before the last step still is. */
START_TEST(summary_does_not_repeat_the_last_row) {
    test_logger t;
    open_console(&t, "bar", NULL);
    capture c;
    capture_begin(&c);
    send(&t, LM_EVENT_RUN_BEGIN, 0, 6, 0, 0, NULL, 0);
    lm_scalar eval[] = {{"train_loss", 4.25}, {"eval_loss", 4.0}, {"perplexity", exp(4.0)}, {"epoch_index", 0.5}};
    send(&t, LM_EVENT_EVAL, 6, 6, 0.5, 1, eval, 4);
    lm_scalar end[] = {{"train_runtime", 3},  {"train_samples_per_second", 16}, {"train_steps_per_second", 2},
                       {"train_loss", 4.25}, {"eval_loss", 4.0},               {"perplexity", exp(4.0)}};
    send(&t, LM_EVENT_RUN_END, 6, 6, 0.5, 1, end, 6);
    capture_end(&c);
    test_logger_close(&t);
    ck_assert_msg(strstr(c.out, "| 54.60\n") != NULL, "%s", c.out);
    ck_assert_msg(strstr(c.out, "Validation loss: ") == NULL, "%s", c.out);
    capture_free(&c);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("logger_console");
    TCase *tc = tcase_create("console");
    tcase_add_test(tc, bar_is_redrawn_on_progress_with_the_last_logged_loss);
    tcase_add_test(tc, a_resumed_run_counts_only_its_own_steps);
    tcase_add_test(tc, lines_come_at_logging_points_thinned_by_every);
    tcase_add_test(tc, summary_does_not_repeat_the_last_row);
    tcase_add_test(tc, epoch_table_gains_a_step_column_for_mid_epoch_evaluations);
    tcase_add_test(tc, summary_and_messages);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(suite(), NULL);
}

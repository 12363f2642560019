/* The op profiler (kernels/backend_profile.c) over the CPU backend: what it
 * counts and how it reports.  That a profiled model computes exactly what an
 * unprofiled one does is checked by the GPT-2 and BERT parity suites
 * (test_op_profile_changes_nothing). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "kernel_test_util.h"
#include "lmcore/log.h"
#include "profile_report.h"

#define REPORT_BYTES 16384

static lm_backend *profiled_cpu(void) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 1), LM_OK);
    ck_assert_msg(lm_backend_profile(&be, "test") == LM_OK, "%s", lm_error_message());
    return be;
}


START_TEST(test_profile_counts_ops_by_name_and_shape) {
    lm_backend *be = profiled_cpu();
    enum { N = 64, IC = 32, OC = 48 };
    float *x = tk_floats(N * IC), *w = tk_floats(IC * OC), *y = tk_floats(N * OC), *mean = tk_floats(N),
          *rstd = tk_floats(N), *ln = tk_floats(N * IC), *g = tk_floats(IC), *b = tk_floats(IC);
    tk_fill(x, N * IC, -1, 1, 1);
    tk_fill(w, IC * OC, -1, 1, 2);
    tk_fill(g, IC, 0.5f, 1.5f, 3);
    for (int i = 0; i < 3; i++) be->ops->matmul_forward(be, y, x, w, NULL, N, IC, OC, LM_W_IN_OUT);
    for (int i = 0; i < 2; i++) be->ops->matmul_forward(be, y, x, w, NULL, N / 2, IC, OC, LM_W_IN_OUT);
    be->ops->layernorm_forward(be, ln, mean, rstd, x, g, b, N, IC, 1e-5f);
    /* The forwarded op computed what the CPU kernel computes. */
    float *want = tk_floats(N * IC), *want_mean = tk_floats(N), *want_rstd = tk_floats(N);
    lm_cpu_layernorm_forward(want, want_mean, want_rstd, x, g, b, N, IC, 1e-5f);
    ck_assert_mem_eq(ln, want, N * IC * sizeof(float));

    char *report = malloc(REPORT_BYTES);
    ck_assert_ptr_nonnull(report);
    ck_assert_msg(lm_backend_profile_report(be, report, REPORT_BYTES) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(strstr(report, "op profile of test on cpu (1 thread): 6 ops timed") == report, "report:\n%s",
                  report);
    /* One row per shape apart from the number of rows, shown as the range seen. */
    ck_assert_int_eq(lm_test_profile_calls(report, "matmul_forward 32..64x32 -> 48"), 5);
    ck_assert_int_eq(lm_test_profile_calls(report, "matmul_forward 64x32 -> 48"), -1);
    ck_assert_int_eq(lm_test_profile_calls(report, "layernorm_forward"), 1);
    ck_assert_int_eq(lm_test_profile_calls(report, "gelu_forward"), -1);
    /* busy <= elapsed, both positive */
    double busy = 0, elapsed = 0;
    ck_assert_msg(lm_test_profile_busy(report, &busy, &elapsed), "report:\n%s", report);
    ck_assert_msg(busy > 0 && busy <= elapsed, "busy %f, elapsed %f", busy, elapsed);
    /* Rows by total time, largest first. */
    double previous = 1e300;
    int rows = 0;
    for (const char *line = strchr(report, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        if (strncmp(line, "\n  op ", 6) == 0) continue; /* the header */
        const char *counts = strstr(line, " -> ");
        counts = counts ? strchr(counts + 4, ' ') : line + 46;
        unsigned long calls = 0;
        double total = 0;
        ck_assert_int_eq(sscanf(counts, "%lu %lf", &calls, &total), 2);
        ck_assert_msg(total <= previous, "rows not sorted by total time:\n%s", report);
        previous = total;
        rows++;
    }
    ck_assert_int_eq(rows, 2);

    free(report);
    free(x), free(w), free(y), free(mean), free(rstd), free(ln), free(g), free(b);
    free(want), free(want_mean), free(want_rstd);
    be->ops->destroy(be);
}
END_TEST

/* More ops than the pending set holds without a sync, and more distinct
 * shapes than rows: every op is counted, the excess shapes in one row. */
START_TEST(test_profile_overflows_are_counted) {
    lm_backend *be = profiled_cpu();
    float *x = tk_floats(1024), *y = tk_floats(1024);
    for (int i = 0; i < 5000; i++) be->ops->residual_forward(be, y, x, x, 16);
    for (int n = 1; n <= 120; n++) be->ops->matmul_forward(be, y, x, x, NULL, 1, 1, n, LM_W_IN_OUT);
    char *report = malloc(REPORT_BYTES);
    ck_assert_ptr_nonnull(report);
    ck_assert_int_eq(lm_backend_profile_report(be, report, REPORT_BYTES), LM_OK);
    ck_assert_int_eq(lm_test_profile_calls(report, "residual_forward"), 5000);
    long rows = 0, other = lm_test_profile_calls(report, "(other ops)");
    for (int n = 1; n <= 120; n++) {
        char key[64];
        snprintf(key, sizeof key, "matmul_forward 1x1 -> %d", n);
        if (lm_test_profile_calls(report, key) == 1) rows++;
    }
    ck_assert_msg(other > 0 && rows + other == 120, "%ld shape rows + %ld in (other ops), want 120", rows, other);
    ck_assert_msg(strstr(report, "5120 ops timed") != NULL, "report:\n%.300s", report);
    /* A report that does not fit is cut, never overrun. */
    char small[64];
    memset(small, 'x', sizeof small);
    ck_assert_int_eq(lm_backend_profile_report(be, small, 40), LM_OK);
    ck_assert_int_eq((int)strlen(small), 39);
    ck_assert_int_eq(small[40], 'x');
    free(report);
    free(x), free(y);
    lm_log_set_level(LM_LOG_WARN); /* the 97-row table logged at destroy */
    be->ops->destroy(be);
}
END_TEST

START_TEST(test_profile_report_needs_a_profiled_backend) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 1), LM_OK);
    char buf[256];
    ck_assert_int_eq(lm_backend_profile_report(be, buf, sizeof buf), LM_ERR_INVALID);
    ck_assert_msg(strstr(lm_error_message(), "profile_ops=true") != NULL, "%s", lm_error_message());
    /* Profiling twice wraps once. */
    ck_assert_int_eq(lm_backend_profile(&be, "once"), LM_OK);
    lm_backend *first = be;
    ck_assert_int_eq(lm_backend_profile(&be, "twice"), LM_OK);
    ck_assert_ptr_eq(be, first);
    /* A profile with no op logs nothing and reports zero ops. */
    ck_assert_int_eq(lm_backend_profile_report(be, buf, sizeof buf), LM_OK);
    ck_assert_msg(strstr(buf, ": 0 ops timed") != NULL, "%s", buf);
    be->ops->destroy(be);
}
END_TEST

/* The CPU timer: marks are the clock when recorded; unrecorded marks are an error. */
START_TEST(test_cpu_timer_marks) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 1), LM_OK);
    lm_backend_timer *timer = NULL;
    ck_assert_int_eq(be->ops->timer_create(be, &timer, 0), LM_ERR_INVALID);
    ck_assert_int_eq(be->ops->timer_create(be, &timer, 3), LM_OK);
    double ms = -1;
    ck_assert_int_eq(be->ops->timer_elapsed_ms(be, timer, 0, 1, &ms), LM_ERR_INVALID);
    be->ops->timer_record(be, timer, 0);
    volatile double spin = 0;
    for (int i = 0; i < 2000000; i++) spin += i;
    be->ops->timer_record(be, timer, 1);
    be->ops->timer_record(be, timer, 7); /* out of range: ignored */
    ck_assert_int_eq(be->ops->timer_elapsed_ms(be, timer, 0, 1, &ms), LM_OK);
    ck_assert_msg(ms > 0.0 && ms < 10000.0, "elapsed %f ms", ms);
    ck_assert_int_eq(be->ops->timer_elapsed_ms(be, timer, 0, 2, &ms), LM_ERR_INVALID);
    ck_assert_int_eq(be->ops->timer_elapsed_ms(be, timer, 0, 3, &ms), LM_ERR_INVALID);
    be->ops->timer_destroy(be, timer);
    be->ops->destroy(be);
}
END_TEST

Suite *kernels_profile_suite(void) {
    Suite *s = suite_create("kernels_profile");
    TCase *tc = tcase_create("profile");
    tcase_add_test(tc, test_profile_counts_ops_by_name_and_shape);
    tcase_add_test(tc, test_profile_overflows_are_counted);
    tcase_add_test(tc, test_profile_report_needs_a_profiled_backend);
    tcase_add_test(tc, test_cpu_timer_marks);
    suite_add_tcase(s, tc);
    return s;
}

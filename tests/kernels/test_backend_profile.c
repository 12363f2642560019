/* The op profiler (kernels/backend_profile.c) over the CPU backend: what it
 * counts and how it reports, and that it forwards the step state (the
 * dropout key, the step ops, the device counters) as the CPU backend reads it.  That a profiled model computes exactly what an
 * unprofiled one does is checked by the GPT-2 and BERT parity suites
 * (test_op_profile_changes_nothing). */
#include <math.h>
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
    lm_backend_release(be);
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
    lm_backend_release(be);
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
    lm_backend_release(be);
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
    lm_backend_release(be);
}
END_TEST

/* What changed with the step state (lmcore/step.h): dropout reads its key
 * (seed, micro-batch counter) from the state in device memory and draws the
 * masks of (seed, lm_dropout_stream(micro_batch, site)), which are the
 * lm_cpu_* kernels' masks for that stream; the step ops update the state;
 * the device counts its waits.  Checked on a backend, through the ops table
 * and the public lm_device, the profiled one forwarding every part. */
static void check_step_key_and_ops(lm_backend *be, const char *what) {
    lm_device *dev = &be->device;
    ck_assert_int_eq(dev->type, LM_DEVICE_CPU);
    ck_assert_ptr_nonnull(dev->ops->parallel_for);
    lm_step_state *state = NULL, host;
    ck_assert_int_eq(dev->ops->alloc(dev, (void **)&state, sizeof *state, "test step state"), LM_OK);
    memset(&host, 0, sizeof host);
    host.seed = 1234;
    host.micro_batch = 9;
    host.clip_scale = 1.0f;
    host.max_grad_norm = 1.0;
    ck_assert_int_eq(dev->ops->upload(dev, state, &host, sizeof host), LM_OK);

    enum { N = 3000 };
    float *x = tk_floats(N), *out = tk_floats(N), *want = tk_floats(N), *grad = tk_floats(N), *want_grad = tk_floats(N);
    tk_fill(x, N, -1, 1, 21);
    be->ops->dropout_forward(be, out, x, N, 0.3f, state, 5);
    lm_cpu_dropout_forward(want, x, N, 0.3f, 1234, lm_dropout_stream(9, 5));
    ck_assert_msg(memcmp(out, want, N * sizeof(float)) == 0, "%s: dropout_forward's mask is not the key's", what);
    tk_fill(grad, N, -1, 1, 22);
    memcpy(want_grad, grad, N * sizeof(float));
    be->ops->dropout_backward(be, grad, x, N, 0.3f, state, 5);
    lm_cpu_dropout_backward(want_grad, x, N, 0.3f, 1234, lm_dropout_stream(9, 5));
    ck_assert_msg(memcmp(grad, want_grad, N * sizeof(float)) == 0, "%s: dropout_backward's mask", what);
    /* Another site, another micro-batch, another seed: other masks. */
    be->ops->dropout_forward(be, want, x, N, 0.3f, state, 6);
    ck_assert(memcmp(out, want, N * sizeof(float)) != 0);
    uint64_t key[2] = {1234, 10};
    ck_assert_int_eq(dev->ops->upload(dev, state, key, sizeof key), LM_OK);
    be->ops->dropout_forward(be, want, x, N, 0.3f, state, 5);
    ck_assert_msg(memcmp(out, want, N * sizeof(float)) != 0, "%s: the micro-batch counter is not read", what);
    key[0] = 1235;
    key[1] = 9;
    ck_assert_int_eq(dev->ops->upload(dev, state, key, sizeof key), LM_OK);
    be->ops->dropout_forward(be, want, x, N, 0.3f, state, 5);
    ck_assert_msg(memcmp(out, want, N * sizeof(float)) != 0, "%s: the seed is not read", what);
    /* p = 0 needs no key. */
    be->ops->dropout_forward(be, want, x, N, 0.0f, NULL, 5);
    ck_assert_mem_eq(want, x, N * sizeof(float));

    /* Attention's dropout on the probabilities: the key's stream for the site. */
    enum { B = 2, T = 7, C = 8, NH = 2 };
    const size_t nqkv = (size_t)B * T * 3 * C, natt = (size_t)B * NH * T * T, no = (size_t)B * T * C;
    float *qkv = tk_floats(nqkv), *att_out = tk_floats(no), *pre = tk_floats(natt), *att = tk_floats(natt);
    float *ref_out = tk_floats(no), *ref_pre = tk_floats(natt), *ref_att = tk_floats(natt);
    tk_fill(qkv, nqkv, -2, 2, 23);
    be->ops->attention_forward(be, att_out, pre, att, qkv, qkv + C, qkv + 2 * C, 3 * C, NULL, 1, B, T, C, NH, 0.2f,
                               state, 300);
    lm_cpu_attention_forward(ref_out, ref_pre, ref_att, qkv, qkv + C, qkv + 2 * C, 3 * C, NULL, 1, B, T, C, NH, 0.2f,
                             1235, lm_dropout_stream(9, 300));
    ck_assert_msg(memcmp(att, ref_att, natt * sizeof(float)) == 0, "%s: attention's dropout mask", what);
    ck_assert_msg(memcmp(att_out, ref_out, no * sizeof(float)) == 0, "%s: attention's output", what);

    /* The step ops, through the public device: they update the state and never wait. */
    lm_device_counters before, after;
    dev->ops->counters(dev, &before);
    const float loss = 2.5f;
    ck_assert_int_eq(dev->ops->upload(dev, &state->loss, &loss, sizeof loss), LM_OK);
    ck_assert_int_eq(dev->ops->step_micro_batch_end(dev, state, 3.0, 4.0, 1), LM_OK);
    ck_assert_int_eq(dev->ops->step_clip(dev, state, x, LM_F32, N), LM_OK);
    ck_assert_int_eq(dev->ops->step_finish(dev, state), LM_OK);
    dev->ops->counters(dev, &after);
    ck_assert_uint_eq(after.downloads, before.downloads);
    ck_assert_uint_eq(after.syncs, before.syncs);
    ck_assert_uint_eq(after.uploads, before.uploads + 1);
    ck_assert_int_eq(dev->ops->download(dev, &host, state, sizeof host), LM_OK);
    dev->ops->counters(dev, &after);
    ck_assert_uint_eq(after.downloads, before.downloads + 1);
    ck_assert_uint_ge(after.syncs, before.syncs + 1);
    ck_assert_int_eq(host.step, 1);
    ck_assert(host.step_loss == 2.5 * 3.0 / 4.0);
    ck_assert(host.grad_norm == (float)sqrt(lm_cpu_sum_squares(x, N)));
    ck_assert(host.grad_norm > 1.0f); /* so that step_clip computed a scale below 1, which step_finish reset */
    ck_assert(host.clip_scale == 1.0f);
    ck_assert_int_eq(host.bad_step, 0);
    ck_assert_int_eq(dev->ops->sync(dev), LM_OK);
    ck_assert_int_eq(dev->ops->check(dev), LM_OK);

    free(x), free(out), free(want), free(grad), free(want_grad);
    free(qkv), free(att_out), free(pre), free(att), free(ref_out), free(ref_pre), free(ref_att);
    dev->ops->free(dev, state);
}

START_TEST(test_cpu_backend_reads_the_step_key) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 1), LM_OK);
    check_step_key_and_ops(be, "cpu");
    lm_backend_release(be);
}
END_TEST

START_TEST(test_profile_forwards_the_step_key_and_ops) {
    lm_backend *be = profiled_cpu();
    check_step_key_and_ops(be, "profiled cpu");
    char *report = malloc(REPORT_BYTES);
    ck_assert_ptr_nonnull(report);
    ck_assert_msg(lm_backend_profile_report(be, report, REPORT_BYTES) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(lm_test_profile_calls(report, "dropout_forward"), 5);
    ck_assert_int_eq(lm_test_profile_calls(report, "dropout_backward"), 1);
    ck_assert_int_eq(lm_test_profile_calls(report, "step_micro_batch_end"), 1);
    ck_assert_int_eq(lm_test_profile_calls(report, "step_clip"), 1);
    ck_assert_int_eq(lm_test_profile_calls(report, "step_finish"), 1);
    free(report);
    lm_backend_release(be);
}
END_TEST

Suite *kernels_profile_suite(void) {
    Suite *s = suite_create("kernels_profile");
    TCase *tc = tcase_create("profile");
    tcase_add_test(tc, test_profile_counts_ops_by_name_and_shape);
    tcase_add_test(tc, test_profile_overflows_are_counted);
    tcase_add_test(tc, test_profile_report_needs_a_profiled_backend);
    tcase_add_test(tc, test_cpu_timer_marks);
    tcase_add_test(tc, test_cpu_backend_reads_the_step_key);
    tcase_add_test(tc, test_profile_forwards_the_step_key_and_ops);
    suite_add_tcase(s, tc);
    return s;
}

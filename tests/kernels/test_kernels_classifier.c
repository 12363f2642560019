/* The fused classifier's CPU twin, crossentropy_forward_backward: the loss
 * of every row and dloss * (softmax - onehot) over the logits in one pass
 * must be, bit for bit, what crossentropy_forward followed by the in-place
 * crossentropy_backward leave (the training numbers of the CPU rest on it):
 * random rows, ignored and out-of-range labels, rows of ±1e4 logits, a
 * NaN, vocabularies from 1 to GPT-2's 50257 (past the forward's on-stack
 * scratch of 8192 floats), one and two threads, and through the CPU
 * backend's table.
 *
 * The parent process never runs a kernel (kernels/cpu's thread pool does
 * not survive fork(); Check forks a child per test). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "kernel_test_util.h"
#include "kernels.h"
#include "test_main.h"

typedef struct classifier_case {
    int N, V;
    float *logits; /* the input */
    int32_t *labels;
    float dloss;      /* loss_scale / (float)scored, as a model computed it on the host */
    float loss_scale; /* its parts, as the backend ops take them (the count on the device) */
    int64_t scored;
} classifier_case;

/* Random logits in [-8, 8] and labels, with rows the op must treat apart:
 * row 1 ignored (-100), the last out of range (V + 5, treated as ignored),
 * row 2 labelled V - 1, row 3 all -1e4 but the label's +1e4 (its
 * probability rounds to 1: loss 0), row 4 ±1e4 with the label at -1e4 (a
 * loss of 2e4 + log of the +1e4 count), row 5 all equal. */
static classifier_case make_case(int N, int V, uint64_t seed, float loss_scale) {
    classifier_case c = {N, V, tk_floats((size_t)N * V), tk_ints((size_t)N), 0.0f, loss_scale, 0};
    tk_fill(c.logits, (size_t)N * V, -8.0f, 8.0f, seed);
    float *u = tk_floats((size_t)N);
    tk_fill(u, (size_t)N, 0.0f, 1.0f, seed + 1);
    for (int n = 0; n < N; n++) c.labels[n] = (int32_t)(u[n] * (float)V) % V;
    free(u);
    if (N > 1) c.labels[1] = -100;
    if (N > 2) c.labels[N - 1] = V + 5;
    if (N > 3) c.labels[2] = V - 1;
    for (int row = 3; row <= 4 && row < N - 1; row++) {
        float *x = c.logits + (size_t)row * V;
        for (int j = 0; j < V; j++) x[j] = row == 4 && j % 3 == 0 ? 1e4f : -1e4f;
        x[c.labels[row]] = row == 3 ? 1e4f : -1e4f;
    }
    if (N > 6)
        for (int j = 0; j < V; j++) c.logits[5 * (size_t)V + j] = 0.25f;
    int scored = 0;
    for (int n = 0; n < N; n++) scored += c.labels[n] >= 0 && c.labels[n] < V;
    c.scored = scored > 0 ? scored : 1;
    c.dloss = loss_scale / (float)c.scored;
    return c;
}

static void free_case(classifier_case *c) {
    free(c->logits);
    free(c->labels);
}

/* Bitwise equality, naming the first element that differs. */
static void assert_same_bits(const char *what, const classifier_case *c, const float *got, const float *want,
                             size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], sizeof got[i]) == 0) continue;
        ck_abort_msg("N=%d V=%d: %s element %zu (row %zu) is %.9g, the two ops give %.9g", c->N, c->V, what, i,
                     c->V > 0 ? i / (size_t)c->V : 0, (double)got[i], (double)want[i]);
    }
}

/* The fused op against the two ops on a copy of the same logits. */
static void check_against_two_ops(const classifier_case *c) {
    const size_t NV = (size_t)c->N * c->V;
    float *two_logits = tk_copy(c->logits, NV), *two_losses = tk_floats((size_t)c->N);
    float *fused_logits = tk_copy(c->logits, NV), *fused_losses = tk_floats((size_t)c->N);
    for (int n = 0; n < c->N; n++) two_losses[n] = fused_losses[n] = NAN; /* unwritten rows fail */
    (void)lm_cpu_crossentropy_forward(two_losses, two_logits, c->labels, c->N, c->V, c->V);
    lm_cpu_crossentropy_backward(two_logits, two_logits, c->labels, c->dloss, c->N, c->V, c->V);
    lm_cpu_crossentropy_forward_backward(fused_losses, fused_logits, c->labels, c->dloss, c->N, c->V, c->V);
    assert_same_bits("loss", c, fused_losses, two_losses, (size_t)c->N);
    assert_same_bits("dlogits", c, fused_logits, two_logits, NV);
    free(two_logits);
    free(two_losses);
    free(fused_logits);
    free(fused_losses);
}

static const int shapes[][2] = {{1, 1}, {3, 2}, {7, 5}, {37, 1013}, {16, 4096}, {12, 8192}, {9, 8193}, {6, 50257}};

START_TEST(test_fused_is_the_two_ops_bit_for_bit) {
    for (int threads = 1; threads <= 2; threads++) {
        lm_cpu_set_threads(threads);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            classifier_case c = make_case(shapes[s][0], shapes[s][1], 100 + s, 1.0f);
            check_against_two_ops(&c);
            free_case(&c);
        }
    }
}
END_TEST

/* The scale backward is given (1 / gradient_accumulation_steps) and a dloss
 * that is not a power of two, so that every multiplication rounds. */
START_TEST(test_fused_with_a_loss_scale) {
    classifier_case c = make_case(33, 777, 7, 0.25f);
    check_against_two_ops(&c);
    c.dloss = 0.3f / 29.0f;
    check_against_two_ops(&c);
    free_case(&c);
}
END_TEST

/* What the rows hold afterwards, apart from the comparison: the losses of
 * the ±1e4 rows (0 and 2e4), zeroed ignored rows, gradient rows that sum
 * to about 0, and a NaN logit that reaches its row's loss (the trainer's
 * non-finite check needs it). */
START_TEST(test_fused_rows_hold_the_gradient) {
    enum { N = 10, V = 301 };
    classifier_case c = make_case(N, V, 11, 1.0f);
    c.logits[7 * V + 3] = NAN;
    check_against_two_ops(&c);
    float losses[N];
    lm_cpu_crossentropy_forward_backward(losses, c.logits, c.labels, c.dloss, N, V, V);
    ck_assert_msg(losses[3] == 0.0f, "a +1e4 label among -1e4: loss %g, expected 0", (double)losses[3]);
    int high = 0; /* the +1e4 logits of row 4 */
    for (int j = 0; j < V; j++) high += j % 3 == 0 && j != c.labels[4];
    const double want4 = 2e4 + log((double)high);
    ck_assert_msg(fabs(losses[4] - want4) <= 4e-3, "a -1e4 label among ±1e4: loss %.9g, expected %.9g",
                  (double)losses[4], want4);
    ck_assert_msg(isnan(losses[7]), "a NaN logit gave the loss %g", (double)losses[7]);
    for (int n = 0; n < N; n++) {
        const float *g = c.logits + (size_t)n * V;
        const int scored = c.labels[n] >= 0 && c.labels[n] < V;
        if (!scored) {
            ck_assert_msg(losses[n] == 0.0f, "ignored row %d: loss %g", n, (double)losses[n]);
            for (int j = 0; j < V; j++) ck_assert_msg(g[j] == 0.0f, "ignored row %d: dlogits[%d] = %g", n, j, g[j]);
            continue;
        }
        if (n == 7) continue;
        double sum = 0.0;
        for (int j = 0; j < V; j++) sum += g[j];
        ck_assert_msg(fabs(sum) <= 1e-6 * c.dloss * V, "row %d: Σ dlogits = %g, expected about 0", n, sum);
        ck_assert_msg(g[c.labels[n]] <= 0.0f, "row %d: the label's gradient %g is positive", n,
                      (double)g[c.labels[n]]);
    }
    free_case(&c);
}
END_TEST

/* The backend table's ops are the CPU twins (the models call them there),
 * their dloss divided from loss_scale by the count on the device to the
 * host's bits (a scale of 1/3, as grad_accum=3 gives: the division rounds),
 * and loss_mean divides by the count it reads there. */
START_TEST(test_backend_op_is_the_twin) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 2), LM_OK);
    classifier_case c = make_case(20, 3001, 21, 1.0f / 3.0f);
    ck_assert_int_eq(c.scored, 18);
    const size_t NV = (size_t)c.N * c.V;
    float *want = tk_copy(c.logits, NV), *want_losses = tk_floats((size_t)c.N);
    lm_cpu_crossentropy_forward_backward(want_losses, want, c.labels, c.dloss, c.N, c.V, c.V);
    float *d_logits = NULL, *d_losses = NULL;
    int32_t *d_labels = NULL;
    ck_assert_int_eq(be->ops->alloc(be, (void **)&d_logits, NV * sizeof(float), "logits"), LM_OK);
    ck_assert_int_eq(be->ops->alloc(be, (void **)&d_losses, (size_t)c.N * sizeof(float), "losses"), LM_OK);
    ck_assert_int_eq(be->ops->alloc(be, (void **)&d_labels, (size_t)c.N * sizeof(int32_t), "labels"), LM_OK);
    ck_assert_int_eq(be->ops->upload(be, d_logits, c.logits, NV * sizeof(float)), LM_OK);
    ck_assert_int_eq(be->ops->upload(be, d_labels, c.labels, (size_t)c.N * sizeof(int32_t)), LM_OK);
    int64_t *d_count = NULL;
    ck_assert_int_eq(be->ops->alloc(be, (void **)&d_count, sizeof(int64_t), "count"), LM_OK);
    ck_assert_int_eq(be->ops->upload(be, d_count, &c.scored, sizeof c.scored), LM_OK);
    be->ops->crossentropy_forward_backward(be, d_losses, d_logits, d_labels, c.loss_scale, d_count, c.N, c.V, c.V);
    float *got = tk_floats(NV), *got_losses = tk_floats((size_t)c.N);
    ck_assert_int_eq(be->ops->download(be, got, d_logits, NV * sizeof(float)), LM_OK);
    ck_assert_int_eq(be->ops->download(be, got_losses, d_losses, (size_t)c.N * sizeof(float)), LM_OK);
    assert_same_bits("backend loss", &c, got_losses, want_losses, (size_t)c.N);
    assert_same_bits("backend dlogits", &c, got, want, NV);

    /* crossentropy_backward in place, the same way. */
    lm_cpu_crossentropy_forward(want_losses, c.logits, c.labels, c.N, c.V, c.V);
    float *want_backward = tk_copy(c.logits, NV);
    lm_cpu_crossentropy_backward(want_backward, want_backward, c.labels, c.dloss, c.N, c.V, c.V);
    ck_assert_int_eq(be->ops->upload(be, d_logits, c.logits, NV * sizeof(float)), LM_OK);
    be->ops->crossentropy_backward(be, d_logits, d_logits, d_labels, c.loss_scale, d_count, c.N, c.V, c.V);
    ck_assert_int_eq(be->ops->download(be, got, d_logits, NV * sizeof(float)), LM_OK);
    assert_same_bits("backend crossentropy_backward", &c, got, want_backward, NV);

    /* loss_mean: (float)(Σ losses / count), the count read where it was uploaded. */
    float mean = 0.0f, *d_mean = NULL;
    ck_assert_int_eq(be->ops->alloc(be, (void **)&d_mean, sizeof(float), "mean"), LM_OK);
    be->ops->loss_mean(be, d_mean, d_losses, (size_t)c.N, d_count);
    ck_assert_int_eq(be->ops->download(be, &mean, d_mean, sizeof mean), LM_OK);
    double sum = 0.0;
    for (int n = 0; n < c.N; n++) sum += (double)want_losses[n];
    const float want_mean = (float)(sum / (double)c.scored);
    ck_assert_msg(memcmp(&mean, &want_mean, sizeof mean) == 0, "loss_mean %.9g, want %.9g", (double)mean,
                  (double)want_mean);
    be->ops->free(be, d_mean);
    be->ops->free(be, d_count);
    free(want_backward);
    be->ops->free(be, d_logits);
    be->ops->free(be, d_losses);
    be->ops->free(be, d_labels);
    be->ops->destroy(be);
    free(want), free(want_losses), free(got), free(got_losses);
    free_case(&c);
}
END_TEST

static Suite *classifier_suite(void) {
    Suite *s = suite_create("fused classifier (cpu)");
    TCase *tc = tcase_create("crossentropy_forward_backward");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fused_is_the_two_ops_bit_for_bit);
    tcase_add_test(tc, test_fused_with_a_loss_scale);
    tcase_add_test(tc, test_fused_rows_hold_the_gradient);
    tcase_add_test(tc, test_backend_op_is_the_twin);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(classifier_suite(), NULL);
}

/* The fused classifier on the GPU: lm_cuda_crossentropy_forward_backward
 * (kernels/cuda/crossentropy_forward_backward.cu) against its CPU twin and
 * against the CUDA two-op path (crossentropy_forward, then the in-place
 * crossentropy_backward) on the same logits.
 *
 * Tolerances: the kernel's per-thread sums (online softmax over float4
 * loads) run in another order than the CPU's and the two-op kernels', so
 * results agree to the last ulps, not the bit: losses within 1e-6 of their
 * norm (TOL_LOSS; each row's loss is a log-sum-exp of float exps), dlogits
 * within 1e-5 (TOL_DLOGITS, as crossentropy_backward's own GPU test).
 * Exact, whatever the order: ignored rows (loss 0, gradient 0 everywhere),
 * the -1e4 rows' zeros, run-to-run bits, and NaN reaching the loss.
 *
 * Labelled gpu; exits 77 (skipped) without a usable GPU unless
 * LMCORE_REQUIRE_GPU=1 (tests/gpu/run.sh sets it).  Check runs in no-fork
 * mode: CUDA is initialised once in main(). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test_util.h"
#include "kernels.h"
#include "lmcore/status.h"
#include "test_main.h"

#define TOL_LOSS 1e-6
#define TOL_DLOGITS 1e-5

/* Random logits in [-4, 4]; row 1 ignored, the last out of range, row 2
 * labelled V - 1, row 3 all -1e4 but its label's +1e4 (loss 0), row 4
 * every third logit +1e4 and its label -1e4 (loss about 2e4). */
static void make_rows(float *logits, int32_t *labels, int N, int V) {
    gt_fill_random(logits, (size_t)N * V, -4, 4);
    int32_t *random = gt_random_ints((size_t)N, 0, V);
    memcpy(labels, random, (size_t)N * sizeof *labels);
    free(random);
    if (N > 1) labels[1] = -100;
    if (N > 2) labels[N - 1] = V + 5;
    if (N > 3) labels[2] = V - 1;
    for (int row = 3; row <= 4 && row < N - 1; row++) {
        float *x = logits + (size_t)row * V;
        for (int j = 0; j < V; j++) x[j] = row == 4 && j % 3 == 0 ? 1e4f : -1e4f;
        x[labels[row]] = row == 3 ? 1e4f : -1e4f;
    }
}

static int scored_rows(const int32_t *labels, int N, int V) {
    int scored = 0;
    for (int i = 0; i < N; i++) scored += labels[i] >= 0 && labels[i] < V;
    return scored;
}

/* offset: floats between the allocation and the logits (1: rows start
 * 4-byte aligned only, so the float4 part of every row moves). */
static void check_classifier(int N, int V, size_t offset) {
    lm_backend *be = gt_be;
    const size_t NV = (size_t)N * V;
    printf("crossentropy_forward_backward N=%d V=%d offset=%zu\n", N, V, offset);
    float *logits = gt_host(NV);
    int32_t *labels = gt_host_ints((size_t)N);
    make_rows(logits, labels, N, V);
    /* The ops divide loss_scale by the count they read on the device; the
     * CPU twin takes the quotient, as the host computed it. */
    const float loss_scale = 1.0f / 3.0f;
    const int64_t scored = scored_rows(labels, N, V);
    const float dloss = loss_scale / (float)scored;

    /* The CPU twin. */
    float *cpu = gt_host_copy(logits, NV), *cpu_losses = gt_host((size_t)N);
    lm_cpu_crossentropy_forward_backward(cpu_losses, cpu, labels, dloss, N, V, V);

    /* The GPU, fused, on logits at `offset` floats into their allocation. */
    float *padded = gt_host(NV + offset);
    memcpy(padded + offset, logits, NV * sizeof *logits);
    float *d_base = gt_dev_upload(be, padded, NV + offset), *d_logits = d_base + offset;
    float *d_losses = gt_dev_nan(be, (size_t)N);
    int32_t *d_labels = gt_dev_upload_ints(be, labels, (size_t)N);
    int64_t *d_count = gt_dev_count(be, scored);
    be->ops->crossentropy_forward_backward(be, d_losses, d_logits, d_labels, loss_scale, d_count, N, V, V);
    gt_sync(be, "crossentropy_forward_backward");
    float *fused = gt_host(NV), *fused_losses = gt_host((size_t)N);
    gt_dev_download(be, fused, d_logits, NV);
    gt_dev_download(be, fused_losses, d_losses, (size_t)N);
    gt_compare("fused losses vs cpu twin", fused_losses, cpu_losses, (size_t)N, TOL_LOSS);
    gt_compare("fused dlogits vs cpu twin", fused, cpu, NV, TOL_DLOGITS);

    /* Exact whatever the order of the sums. */
    for (int i = 0; i < N; i++) {
        if (labels[i] >= 0 && labels[i] < V) continue;
        ck_assert_msg(fused_losses[i] == 0.0f, "ignored row %d: loss %g", i, (double)fused_losses[i]);
        for (int j = 0; j < V; j++)
            ck_assert_msg(fused[(size_t)i * V + j] == 0.0f, "ignored row %d: dlogits[%d] = %g", i, j,
                          (double)fused[(size_t)i * V + j]);
    }
    if (N > 4) {
        ck_assert_msg(fused_losses[3] == 0.0f, "row 3 (+1e4 label among -1e4): loss %g", (double)fused_losses[3]);
        for (int j = 0; j < V; j++)
            ck_assert_msg(fused[3 * (size_t)V + j] == 0.0f, "row 3: dlogits[%d] = %g, expected 0", j,
                          (double)fused[3 * (size_t)V + j]);
    }

    /* Run to run: the same bits. */
    float *again = gt_host(NV);
    memcpy(padded + offset, logits, NV * sizeof *logits);
    ck_assert_int_eq(be->ops->upload(be, d_base, padded, (NV + offset) * sizeof(float)), LM_OK);
    be->ops->crossentropy_forward_backward(be, d_losses, d_logits, d_labels, loss_scale, d_count, N, V, V);
    gt_sync(be, "crossentropy_forward_backward (again)");
    gt_dev_download(be, again, d_logits, NV);
    gt_assert_bitwise("fused dlogits run to run", again, fused, NV);

    /* The CUDA two-op path on the same logits. */
    ck_assert_int_eq(be->ops->upload(be, d_base, padded, (NV + offset) * sizeof(float)), LM_OK);
    gt_dev_poison(be, d_losses, (size_t)N);
    be->ops->crossentropy_forward(be, d_losses, d_logits, d_labels, N, V, V);
    be->ops->crossentropy_backward(be, d_logits, d_logits, d_labels, loss_scale, d_count, N, V, V);
    gt_sync(be, "crossentropy_forward + crossentropy_backward");
    float *two = gt_host(NV), *two_losses = gt_host((size_t)N);
    gt_dev_download(be, two, d_logits, NV);
    gt_dev_download(be, two_losses, d_losses, (size_t)N);
    gt_compare("fused losses vs cuda two ops", fused_losses, two_losses, (size_t)N, TOL_LOSS);
    gt_compare("fused dlogits vs cuda two ops", fused, two, NV, TOL_DLOGITS);

    gt_dev_free(be, d_base);
    gt_dev_free(be, d_losses);
    gt_dev_free(be, d_labels);
    gt_dev_free(be, d_count);
    free(logits), free(labels), free(cpu), free(cpu_losses), free(padded), free(fused), free(fused_losses);
    free(again), free(two), free(two_losses);
}

/* Vocabularies below one float4, odd ones (every row starts at another
 * alignment), aligned ones, GPT-2's 50257 and BERT's 28996; rows at 4- and
 * 16-byte aligned addresses. */
START_TEST(test_fused_matches_cpu_and_two_ops) {
    static const int shapes[][2] = {{3, 1}, {5, 3}, {7, 4}, {37, 1013}, {16, 4096}, {9, 8193}, {8, 28996},
                                    {16, 50257}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        check_classifier(shapes[s][0], shapes[s][1], 0);
        check_classifier(shapes[s][0], shapes[s][1], 1);
    }
}
END_TEST

/* A NaN logit makes its row's loss NaN (the trainer's non-finite check
 * reads the loss), and only that row's: eight in a row, so that some
 * thread's float4 holds nothing but NaN (its running max stays -inf). */
START_TEST(test_fused_nan_reaches_the_loss) {
    lm_backend *be = gt_be;
    enum { N = 4, V = 1001 };
    float *logits = gt_random((size_t)N * V, -4, 4);
    int32_t labels[N] = {5, 6, 7, 8};
    for (int j = 100; j < 108; j++) logits[2 * V + j] = NAN;
    float *d_logits = gt_dev_upload(be, logits, (size_t)N * V), *d_losses = gt_dev_nan(be, N);
    int32_t *d_labels = gt_dev_upload_ints(be, labels, N);
    int64_t *d_count = gt_dev_count(be, 1);
    be->ops->crossentropy_forward_backward(be, d_losses, d_logits, d_labels, 0.25f, d_count, N, V, V);
    gt_sync(be, "crossentropy_forward_backward with a NaN");
    float losses[N];
    gt_dev_download(be, losses, d_losses, N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(i == 2 ? isnan(losses[i]) : isfinite(losses[i]), "row %d: loss %g", i, (double)losses[i]);
    gt_dev_free(be, d_logits);
    gt_dev_free(be, d_losses);
    gt_dev_free(be, d_labels);
    gt_dev_free(be, d_count);
    free(logits);
}
END_TEST

static Suite *classifier_suite(void) {
    Suite *s = suite_create("cuda fused classifier vs cpu");
    TCase *tc = tcase_create("crossentropy_forward_backward");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_fused_matches_cpu_and_two_ops);
    tcase_add_test(tc, test_fused_nan_reaches_the_loss);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return gt_main("against the CPU kernels", GT_FP32_ONLY, classifier_suite(), NULL); }

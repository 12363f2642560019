/* The CUDA backend against the CPU kernels (test_cuda_ops.c), the device
 * side of a training step and the device's waits (test_cuda_step.c), and its
 * own promises (this file): zero-filled memory, out-of-memory and bad-device
 * errors that name the problem, failures kept by ops and reported once by
 * check/sync, ops that a CUDA graph can capture, and the op profiler's
 * CUDA timer.
 *
 * Labelled `gpu`: CPU-only CI runs `ctest -LE gpu`.  Without a usable GPU
 * the suite says why and exits 77 (CTest: skipped) unless
 * LMCORE_REQUIRE_GPU=1 (tests/gpu/run.sh sets it), which makes it a failure.
 * Check runs in no-fork mode: CUDA is initialised once in main(), and a
 * forked child must never inherit a CUDA context. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "gpu_test_util.h"
#include "kernels_cuda.h"
#include "lmcore/status.h"
#include "profile_report.h"
#include "test_main.h"

START_TEST(test_describe) {
    const char *text = gt_be->ops->describe(gt_be);
    printf("backend: %s\n", text);
    ck_assert_msg(strncmp(text, "cuda:0 ", 7) == 0 && strstr(text, "(sm_") && strstr(text, " GiB)"),
                  "unexpected description '%s'", text);
    ck_assert_int_eq(gt_be->precision, LM_PRECISION_FP32);
    ck_assert_int_eq(gt_be_tf32->precision, LM_PRECISION_TF32);
    ck_assert_int_eq(gt_be_bf16->precision, LM_PRECISION_BF16);
}
END_TEST

START_TEST(test_alloc_is_zeroed) {
    const size_t n = (1u << 20) + 3;
    float *d = NULL;
    ck_assert_int_eq(gt_be->ops->alloc(gt_be, (void **)&d, n * sizeof(float), "zero test"), LM_OK);
    float *h = gt_host(n);
    gt_fill_nan(h, n);
    gt_dev_download(gt_be, h, d, n);
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) nonzero += h[i] != 0.0f;
    ck_assert_msg(nonzero == 0, "%zu elements of a new allocation are not 0", nonzero);
    /* zero() after writing */
    float *r = gt_random(n, 1, 2);
    ck_assert_int_eq(gt_be->ops->upload(gt_be, d, r, n * sizeof(float)), LM_OK);
    gt_be->ops->zero(gt_be, d + 5, (n - 10) * sizeof(float));
    gt_dev_download(gt_be, h, d, n);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += h[i] != (i < 5 || i >= n - 5 ? r[i] : 0.0f);
    ck_assert_msg(wrong == 0, "after zero() of the middle: %zu elements wrong", wrong);
    void *empty = (void *)1;
    ck_assert_int_eq(gt_be->ops->alloc(gt_be, &empty, 0, "empty"), LM_OK);
    ck_assert_ptr_null(empty);
    gt_be->ops->free(gt_be, NULL);
    gt_be->ops->free(gt_be, d);
    gt_sync(gt_be, "free");
    free(h);
    free(r);
}
END_TEST

START_TEST(test_out_of_memory) {
    void *p = NULL;
    const size_t huge = (size_t)1 << 50; /* 1 PiB */
    lm_status status = gt_be->ops->alloc(gt_be, &p, huge, "the absurd test buffer");
    printf("OOM message: %s\n", lm_error_message());
    ck_assert_int_eq(status, LM_ERR_NOMEM);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(lm_error_message(), "the absurd test buffer") && strstr(lm_error_message(), "MiB free"),
                  "OOM message does not say what and how much: %s", lm_error_message());
    /* the failed allocation must not poison later work */
    gt_sync(gt_be, "a failed allocation");
    float one = 1.0f, *d = gt_dev_upload(gt_be, &one, 1);
    gt_be->ops->residual_forward(gt_be, d, d, d, 1);
    float back = 0.0f;
    gt_dev_download(gt_be, &back, d, 1);
    ck_assert_msg(back == 2.0f, "backend unusable after OOM (got %g)", back);
    gt_dev_free(gt_be, d);
}
END_TEST

START_TEST(test_bad_device) {
    lm_backend *be = NULL;
    lm_status status = lm_backend_cuda_create(&be, 999, LM_PRECISION_FP32);
    printf("bad device message: %s\n", lm_error_message());
    ck_assert_int_eq(status, LM_ERR_DEVICE);
    ck_assert_ptr_null(be);
    ck_assert_msg(strstr(lm_error_message(), "999") != NULL, "message does not name the device: %s",
                  lm_error_message());
}
END_TEST

/* An op that cuBLAS refuses (leading dimension smaller than the rows) is
 * kept and reported once, naming the op; the context stays usable. */
START_TEST(test_kept_error) {
    lm_cuda_ctx *ctx = NULL;
    ck_assert_msg(lm_cuda_ctx_create(&ctx, 0, LM_PRECISION_FP32) == LM_OK, "%s", lm_error_message());
    float *buf = NULL;
    ck_assert_int_eq(cudaMalloc((void **)&buf, 4096 * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMemset(buf, 0, 4096 * sizeof(float)), cudaSuccess);
    /* the context's stream does not wait for the legacy stream */
    ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);
    /* stride 1 < head size 8: an invalid lda for the score GEMM */
    lm_cuda_attention_forward(ctx, buf, buf + 1024, buf + 2048, buf, buf, buf, 1, NULL, 1, 1, 4, 8, 1, 0.0f, NULL, 0);
    lm_status status = lm_cuda_ctx_sync(ctx);
    printf("kept error: %s\n", lm_error_message());
    ck_assert_int_eq(status, LM_ERR_DEVICE);
    ck_assert_msg(strstr(lm_error_message(), "CUDA error in attention_forward") != NULL,
                  "the message does not name the op: %s", lm_error_message());
    ck_assert_int_eq(lm_cuda_ctx_check(ctx), LM_OK); /* reported once */
    lm_cuda_residual_forward(ctx, buf, buf, buf + 4, 4);
    ck_assert_int_eq(lm_cuda_ctx_sync(ctx), LM_OK);
    cudaFree(buf);
    lm_cuda_ctx_destroy(ctx);
}
END_TEST

/* A forward slice (layernorm, linear + bias, GELU, linear, cross-entropy,
 * loss sum) captured into a CUDA graph and replayed gives the eager bits. */
START_TEST(test_graph_capture) {
    const int N = 64, C = 96, H = 384, V = 211;
    lm_cuda_ctx *ctx = NULL;
    ck_assert_msg(lm_cuda_ctx_create(&ctx, 0, LM_PRECISION_FP32) == LM_OK, "%s", lm_error_message());
    cudaStream_t stream = lm_cuda_ctx_stream(ctx);
    const size_t sizes[] = {(size_t)N * C, (size_t)C, (size_t)C, (size_t)C * H, (size_t)H, (size_t)H * V};
    float *host[6], *dev[6];
    for (int i = 0; i < 6; i++) {
        host[i] = gt_random(sizes[i], -1, 1);
        ck_assert_int_eq(cudaMalloc((void **)&dev[i], sizes[i] * sizeof(float)), cudaSuccess);
        ck_assert_int_eq(cudaMemcpy(dev[i], host[i], sizes[i] * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    }
    int32_t *labels = gt_random_ints((size_t)N, 0, V), *d_labels = NULL;
    ck_assert_int_eq(cudaMalloc((void **)&d_labels, N * sizeof(int32_t)), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(d_labels, labels, N * sizeof(int32_t), cudaMemcpyHostToDevice), cudaSuccess);
    float *ln, *mean, *rstd, *hid, *act, *logits, *losses;
    double *loss_sum;
    ck_assert_int_eq(cudaMalloc((void **)&ln, (size_t)N * C * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&mean, N * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&rstd, N * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&hid, (size_t)N * H * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&act, (size_t)N * H * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&logits, (size_t)N * V * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&losses, N * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&loss_sum, sizeof(double)), cudaSuccess);
    /* the copies above ran on the legacy stream, which the context's
     * non-blocking stream does not wait for */
    ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);

#define FORWARD()                                                                                                  \
    do {                                                                                                           \
        lm_cuda_layernorm_forward(ctx, ln, mean, rstd, dev[0], dev[1], dev[2], N, C, 1e-5f);                       \
        lm_cuda_matmul_forward(ctx, hid, ln, dev[3], dev[4], N, C, H, LM_W_IN_OUT);                                \
        lm_cuda_gelu_forward(ctx, act, hid, (size_t)N * H, 1);                                                     \
        lm_cuda_matmul_forward(ctx, logits, act, dev[5], NULL, N, H, V, LM_W_IN_OUT);                              \
        lm_cuda_crossentropy_forward(ctx, losses, logits, d_labels, N, V, V);                                      \
        lm_cuda_sum(ctx, loss_sum, losses, (size_t)N);                                                             \
    } while (0)

    FORWARD();
    ck_assert_msg(lm_cuda_ctx_sync(ctx) == LM_OK, "eager forward: %s", lm_error_message());
    float *eager = gt_host((size_t)N * V), *replay = gt_host((size_t)N * V);
    double eager_sum = 0.0, replay_sum = 0.0;
    ck_assert_int_eq(cudaMemcpy(eager, logits, (size_t)N * V * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(&eager_sum, loss_sum, sizeof(double), cudaMemcpyDeviceToHost), cudaSuccess);
    ck_assert_int_eq(cudaMemset(logits, 0xff, (size_t)N * V * sizeof(float)), cudaSuccess); /* NaN poison */
    ck_assert_int_eq(cudaMemset(loss_sum, 0xff, sizeof(double)), cudaSuccess);
    ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);

    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    ck_assert_int_eq(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    FORWARD();
    cudaError_t end = cudaStreamEndCapture(stream, &graph);
    ck_assert_msg(end == cudaSuccess, "capture failed: %s", cudaGetErrorString(end));
    ck_assert_msg(lm_cuda_ctx_check(ctx) == LM_OK, "an op failed under capture: %s", lm_error_message());
    ck_assert_int_eq(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    for (int i = 0; i < 2; i++) ck_assert_int_eq(cudaGraphLaunch(exec, stream), cudaSuccess);
    ck_assert_msg(lm_cuda_ctx_sync(ctx) == LM_OK, "graph replay: %s", lm_error_message());
    ck_assert_int_eq(cudaMemcpy(replay, logits, (size_t)N * V * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(&replay_sum, loss_sum, sizeof(double), cudaMemcpyDeviceToHost), cudaSuccess);
    gt_assert_bitwise("graph replay logits == eager", replay, eager, (size_t)N * V);
    printf("  graph replay loss sum %.17g, eager %.17g\n", replay_sum, eager_sum);
    ck_assert_msg(memcmp(&replay_sum, &eager_sum, sizeof eager_sum) == 0, "loss sums differ");
#undef FORWARD

    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    for (int i = 0; i < 6; i++) {
        cudaFree(dev[i]);
        free(host[i]);
    }
    cudaFree(d_labels);
    cudaFree(ln);
    cudaFree(mean);
    cudaFree(rstd);
    cudaFree(hid);
    cudaFree(act);
    cudaFree(logits);
    cudaFree(losses);
    cudaFree(loss_sum);
    free(labels);
    free(eager);
    free(replay);
    lm_cuda_ctx_destroy(ctx);
}
END_TEST

/* A profiled CUDA backend of its own (destroying the wrapper destroys it). */
static lm_backend *profiled_cuda(void) {
    lm_backend *be = NULL;
    ck_assert_msg(lm_backend_cuda_create(&be, 0, LM_PRECISION_FP32) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(lm_backend_profile(&be, "gpu test") == LM_OK, "%s", lm_error_message());
    return be;
}

/* The CUDA timer (events on the model's stream) times every op: the report
 * counts each call, its busy time is positive and within the elapsed time,
 * and timing did not stop early. */
START_TEST(test_profile_times_cuda_ops) {
    lm_backend *be = profiled_cuda();
    enum { N = 256, IC = 128, OC = 384 };
    float *x = NULL, *w = NULL, *y = NULL;
    ck_assert_int_eq(be->ops->alloc(be, (void **)&x, N * IC * sizeof(float), "x"), LM_OK);
    ck_assert_int_eq(be->ops->alloc(be, (void **)&w, IC * OC * sizeof(float), "w"), LM_OK);
    ck_assert_int_eq(be->ops->alloc(be, (void **)&y, N * OC * sizeof(float), "y"), LM_OK);
    for (int i = 0; i < 5; i++) be->ops->matmul_forward(be, y, x, w, NULL, N, IC, OC, LM_W_IN_OUT);
    for (int i = 0; i < 3; i++) be->ops->gelu_forward(be, y, y, N * OC, 1);
    ck_assert_msg(be->ops->sync(be) == LM_OK, "%s", lm_error_message());
    char report[8192];
    ck_assert_msg(lm_backend_profile_report(be, report, sizeof report) == LM_OK, "%s", lm_error_message());
    printf("%s\n", report);
    ck_assert_int_eq(lm_test_profile_calls(report, "matmul_forward 256x128 -> 384"), 5);
    ck_assert_int_eq(lm_test_profile_calls(report, "gelu_forward"), 3);
    ck_assert_msg(strstr(report, "timing stopped early") == NULL, "%s", report);
    double busy = 0, elapsed = 0;
    ck_assert_msg(lm_test_profile_busy(report, &busy, &elapsed), "report:\n%s", report);
    /* Each op is timed by its own pair of events (0.5 us resolution). */
    ck_assert_msg(busy > 0 && busy <= elapsed + 8 * 0.0005, "busy %f ms, elapsed %f ms", busy, elapsed);
    be->ops->free(be, x), be->ops->free(be, w), be->ops->free(be, y);
    be->ops->destroy(be);
}
END_TEST

/* An op's failure stays the model's to report even when the profiler reads
 * its marks before any sync (every 2048 ops): the profiler stops timing,
 * and the next sync still returns the failure, naming the op. */
START_TEST(test_profile_keeps_the_models_error) {
    lm_backend *be = profiled_cuda();
    float *buf = NULL;
    ck_assert_int_eq(be->ops->alloc(be, (void **)&buf, 4096 * sizeof(float), "buffer"), LM_OK);
    /* stride 1 < head size 8: an invalid lda for the score GEMM (as in test_kept_error) */
    be->ops->attention_forward(be, buf, buf + 1024, buf + 2048, buf, buf, buf, 1, NULL, 1, 1, 4, 8, 1, 0.0f, NULL, 0);
    for (int i = 0; i < 2100; i++) be->ops->zero(be, buf + 3072, 16 * sizeof(float));
    lm_status status = be->ops->sync(be);
    printf("kept error through the profiler: %s\n", lm_error_message());
    ck_assert_int_eq(status, LM_ERR_DEVICE);
    ck_assert_msg(strstr(lm_error_message(), "attention_forward") != NULL, "%s", lm_error_message());
    char report[8192];
    ck_assert_msg(lm_backend_profile_report(be, report, sizeof report) == LM_OK, "%s", lm_error_message());
    ck_assert_msg(strstr(report, "timing stopped early") != NULL, "%s", report);
    be->ops->free(be, buf);
    be->ops->destroy(be);
}
END_TEST

Suite *gpu_backend_suite(void) {
    Suite *s = suite_create("cuda backend");
    TCase *tc = tcase_create("backend");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_describe);
    tcase_add_test(tc, test_alloc_is_zeroed);
    tcase_add_test(tc, test_out_of_memory);
    tcase_add_test(tc, test_bad_device);
    tcase_add_test(tc, test_kept_error);
    tcase_add_test(tc, test_graph_capture);
    tcase_add_test(tc, test_profile_times_cuda_ops);
    tcase_add_test(tc, test_profile_keeps_the_models_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return gt_main("against the CPU kernels", GT_ALL_PRECISIONS, gpu_backend_suite(), gpu_ops_suite(), gpu_step_suite(),
                   gpu_graph_suite(), NULL);
}

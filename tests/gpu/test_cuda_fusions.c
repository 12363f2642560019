/* The fused and reworked CUDA kernels of issue #16 item 6 against their CPU
 * twins: the sort-based embedding backward (bits), the one-pass LayerNorm
 * backward, residual (+ dropout) + LayerNorm forward, GELU in the cuBLASLt
 * epilogue (forward) and its gradient (backward, c_fc's bias gradient with
 * it), and the vectorised pointwise kernels at aligned and unaligned
 * offsets.  Tolerances are stated at each check and in
 * kernels/cuda/NOTES.md ("NEVER RUN ON A GPU").
 *
 * Labelled `gpu`; without a usable GPU it exits 77 (skipped) unless
 * LMCORE_REQUIRE_GPU=1.  No fork: the CUDA context lives in this process. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "gpu_test_util.h"
#include "kernels.h"
#include "kernels_cuda.h"
#include "lmcore/status.h"
#include "test_main.h"

/* ---- embedding backward: the CPU's bits ------------------------------------------------ */

/* ids: 0 random in [0, V), 1 all equal (one run of N rows). types: 0 none,
 * 1 random type ids, 2 a type table without ids (every row is type 0). */
static void check_embedding_backward_bits(int B, int T, int C, int V, int all_equal, int types) {
    lm_backend *be = gt_be;
    const int N = B * T, n_types = 2;
    printf("embedding_backward bits: B=%d T=%d C=%d V=%d all_equal=%d types=%d\n", B, T, C, V, all_equal, types);
    int32_t *ids = gt_random_ints((size_t)N, 0, V);
    if (all_equal)
        for (int i = 0; i < N; i++) ids[i] = V - 1;
    int32_t *type_ids = types == 1 ? gt_random_ints((size_t)N, 0, n_types) : NULL;
    /* Gradients of mixed magnitudes: any change of the order of the adds
     * changes the rounding, so only the CPU's order passes bit for bit. */
    float *dout = gt_random((size_t)N * C, -1, 1);
    for (size_t i = 0; i < (size_t)N * C; i += 7) dout[i] *= 1e4f;
    float *dwte0 = gt_random((size_t)V * C, -1, 1), *dwpe0 = gt_random((size_t)T * C, -1, 1);
    float *dwtt0 = gt_random((size_t)n_types * C, -1, 1);
    float *dwte = gt_host_copy(dwte0, (size_t)V * C), *dwpe = gt_host_copy(dwpe0, (size_t)T * C);
    float *dwtt = gt_host_copy(dwtt0, (size_t)n_types * C);
    lm_cpu_embedding_backward(dwte, dwpe, types ? dwtt : NULL, dout, ids, type_ids, B, T, C);

    int32_t *d_ids = gt_dev_upload_ints(be, ids, (size_t)N);
    int32_t *d_types = type_ids ? gt_dev_upload_ints(be, type_ids, (size_t)N) : NULL;
    float *d_dout = gt_dev_upload(be, dout, (size_t)N * C);
    float *d_dwte = gt_dev_upload(be, dwte0, (size_t)V * C), *d_dwpe = gt_dev_upload(be, dwpe0, (size_t)T * C);
    float *d_dwtt = gt_dev_upload(be, dwtt0, (size_t)n_types * C);
    be->ops->embedding_backward(be, d_dwte, d_dwpe, types ? d_dwtt : NULL, d_dout, d_ids, d_types, B, T, C);
    gt_sync(be, "embedding_backward");
    float *g = gt_host((size_t)V * C);
    gt_dev_download(be, g, d_dwte, (size_t)V * C);
    gt_compare_exact("embedding_backward dwte", g, dwte, (size_t)V * C);
    gt_dev_download(be, g, d_dwpe, (size_t)T * C);
    gt_compare_exact("embedding_backward dwpe", g, dwpe, (size_t)T * C);
    gt_dev_download(be, g, d_dwtt, (size_t)n_types * C);
    gt_compare_exact("embedding_backward dwtt", g, dwtt, (size_t)n_types * C);

    free(g);
    gt_dev_free(be, d_ids);
    gt_dev_free(be, d_types);
    gt_dev_free(be, d_dout);
    gt_dev_free(be, d_dwte);
    gt_dev_free(be, d_dwpe);
    gt_dev_free(be, d_dwtt);
    free(ids);
    free(type_ids);
    free(dout);
    free(dwte0);
    free(dwpe0);
    free(dwtt0);
    free(dwte);
    free(dwpe);
    free(dwtt);
}

START_TEST(test_embedding_backward_sorted_bits) {
    /* Small first, then the largest (the sort scratch grows), then small
     * again (it is reused). */
    check_embedding_backward_bits(2, 64, 96, 50, 0, 0);
    check_embedding_backward_bits(8, 1024, 768, 50257, 0, 0); /* GPT-2's batch of 8 x 1024 */
    check_embedding_backward_bits(8, 1024, 64, 50257, 1, 0);  /* every id equal: one run of 8192 rows */
    check_embedding_backward_bits(4, 128, 64, 30522, 0, 1);   /* BERT: token types */
    check_embedding_backward_bits(4, 128, 64, 30522, 1, 2);   /* type table without ids */
    check_embedding_backward_bits(1, 1, 32, 7, 0, 0);
}
END_TEST

/* The sort's scratch is allocated outside captures: a capture before any
 * eager backward of that batch size is refused (a kept failure naming the
 * op and saying what to do, nothing queued); after one eager backward, a
 * captured backward replays the CPU's bits (twice: it adds). */
START_TEST(test_embedding_backward_capture) {
    const int B = 4, T = 96, C = 64, V = 300, N = B * T;
    lm_cuda_ctx *ctx = NULL;
    ck_assert_msg(lm_cuda_ctx_create(&ctx, 0, LM_PRECISION_FP32) == LM_OK, "%s", lm_error_message());
    cudaStream_t stream = lm_cuda_ctx_stream(ctx);
    int32_t *ids = gt_random_ints((size_t)N, 0, V);
    for (int i = 0; i < N; i += 3) ids[i] = 17; /* a long run */
    float *dout = gt_random((size_t)N * C, -1, 1), *dwte0 = gt_random((size_t)V * C, -1, 1);
    float *dwpe0 = gt_random((size_t)T * C, -1, 1);
    int32_t *d_ids = NULL;
    float *d_dout = NULL, *d_dwte = NULL, *d_dwpe = NULL;
    ck_assert_int_eq(cudaMalloc((void **)&d_ids, (size_t)N * sizeof(int32_t)), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&d_dout, (size_t)N * C * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&d_dwte, (size_t)V * C * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMalloc((void **)&d_dwpe, (size_t)T * C * sizeof(float)), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(d_ids, ids, (size_t)N * sizeof(int32_t), cudaMemcpyHostToDevice), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(d_dout, dout, (size_t)N * C * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);

    /* Capture first: refused. */
    cudaGraph_t graph = NULL;
    ck_assert_int_eq(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
    lm_cuda_embedding_backward(ctx, d_dwte, d_dwpe, NULL, d_dout, d_ids, NULL, B, T, C);
    ck_assert_int_eq(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    if (graph) cudaGraphDestroy(graph);
    lm_status status = lm_cuda_ctx_check(ctx);
    printf("capture before an eager backward: %s\n", lm_error_message());
    ck_assert_int_eq(status, LM_ERR_DEVICE);
    ck_assert_msg(strstr(lm_error_message(), "embedding_backward") && strstr(lm_error_message(), "before capturing"),
                  "%s", lm_error_message());

    /* One eager backward (into scratch copies), then capture and replay twice. */
    ck_assert_int_eq(cudaMemcpy(d_dwte, dwte0, (size_t)V * C * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(d_dwpe, dwpe0, (size_t)T * C * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);
    lm_cuda_embedding_backward(ctx, d_dwte, d_dwpe, NULL, d_dout, d_ids, NULL, B, T, C);
    ck_assert_msg(lm_cuda_ctx_sync(ctx) == LM_OK, "%s", lm_error_message());
    ck_assert_int_eq(cudaMemcpy(d_dwte, dwte0, (size_t)V * C * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    ck_assert_int_eq(cudaMemcpy(d_dwpe, dwpe0, (size_t)T * C * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);
    ck_assert_int_eq(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
    lm_cuda_embedding_backward(ctx, d_dwte, d_dwpe, NULL, d_dout, d_ids, NULL, B, T, C);
    ck_assert_int_eq(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    ck_assert_msg(lm_cuda_ctx_check(ctx) == LM_OK, "%s", lm_error_message());
    cudaGraphExec_t exec = NULL;
    ck_assert_int_eq(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    for (int replay = 0; replay < 2; replay++) ck_assert_int_eq(cudaGraphLaunch(exec, stream), cudaSuccess);
    ck_assert_msg(lm_cuda_ctx_sync(ctx) == LM_OK, "%s", lm_error_message());

    float *want_te = gt_host_copy(dwte0, (size_t)V * C), *want_pe = gt_host_copy(dwpe0, (size_t)T * C);
    for (int replay = 0; replay < 2; replay++)
        lm_cpu_embedding_backward(want_te, want_pe, NULL, dout, ids, NULL, B, T, C);
    float *got = gt_host((size_t)V * C);
    ck_assert_int_eq(cudaMemcpy(got, d_dwte, (size_t)V * C * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    gt_compare_exact("captured embedding_backward dwte (2 replays)", got, want_te, (size_t)V * C);
    ck_assert_int_eq(cudaMemcpy(got, d_dwpe, (size_t)T * C * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    gt_compare_exact("captured embedding_backward dwpe (2 replays)", got, want_pe, (size_t)T * C);

    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaFree(d_ids), cudaFree(d_dout), cudaFree(d_dwte), cudaFree(d_dwpe);
    free(ids), free(dout), free(dwte0), free(dwpe0), free(want_te), free(want_pe), free(got);
    lm_cuda_ctx_destroy(ctx);
}
END_TEST

/* ---- LayerNorm backward in one pass -------------------------------------------------------- */

/* fp32 tolerance of reductions against the CPU (norm-relative), as
 * test_cuda_ops.c's TOL_REDUCE: the column sums add in another order. */
#define TOL_REDUCE 2e-5

/* store LM_GRAD_WRITE: dinp starts as NaN on both sides (never read). */
static void check_layernorm_backward(int N, int C, int with_dinp, lm_grad_store store) {
    lm_backend *be = gt_be;
    const size_t NC = (size_t)N * C;
    const int write = store == LM_GRAD_WRITE;
    printf("layernorm_backward one pass: N=%d C=%d dinp=%d %s\n", N, C, with_dinp, write ? "written" : "added");
    float *inp = gt_random(NC, -2, 2), *w = gt_random((size_t)C, 0.5f, 1.5f), *b = gt_random((size_t)C, -1, 1);
    float *out = gt_host(NC), *mean = gt_host((size_t)N), *rstd = gt_host((size_t)N);
    lm_cpu_layernorm_forward(out, mean, rstd, inp, w, b, N, C, 1e-5f);
    float *dout = gt_random(NC, -1, 1);
    float *dinp0 = gt_random(NC, -1, 1), *dw0 = gt_random((size_t)C, -1, 1), *db0 = gt_random((size_t)C, -1, 1);
    if (write) gt_fill_nan(dinp0, NC);
    float *dinp = gt_host_copy(dinp0, NC), *dw = gt_host_copy(dw0, (size_t)C), *db = gt_host_copy(db0, (size_t)C);
    lm_cpu_layernorm_backward(with_dinp ? dinp : NULL, dw, db, dout, inp, w, mean, rstd, N, C, store, LM_GRAD_ADD);

    float *d_inp = gt_dev_upload(be, inp, NC), *d_w = gt_dev_upload(be, w, (size_t)C);
    float *d_mean = gt_dev_upload(be, mean, (size_t)N), *d_rstd = gt_dev_upload(be, rstd, (size_t)N);
    float *d_dout = gt_dev_upload(be, dout, NC);
    float *g_dinp[2], *g_dw[2], *g_db[2];
    for (int run = 0; run < 2; run++) {
        float *d_dinp = gt_dev_upload(be, dinp0, NC), *d_dw = gt_dev_upload(be, dw0, (size_t)C);
        float *d_db = gt_dev_upload(be, db0, (size_t)C);
        be->ops->layernorm_backward(be, with_dinp ? d_dinp : NULL, d_dw, d_db, d_dout, d_inp, d_w, d_mean, d_rstd, N,
                                    C, store, LM_GRAD_ADD);
        gt_sync(be, "layernorm_backward");
        g_dinp[run] = gt_host(NC);
        g_dw[run] = gt_host((size_t)C);
        g_db[run] = gt_host((size_t)C);
        gt_dev_download(be, g_dinp[run], d_dinp, NC);
        gt_dev_download(be, g_dw[run], d_dw, (size_t)C);
        gt_dev_download(be, g_db[run], d_db, (size_t)C);
        gt_dev_free(be, d_dinp);
        gt_dev_free(be, d_dw);
        gt_dev_free(be, d_db);
    }
    if (with_dinp && write)
        gt_compare("layernorm_backward dinp (written over NaN)", g_dinp[0], dinp, NC, TOL_REDUCE);
    else if (with_dinp)
        gt_compare_accumulated("layernorm_backward dinp", g_dinp[0], dinp, dinp0, NC, TOL_REDUCE);
    else
        gt_compare_exact("layernorm_backward dinp untouched", g_dinp[0], dinp0, NC);
    gt_compare_accumulated("layernorm_backward dweight", g_dw[0], dw, dw0, (size_t)C, TOL_REDUCE);
    gt_compare_accumulated("layernorm_backward dbias", g_db[0], db, db0, (size_t)C, TOL_REDUCE);
    gt_assert_bitwise("layernorm_backward dinp determinism", g_dinp[0], g_dinp[1], NC);
    gt_assert_bitwise("layernorm_backward dweight determinism", g_dw[0], g_dw[1], (size_t)C);
    gt_assert_bitwise("layernorm_backward dbias determinism", g_db[0], g_db[1], (size_t)C);
    for (int run = 0; run < 2; run++) free(g_dinp[run]), free(g_dw[run]), free(g_db[run]);
    gt_dev_free(be, d_inp);
    gt_dev_free(be, d_w);
    gt_dev_free(be, d_mean);
    gt_dev_free(be, d_rstd);
    gt_dev_free(be, d_dout);
    free(inp), free(w), free(b), free(out), free(mean), free(rstd), free(dout);
    free(dinp0), free(dw0), free(db0), free(dinp), free(dw), free(db);
}

START_TEST(test_layernorm_backward_one_pass) {
    check_layernorm_backward(8192, 768, 1, LM_GRAD_ADD); /* GPT-2 124M at B 8, T 1024: 256 chunks */
    check_layernorm_backward(5, 96, 1, LM_GRAD_ADD);     /* one chunk: straight into dweight/dbias */
    check_layernorm_backward(33, 1536, 1, LM_GRAD_ADD);  /* the widest row the shared memory holds */
    check_layernorm_backward(70, 2000, 1, LM_GRAD_ADD);  /* wider: the two-kernel path */
    check_layernorm_backward(100, 40, 0, LM_GRAD_ADD);   /* no dinp (C not a multiple of 32) */
    /* dinp written over NaN (ln_f, BERT's post-LN LayerNorms): both paths. */
    check_layernorm_backward(8192, 768, 1, LM_GRAD_WRITE);
    check_layernorm_backward(5, 96, 1, LM_GRAD_WRITE);
    check_layernorm_backward(70, 2000, 1, LM_GRAD_WRITE);
}
END_TEST

/* ---- residual (+ dropout) + LayerNorm forward ---------------------------------------------- */

/* The fused op against (a) the unfused CUDA ops, bit for bit (the same
 * float operations: the fused kernel must not change the GPU's training
 * numbers either), and (b) the CPU twin: the residual bit for bit (one add
 * and one product per element, masks from the same Philox draws), the
 * LayerNorm within TOL_REDUCE (the row sums add in another order). */
static void check_residual_layernorm(int N, int C, float p, uint64_t micro_batch) {
    lm_backend *be = gt_be;
    const size_t NC = (size_t)N * C;
    const int site = 7;
    const uint64_t seed = gt_next_seed();
    printf("residual_layernorm_forward: N=%d C=%d p=%g\n", N, C, (double)p);
    float *a = gt_random(NC, -2, 2), *branch = gt_random(NC, -1, 1);
    float *w = gt_random((size_t)C, 0.5f, 1.5f), *b = gt_random((size_t)C, -1, 1);
    float *residual = gt_host(NC), *out = gt_host(NC), *mean = gt_host((size_t)N), *rstd = gt_host((size_t)N);
    lm_cpu_residual_layernorm_forward(residual, out, mean, rstd, a, branch, w, b, N, C, 1e-5f, p, seed,
                                      lm_dropout_stream(micro_batch, site));

    lm_step_state *key = gt_dev_key(be, seed, micro_batch);
    float *d_a = gt_dev_upload(be, a, NC), *d_branch = gt_dev_upload(be, branch, NC);
    float *d_w = gt_dev_upload(be, w, (size_t)C), *d_b = gt_dev_upload(be, b, (size_t)C);
    float *d_res = gt_dev_nan(be, NC), *d_out = gt_dev_nan(be, NC), *d_mean = gt_dev_nan(be, (size_t)N);
    float *d_rstd = gt_dev_nan(be, (size_t)N);
    be->ops->residual_layernorm_forward(be, d_res, d_out, d_mean, d_rstd, d_a, d_branch, d_w, d_b, N, C, 1e-5f, p,
                                        key, site);
    gt_sync(be, "residual_layernorm_forward");
    float *g_res = gt_host(NC), *g_out = gt_host(NC), *g_mean = gt_host((size_t)N), *g_rstd = gt_host((size_t)N);
    gt_dev_download(be, g_res, d_res, NC);
    gt_dev_download(be, g_out, d_out, NC);
    gt_dev_download(be, g_mean, d_mean, (size_t)N);
    gt_dev_download(be, g_rstd, d_rstd, (size_t)N);
    gt_compare_exact("residual_layernorm residual vs cpu", g_res, residual, NC);
    gt_compare("residual_layernorm out vs cpu", g_out, out, NC, TOL_REDUCE);
    gt_compare("residual_layernorm mean vs cpu", g_mean, mean, (size_t)N, TOL_REDUCE);
    gt_compare("residual_layernorm rstd vs cpu", g_rstd, rstd, (size_t)N, TOL_REDUCE);

    /* The unfused CUDA ops, as the models ran them before. */
    float *d_dropped = gt_dev_nan(be, NC);
    const float *d_kept = d_branch;
    if (p > 0.0f) {
        be->ops->dropout_forward(be, d_dropped, d_branch, NC, p, key, site);
        d_kept = d_dropped;
    }
    be->ops->residual_forward(be, d_res, d_a, d_kept, NC);
    be->ops->layernorm_forward(be, d_out, d_mean, d_rstd, d_res, d_w, d_b, N, C, 1e-5f);
    gt_sync(be, "the unfused ops");
    float *u = gt_host(NC);
    gt_dev_download(be, u, d_res, NC);
    gt_compare_exact("residual_layernorm residual vs unfused", g_res, u, NC);
    gt_dev_download(be, u, d_out, NC);
    gt_compare_exact("residual_layernorm out vs unfused", g_out, u, NC);
    gt_dev_download(be, u, d_mean, (size_t)N);
    gt_compare_exact("residual_layernorm mean vs unfused", g_mean, u, (size_t)N);
    gt_dev_download(be, u, d_rstd, (size_t)N);
    gt_compare_exact("residual_layernorm rstd vs unfused", g_rstd, u, (size_t)N);

    free(u), free(g_res), free(g_out), free(g_mean), free(g_rstd);
    gt_dev_free(be, d_dropped);
    gt_dev_free(be, d_a);
    gt_dev_free(be, d_branch);
    gt_dev_free(be, d_w);
    gt_dev_free(be, d_b);
    gt_dev_free(be, d_res);
    gt_dev_free(be, d_out);
    gt_dev_free(be, d_mean);
    gt_dev_free(be, d_rstd);
    gt_dev_free(be, key);
    free(a), free(branch), free(w), free(b), free(residual), free(out), free(mean), free(rstd);
}

START_TEST(test_residual_layernorm_forward) {
    check_residual_layernorm(8192, 768, 0.1f, 3);
    check_residual_layernorm(8192, 768, 0.0f, 0);
    check_residual_layernorm(37, 100, 1.0f, 1);
    check_residual_layernorm(5, 3000, 0.5f, ((uint64_t)1 << 32) + 5); /* a micro-batch past 2^32 */
}
END_TEST

/* Dropout without the step state is kept as a failure naming the op. */
START_TEST(test_residual_layernorm_needs_the_key) {
    lm_backend *be = gt_be;
    float *d = gt_dev_nan(be, 64);
    be->ops->residual_layernorm_forward(be, d, d + 16, d + 32, d + 40, d + 48, d + 48, d + 56, d + 56, 2, 8, 1e-5f,
                                        0.3f, NULL, 0);
    lm_status status = be->ops->sync(be);
    printf("kept: %s\n", lm_error_message());
    ck_assert_int_eq(status, LM_ERR_DEVICE);
    ck_assert_msg(strstr(lm_error_message(), "residual_layernorm_forward") != NULL, "%s", lm_error_message());
    gt_dev_free(be, d);
}
END_TEST

/* ---- linear layer + tanh GELU in the cuBLASLt epilogue -------------------------------------- */

/* Against the CPU twin (matmul_forward + gelu_forward): pre_gelu and out
 * within `tol` (fp32 2e-5 as test_cuda_ops.c's GEMMs; tf32 3e-3; bf16 2e-2:
 * 8 mantissa bits in the products).  And out against the GPU's own
 * gelu_forward of the GPU's pre_gelu within 1e-6 (TOL_POINTWISE): cuBLASLt's
 * GELU must be the tanh form (the erf form differs by ~1e-4 of the norm).
 * offset shifts pre_gelu off 16-byte alignment (1 float): the op must then
 * fall back to the two unfused ops, bit for bit. */
static void check_matmul_gelu(lm_backend *be, const char *precision, int N, int IC, int OC, lm_weight_layout layout,
                              int with_bias, size_t offset, double tol) {
    const size_t n = (size_t)N * OC;
    printf("matmul_gelu_forward %s: N=%d IC=%d OC=%d layout=%d bias=%d offset=%zu\n", precision, N, IC, OC,
           (int)layout, with_bias, offset);
    float *inp = gt_random((size_t)N * IC, -1, 1), *w = gt_random((size_t)IC * OC, -0.1f, 0.1f);
    float *bias = gt_random((size_t)OC, -0.5f, 0.5f);
    float *pre = gt_host(n), *out = gt_host(n);
    lm_cpu_matmul_gelu_forward(out, pre, inp, w, with_bias ? bias : NULL, N, IC, OC, layout);

    float *d_inp = gt_dev_upload(be, inp, (size_t)N * IC), *d_w = gt_dev_upload(be, w, (size_t)IC * OC);
    float *d_bias = gt_dev_upload(be, bias, (size_t)OC);
    float *d_pre_base = gt_dev_nan(be, n + offset), *d_pre = d_pre_base + offset, *d_out = gt_dev_nan(be, n);
    be->ops->matmul_gelu_forward(be, d_out, d_pre, d_inp, d_w, with_bias ? d_bias : NULL, N, IC, OC, layout);
    gt_sync(be, "matmul_gelu_forward");
    float *g_pre = gt_host(n), *g_out = gt_host(n), *g_gelu = gt_host(n);
    gt_dev_download(be, g_pre, d_pre, n);
    gt_dev_download(be, g_out, d_out, n);
    gt_compare("matmul_gelu pre_gelu vs cpu", g_pre, pre, n, tol);
    gt_compare("matmul_gelu out vs cpu", g_out, out, n, tol);

    /* The GPU's own GELU of the GPU's pre-GELU values. */
    float *d_gelu = gt_dev_nan(be, n);
    be->ops->gelu_forward(be, d_gelu, d_pre, n, 1);
    gt_sync(be, "gelu_forward");
    gt_dev_download(be, g_gelu, d_gelu, n);
    if (offset)
        gt_compare_exact("matmul_gelu out (unfused fallback) vs gelu_forward", g_out, g_gelu, n);
    else
        gt_compare("matmul_gelu out vs gelu_forward(pre_gelu)", g_out, g_gelu, n, 1e-6);

    gt_dev_free(be, d_inp);
    gt_dev_free(be, d_w);
    gt_dev_free(be, d_bias);
    gt_dev_free(be, d_pre_base);
    gt_dev_free(be, d_out);
    gt_dev_free(be, d_gelu);
    free(inp), free(w), free(bias), free(pre), free(out), free(g_pre), free(g_out), free(g_gelu);
}

START_TEST(test_matmul_gelu_forward) {
    check_matmul_gelu(gt_be, "fp32", 1024, 768, 3072, LM_W_IN_OUT, 1, 0, 2e-5); /* GPT-2's c_fc */
    check_matmul_gelu(gt_be, "fp32", 37, 96, 384, LM_W_IN_OUT, 0, 0, 2e-5);
    check_matmul_gelu(gt_be, "fp32", 37, 96, 384, LM_W_OUT_IN, 1, 0, 2e-5);
    check_matmul_gelu(gt_be, "fp32", 37, 96, 100, LM_W_IN_OUT, 1, 0, 2e-5); /* OC % 8 != 0: may fall back */
    check_matmul_gelu(gt_be, "fp32", 64, 96, 384, LM_W_IN_OUT, 1, 1, 2e-5); /* unaligned aux: falls back */
    check_matmul_gelu(gt_be_tf32, "tf32", 256, 768, 3072, LM_W_IN_OUT, 1, 0, 3e-3);
    check_matmul_gelu(gt_be_bf16, "bf16", 256, 768, 3072, LM_W_IN_OUT, 1, 0, 2e-2);
}
END_TEST

/* ---- matmul_backward's dinp written (GEMM beta = 0) ----------------------------------------------- */

/* LM_GRAD_WRITE over a dinp of NaN (never read: cuBLAS(Lt) at beta = 0)
 * against the CPU within the GEMM tolerance (fp32); offset 1 puts dinp off
 * 16-byte alignment (4-byte alignment passed to cuBLASLt, or the cuBLAS
 * fallback).  LM_GRAD_ADD's accumulation is test_cuda_ops.c's
 * check_matmul. */
static void check_matmul_dinp_written(int N, int IC, int OC, lm_weight_layout layout, size_t offset) {
    lm_backend *be = gt_be;
    const size_t nx = (size_t)N * IC, ny = (size_t)N * OC, nw = (size_t)IC * OC;
    printf("matmul_backward dinp written: N=%d IC=%d OC=%d layout=%d offset=%zu\n", N, IC, OC, (int)layout, offset);
    float *x = gt_random(nx, -1, 1), *w = gt_random(nw, -0.5f, 0.5f), *dy = gt_random(ny, -1, 1);
    float *want = gt_host(nx), *got = gt_host(nx), *nan_dx = gt_host(nx + offset);
    lm_cpu_matmul_backward(want, NULL, NULL, dy, x, w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_ADD);
    gt_fill_nan(nan_dx, nx + offset);
    float *d_x = gt_dev_upload(be, x, nx), *d_w = gt_dev_upload(be, w, nw), *d_dy = gt_dev_upload(be, dy, ny);
    float *d_dx_base = gt_dev_upload(be, nan_dx, nx + offset), *d_dx = d_dx_base + offset;
    be->ops->matmul_backward(be, d_dx, NULL, NULL, d_dy, d_x, d_w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_ADD);
    gt_sync(be, "matmul_backward (dinp written)");
    gt_dev_download(be, got, d_dx, nx);
    gt_compare("matmul_backward dinp written over NaN", got, want, nx, 2e-5);
    float *to_free[] = {d_x, d_w, d_dy, d_dx_base};
    for (size_t i = 0; i < sizeof to_free / sizeof *to_free; i++) gt_dev_free(be, to_free[i]);
    free(x), free(w), free(dy), free(want), free(got), free(nan_dx);
}

/* The first micro-batch's parameter gradients (dparam_store LM_GRAD_WRITE)
 * over a dweight and dbias of NaN: the dweight GEMM at beta = 0 and dbias
 * from its BGRADA (IN_OUT) or BGRADB (OUT_IN) epilogue when dbias is 16-byte
 * aligned (offset 0), the written column reduction otherwise (offset 1, or
 * no algorithm); against the CPU within 2e-5.  Then LM_GRAD_ADD adds onto
 * them: twice the values.  If cuBLASLt has no fp32 BGRAD algorithm the
 * fallback runs silently: the op profile shows it (no column reduction
 * kernel from matmul_backward on a first micro-batch with the epilogue). */
static void check_matmul_params_written(int N, int IC, int OC, lm_weight_layout layout, size_t offset) {
    lm_backend *be = gt_be;
    const size_t nx = (size_t)N * IC, ny = (size_t)N * OC, nw = (size_t)IC * OC;
    printf("matmul_backward parameter gradients written: N=%d IC=%d OC=%d layout=%d dbias offset=%zu\n", N, IC, OC,
           (int)layout, offset);
    float *x = gt_random(nx, -1, 1), *w = gt_random(nw, -0.5f, 0.5f), *dy = gt_random(ny, -1, 1);
    float *want_w = gt_host(nw), *want_b = gt_host((size_t)OC), *got = gt_host(nw), *nan = gt_host(nw + offset);
    gt_fill_nan(want_w, nw), gt_fill_nan(want_b, (size_t)OC), gt_fill_nan(nan, nw + offset);
    lm_cpu_matmul_backward(NULL, want_w, want_b, dy, x, w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_WRITE);
    float *d_x = gt_dev_upload(be, x, nx), *d_w = gt_dev_upload(be, w, nw), *d_dy = gt_dev_upload(be, dy, ny);
    float *d_dw = gt_dev_upload(be, nan, nw), *d_db_base = gt_dev_upload(be, nan, (size_t)OC + offset);
    float *d_db = d_db_base + offset;
    be->ops->matmul_backward(be, NULL, d_dw, d_db, d_dy, d_x, d_w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_WRITE);
    gt_sync(be, "matmul_backward (parameter gradients written)");
    gt_dev_download(be, got, d_dw, nw);
    gt_compare("matmul_backward dweight written over NaN", got, want_w, nw, 2e-5);
    gt_dev_download(be, got, d_db, (size_t)OC);
    gt_compare("matmul_backward dbias written over NaN", got, want_b, (size_t)OC, 2e-5);
    be->ops->matmul_backward(be, NULL, d_dw, d_db, d_dy, d_x, d_w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_ADD);
    gt_sync(be, "matmul_backward (parameter gradients added)");
    for (size_t i = 0; i < nw; i++) want_w[i] *= 2.0f;
    for (int o = 0; o < OC; o++) want_b[o] *= 2.0f;
    gt_dev_download(be, got, d_dw, nw);
    gt_compare("matmul_backward dweight added onto the written one", got, want_w, nw, 2e-5);
    gt_dev_download(be, got, d_db, (size_t)OC);
    gt_compare("matmul_backward dbias added onto the written one", got, want_b, (size_t)OC, 2e-5);
    float *to_free[] = {d_x, d_w, d_dy, d_dw, d_db_base};
    for (size_t i = 0; i < sizeof to_free / sizeof *to_free; i++) gt_dev_free(be, to_free[i]);
    free(x), free(w), free(dy), free(want_w), free(want_b), free(got), free(nan);
}

START_TEST(test_matmul_backward_dinp_written) {
    check_matmul_dinp_written(1024, 768, 3072, LM_W_IN_OUT, 0); /* GPT-2's c_fc: dln */
    check_matmul_dinp_written(37, 96, 40, LM_W_OUT_IN, 0);
    check_matmul_dinp_written(37, 96, 40, LM_W_IN_OUT, 1);
    check_matmul_params_written(1024, 768, 3072, LM_W_IN_OUT, 0); /* GPT-2's c_fc: BGRADA */
    check_matmul_params_written(1024, 768, 768, LM_W_OUT_IN, 0);  /* BERT's attention output: BGRADB */
    check_matmul_params_written(37, 96, 40, LM_W_IN_OUT, 1);      /* dbias off 16 bytes: the column sums */
    check_matmul_params_written(37, 96, 40, LM_W_OUT_IN, 1);
}
END_TEST

/* ---- the backward of a tanh GELU then a linear layer, GELU gradient in the epilogue ---------------- */

/* gelu_matmul_backward against its CPU twin (matmul_backward with dinp
 * written, gelu_backward in place, the column sum of dpre_gelu): dpre_gelu,
 * written over NaN, within `tol` (the GEMM's: fp32 2e-5, tf32 3e-3, bf16
 * 2e-2); dweight, dbias and dbias_pre ADDED onto random values (LM_GRAD_ADD:
 * DGELU_BGRAD would overwrite dbias_pre, so the op must not use it here).  And dpre_gelu against the GPU's own
 * matmul_backward + gelu_backward within `tol` as well (the fused GEMM may
 * pick another algorithm, so not 1e-6; cuBLASLt's DGELU must be the tanh
 * form's derivative: the erf form's differs by ~1e-3 near |x| = 2);
 * bit for bit when offset puts pre_gelu off 16-byte alignment (the op then
 * runs those two ops itself). */
static void check_gelu_matmul_backward(lm_backend *be, const char *precision, int N, int IC, int OC,
                                       lm_weight_layout layout, int with_bias, size_t offset, double tol) {
    const size_t nx = (size_t)N * IC, ny = (size_t)N * OC, nw = (size_t)IC * OC;
    printf("gelu_matmul_backward %s: N=%d IC=%d OC=%d layout=%d bias=%d offset=%zu\n", precision, N, IC, OC,
           (int)layout, with_bias, offset);
    float *pre = gt_random(nx, -4, 4), *act = gt_host(nx), *w = gt_random(nw, -0.1f, 0.1f);
    float *dout = gt_random(ny, -1, 1), *dw0 = gt_random(nw, -1, 1), *db0 = gt_random((size_t)OC, -1, 1);
    float *dbp0 = gt_random((size_t)IC, -1, 1);
    lm_cpu_gelu_forward(act, pre, nx, 1);
    float *dpre = gt_host(nx), *dw = gt_host_copy(dw0, nw), *db = gt_host_copy(db0, (size_t)OC);
    float *dbp = gt_host_copy(dbp0, (size_t)IC);
    lm_cpu_gelu_matmul_backward(dpre, dw, with_bias ? db : NULL, with_bias ? dbp : NULL, dout, act, pre, w, N, IC,
                                OC, layout, LM_GRAD_ADD);

    float *pre_shifted = gt_host(nx + offset);
    memcpy(pre_shifted + offset, pre, nx * sizeof *pre);
    float *d_pre_base = gt_dev_upload(be, pre_shifted, nx + offset), *d_pre = d_pre_base + offset;
    float *d_act = gt_dev_upload(be, act, nx), *d_w = gt_dev_upload(be, w, nw), *d_dout = gt_dev_upload(be, dout, ny);
    float *d_dw = gt_dev_upload(be, dw0, nw), *d_db = gt_dev_upload(be, db0, (size_t)OC);
    float *d_dbp = gt_dev_upload(be, dbp0, (size_t)IC);
    float *d_dpre = gt_dev_nan(be, nx);
    be->ops->gelu_matmul_backward(be, d_dpre, d_dw, with_bias ? d_db : NULL, with_bias ? d_dbp : NULL, d_dout, d_act,
                                  d_pre, d_w, N, IC, OC, layout, LM_GRAD_ADD);
    gt_sync(be, "gelu_matmul_backward");
    float *g = gt_host(nx > nw ? nx : nw), *g_two = gt_host(nx);
    const double tol_sum = tol > TOL_REDUCE ? tol : TOL_REDUCE;
    gt_dev_download(be, g, d_dpre, nx);
    gt_compare("gelu_matmul_backward dpre_gelu vs cpu", g, dpre, nx, tol);

    /* The GPU's two unfused ops. */
    float *d_two = gt_dev_nan(be, nx);
    be->ops->matmul_backward(be, d_two, NULL, NULL, d_dout, d_act, d_w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_ADD);
    be->ops->gelu_backward(be, d_two, d_pre, d_two, nx, 1);
    gt_sync(be, "matmul_backward + gelu_backward");
    gt_dev_download(be, g_two, d_two, nx);
    if (offset)
        gt_compare_exact("gelu_matmul_backward (unfused fallback) vs the two ops", g, g_two, nx);
    else
        gt_compare("gelu_matmul_backward vs the two ops", g, g_two, nx, tol);

    gt_dev_download(be, g, d_dw, nw);
    gt_compare_accumulated("gelu_matmul_backward dweight (added)", g, dw, dw0, nw, tol);
    gt_dev_download(be, g, d_db, (size_t)OC);
    if (with_bias)
        gt_compare_accumulated("gelu_matmul_backward dbias (added)", g, db, db0, (size_t)OC, tol_sum);
    else
        gt_compare_exact("gelu_matmul_backward without bias leaves dbias", g, db0, (size_t)OC);
    gt_dev_download(be, g, d_dbp, (size_t)IC);
    if (with_bias)
        gt_compare_accumulated("gelu_matmul_backward dbias_pre (added)", g, dbp, dbp0, (size_t)IC, tol_sum);
    else
        gt_compare_exact("gelu_matmul_backward without dbias_pre leaves it", g, dbp0, (size_t)IC);

    float *to_free[] = {d_pre_base, d_act, d_w, d_dout, d_dw, d_db, d_dbp, d_dpre, d_two};
    for (size_t i = 0; i < sizeof to_free / sizeof *to_free; i++) gt_dev_free(be, to_free[i]);
    free(pre), free(act), free(w), free(dout), free(dw0), free(db0), free(dbp0), free(dpre), free(dw), free(db);
    free(dbp), free(pre_shifted), free(g), free(g_two);
}

/* The first micro-batch (dparam_store LM_GRAD_WRITE) with dbias_pre, GPT-2's
 * c_fc bias gradient: dpre_gelu, dweight, dbias and dbias_pre written over
 * NaN, against the CPU twin within `tol` (sums: at least TOL_REDUCE).  With
 * dbias_pre 16-byte aligned (bias_offset 0, or 4 floats: 16 bytes but not
 * 32, less than the plan's heuristic assumed) the DGELU GEMM writes it with
 * CUBLASLT_EPILOGUE_DGELU_BGRAD; off 16 bytes (bias_offset 1) plain DGELU
 * then the written column reduction; pre_offset 1 (the aux matrix off 16
 * bytes) the unfused ops then the column reduction.  Then LM_GRAD_ADD onto
 * them (the column reduction adding): twice every parameter gradient.  If
 * cuBLASLt has no DGELU_BGRAD algorithm the fallback runs silently (the op
 * profile shows a column reduction under gelu_matmul_backward on a first
 * micro-batch). */
static void check_gelu_matmul_backward_written(lm_backend *be, const char *precision, int N, int IC, int OC,
                                               size_t pre_offset, size_t bias_offset, double tol) {
    const size_t nx = (size_t)N * IC, ny = (size_t)N * OC, nw = (size_t)IC * OC;
    const double tol_sum = tol > TOL_REDUCE ? tol : TOL_REDUCE;
    printf("gelu_matmul_backward written %s: N=%d IC=%d OC=%d pre_gelu offset=%zu dbias_pre offset=%zu\n",
           precision, N, IC, OC, pre_offset, bias_offset);
    float *pre = gt_random(nx, -4, 4), *act = gt_host(nx), *w = gt_random(nw, -0.1f, 0.1f);
    float *dout = gt_random(ny, -1, 1);
    lm_cpu_gelu_forward(act, pre, nx, 1);
    float *dpre = gt_host(nx), *dw = gt_host(nw), *db = gt_host((size_t)OC), *dbp = gt_host((size_t)IC);
    gt_fill_nan(dw, nw), gt_fill_nan(db, (size_t)OC), gt_fill_nan(dbp, (size_t)IC);
    lm_cpu_gelu_matmul_backward(dpre, dw, db, dbp, dout, act, pre, w, N, IC, OC, LM_W_IN_OUT, LM_GRAD_WRITE);

    float *pre_shifted = gt_host(nx + pre_offset);
    memcpy(pre_shifted + pre_offset, pre, nx * sizeof *pre);
    float *d_pre_base = gt_dev_upload(be, pre_shifted, nx + pre_offset), *d_pre = d_pre_base + pre_offset;
    float *d_act = gt_dev_upload(be, act, nx), *d_w = gt_dev_upload(be, w, nw), *d_dout = gt_dev_upload(be, dout, ny);
    float *d_dpre = gt_dev_nan(be, nx), *d_dw = gt_dev_nan(be, nw), *d_db = gt_dev_nan(be, (size_t)OC);
    float *d_dbp_base = gt_dev_nan(be, (size_t)IC + bias_offset), *d_dbp = d_dbp_base + bias_offset;
    float *g = gt_host(nx > nw ? nx : nw);
    for (int pass = 0; pass < 2; pass++) { /* written, then added onto it */
        const lm_grad_store store = pass == 0 ? LM_GRAD_WRITE : LM_GRAD_ADD;
        const char *how = pass == 0 ? "written over NaN" : "added onto the written one";
        char what[160];
        be->ops->gelu_matmul_backward(be, d_dpre, d_dw, d_db, d_dbp, d_dout, d_act, d_pre, d_w, N, IC, OC,
                                      LM_W_IN_OUT, store);
        gt_sync(be, "gelu_matmul_backward (written)");
        gt_dev_download(be, g, d_dpre, nx);
        gt_compare("gelu_matmul_backward dpre_gelu vs cpu", g, dpre, nx, tol);
        gt_dev_download(be, g, d_dw, nw);
        snprintf(what, sizeof what, "gelu_matmul_backward dweight %s", how);
        gt_compare(what, g, dw, nw, tol);
        gt_dev_download(be, g, d_db, (size_t)OC);
        snprintf(what, sizeof what, "gelu_matmul_backward dbias %s", how);
        gt_compare(what, g, db, (size_t)OC, tol_sum);
        gt_dev_download(be, g, d_dbp, (size_t)IC);
        snprintf(what, sizeof what, "gelu_matmul_backward dbias_pre %s", how);
        gt_compare(what, g, dbp, (size_t)IC, tol_sum);
        for (size_t i = 0; i < nw; i++) dw[i] *= 2.0f;
        for (int o = 0; o < OC; o++) db[o] *= 2.0f;
        for (int i = 0; i < IC; i++) dbp[i] *= 2.0f;
    }

    float *to_free[] = {d_pre_base, d_act, d_w, d_dout, d_dpre, d_dw, d_db, d_dbp_base};
    for (size_t i = 0; i < sizeof to_free / sizeof *to_free; i++) gt_dev_free(be, to_free[i]);
    free(pre), free(act), free(w), free(dout), free(dpre), free(dw), free(db), free(dbp), free(pre_shifted), free(g);
}

START_TEST(test_gelu_matmul_backward) {
    check_gelu_matmul_backward(gt_be, "fp32", 1024, 3072, 768, LM_W_IN_OUT, 1, 0, 2e-5); /* GPT-2's c_proj */
    check_gelu_matmul_backward(gt_be, "fp32", 37, 384, 96, LM_W_IN_OUT, 0, 0, 2e-5);
    check_gelu_matmul_backward(gt_be, "fp32", 37, 384, 96, LM_W_OUT_IN, 1, 0, 2e-5);
    check_gelu_matmul_backward(gt_be, "fp32", 37, 100, 96, LM_W_IN_OUT, 1, 0, 2e-5); /* IC % 8 != 0: falls back */
    check_gelu_matmul_backward(gt_be, "fp32", 64, 384, 96, LM_W_IN_OUT, 1, 1, 2e-5); /* unaligned aux: falls back */
    check_gelu_matmul_backward(gt_be_tf32, "tf32", 256, 3072, 768, LM_W_IN_OUT, 1, 0, 3e-3);
    check_gelu_matmul_backward(gt_be_bf16, "bf16", 256, 3072, 768, LM_W_IN_OUT, 1, 0, 2e-2);
    /* Written, with dbias_pre (GPT-2's c_proj, c_fc's bias). */
    check_gelu_matmul_backward_written(gt_be, "fp32", 1024, 3072, 768, 0, 0, 2e-5); /* DGELU_BGRAD */
    check_gelu_matmul_backward_written(gt_be, "fp32", 1024, 3072, 768, 0, 4, 2e-5); /* 16 bytes, not 32 */
    check_gelu_matmul_backward_written(gt_be, "fp32", 1024, 3072, 768, 0, 1, 2e-5); /* DGELU + column sums */
    check_gelu_matmul_backward_written(gt_be, "fp32", 64, 384, 96, 1, 0, 2e-5);     /* unfused + column sums */
    check_gelu_matmul_backward_written(gt_be, "fp32", 37, 100, 96, 0, 0, 2e-5);     /* IC % 8 != 0 */
    check_gelu_matmul_backward_written(gt_be_tf32, "tf32", 256, 3072, 768, 0, 0, 3e-3);
    check_gelu_matmul_backward_written(gt_be_bf16, "bf16", 256, 3072, 768, 0, 0, 2e-2);
}
END_TEST

/* ---- vectorised pointwise kernels ------------------------------------------------------------ */

/* Each pointwise op at offset 0 (float4 path) and offset 1 (scalar path:
 * the pointers 4-byte aligned only), on n = 4k + 3 elements (a tail):
 * the two give the same bits, and match the CPU twin (residual and
 * dropout's masks and products bit for bit; GELU within 1e-6, its
 * existing tolerance: expf/erff differ from glibc's). */
typedef enum pw_op { PW_RESIDUAL, PW_GELU_FWD, PW_GELU_BWD, PW_DROPOUT_FWD, PW_DROPOUT_BWD } pw_op;

/* A device copy of host[0..n) starting `offset` floats into its allocation;
 * *base receives what to free. */
static float *dev_at(lm_backend *be, const float *host, size_t n, size_t offset, float **base) {
    float *padded = gt_host(n + offset);
    memcpy(padded + offset, host, n * sizeof *host);
    *base = gt_dev_upload(be, padded, n + offset);
    free(padded);
    return *base + offset;
}

static void run_pointwise(lm_backend *be, pw_op op, float *out_host, const float *x, const float *y,
                          const float *init, size_t n, size_t offset, lm_step_state *key) {
    float *bo, *bx, *by;
    float *d_out = dev_at(be, init, n, offset, &bo);
    const float *d_x = dev_at(be, x, n, offset, &bx), *d_y = dev_at(be, y, n, offset, &by);
    switch (op) {
    case PW_RESIDUAL: be->ops->residual_forward(be, d_out, d_x, d_y, n); break;
    case PW_GELU_FWD: be->ops->gelu_forward(be, d_out, d_x, n, 1); break;
    case PW_GELU_BWD: be->ops->gelu_backward(be, d_out, d_x, d_y, n, 0); break;
    case PW_DROPOUT_FWD: be->ops->dropout_forward(be, d_out, d_x, n, 0.25f, key, 9); break;
    case PW_DROPOUT_BWD: be->ops->dropout_backward(be, d_out, d_x, n, 0.25f, key, 9); break;
    }
    gt_sync(be, "pointwise op");
    gt_dev_download(be, out_host, d_out, n);
    gt_dev_free(be, bo);
    gt_dev_free(be, bx);
    gt_dev_free(be, by);
}

static void check_pointwise(pw_op op, const char *name, size_t n) {
    lm_backend *be = gt_be;
    const uint64_t seed = gt_next_seed(), micro_batch = 11;
    printf("%s vectorised vs scalar, n=%zu\n", name, n);
    float *x = gt_random(n, -3, 3), *y = gt_random(n, -1, 1), *init = gt_random(n + 1, -1, 1);
    float *want = gt_host_copy(init, n), *aligned = gt_host(n), *unaligned = gt_host(n);
    const uint64_t stream = lm_dropout_stream(micro_batch, 9);
    switch (op) {
    case PW_RESIDUAL: lm_cpu_residual_forward(want, x, y, n); break;
    case PW_GELU_FWD: lm_cpu_gelu_forward(want, x, n, 1); break;
    case PW_GELU_BWD: lm_cpu_gelu_backward(want, x, y, n, 0); break;
    case PW_DROPOUT_FWD: lm_cpu_dropout_forward(want, x, n, 0.25f, seed, stream); break;
    case PW_DROPOUT_BWD: lm_cpu_dropout_backward(want, x, n, 0.25f, seed, stream); break;
    }
    lm_step_state *key = gt_dev_key(be, seed, micro_batch);
    run_pointwise(be, op, aligned, x, y, init, n, 0, key);
    run_pointwise(be, op, unaligned, x, y, init, n, 1, key);
    gt_compare_exact("float4 path vs scalar path", aligned, unaligned, n);
    if (op == PW_GELU_FWD || op == PW_GELU_BWD) /* gelu_backward writes: init is not read */
        gt_compare("vs the CPU", aligned, want, n, 1e-6);
    else
        gt_compare_exact("vs the CPU", aligned, want, n);
    gt_dev_free(be, key);
    free(x), free(y), free(init), free(want), free(aligned), free(unaligned);
}

START_TEST(test_pointwise_vectorised) {
    const size_t sizes[] = {4 * 100003 + 3, 3, 1};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        check_pointwise(PW_RESIDUAL, "residual_forward", sizes[k]);
        check_pointwise(PW_GELU_FWD, "gelu_forward", sizes[k]);
        check_pointwise(PW_GELU_BWD, "gelu_backward", sizes[k]);
        check_pointwise(PW_DROPOUT_FWD, "dropout_forward", sizes[k]);
        check_pointwise(PW_DROPOUT_BWD, "dropout_backward", sizes[k]);
    }
}
END_TEST

static Suite *fusions_suite(void) {
    Suite *s = suite_create("cuda fusions vs cpu");
    TCase *tc = tcase_create("fusions");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_embedding_backward_sorted_bits);
    tcase_add_test(tc, test_embedding_backward_capture);
    tcase_add_test(tc, test_layernorm_backward_one_pass);
    tcase_add_test(tc, test_residual_layernorm_forward);
    tcase_add_test(tc, test_residual_layernorm_needs_the_key);
    tcase_add_test(tc, test_matmul_gelu_forward);
    tcase_add_test(tc, test_matmul_backward_dinp_written);
    tcase_add_test(tc, test_gelu_matmul_backward);
    tcase_add_test(tc, test_pointwise_vectorised);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return gt_main("against the CPU kernels", GT_ALL_PRECISIONS, fusions_suite(), NULL); }

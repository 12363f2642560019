/* Every op of the CUDA backend against its CPU twin (kernels/cpu) on fresh
 * random inputs: forward outputs (poisoned with NaN beforehand, so an
 * unwritten element fails), backward accumulation (gradients start from
 * random values; what was added is compared), dropout masks element for
 * element, and run-to-run determinism of the ops that promise it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test_util.h"
#include "kernels.h"
#include "lmcore/status.h"

/* fp32 tolerances (norm-relative): element-wise ops vs reductions/GEMMs. */
#define TOL_POINTWISE 1e-6
#define TOL_REDUCE 2e-5
#define TOL_GEMM 2e-5

/* A device copy of host[0..n) starting `offset` floats into its allocation
 * (offset 1 = 4-byte aligned only).  *base receives what to free. */
static float *dev_at_offset(lm_backend *be, const float *host, size_t n, size_t offset, float **base) {
    float *padded = gt_host(n + offset);
    memcpy(padded + offset, host, n * sizeof *host);
    *base = gt_dev_upload(be, padded, n + offset);
    free(padded);
    return *base + offset;
}

/* ---- embedding ------------------------------------------------------------------------- */

/* types: 0 none (GPT-2), 1 wtt + type_ids, 2 wtt without type_ids (all type 0). */
static void check_embedding(int B, int T, int C, int V, int types, int one_id) {
    lm_backend *be = gt_be;
    const int N = B * T, n_types = 2;
    printf("embedding B=%d T=%d C=%d V=%d types=%d one_id=%d\n", B, T, C, V, types, one_id);
    int32_t *ids = gt_random_ints((size_t)N, 0, V);
    if (one_id)
        for (int i = 0; i < N; i++) ids[i] = V / 2; /* > 1024 occurrences: several gather chunks */
    int32_t *type_ids = types == 1 ? gt_random_ints((size_t)N, 0, n_types) : NULL;
    float *wte = gt_random((size_t)V * C, -1, 1), *wpe = gt_random((size_t)T * C, -1, 1);
    float *wtt = types ? gt_random((size_t)n_types * C, -1, 1) : NULL;
    float *out_cpu = gt_host((size_t)N * C), *out_gpu = gt_host((size_t)N * C);
    gt_fill_nan(out_cpu, (size_t)N * C);
    lm_cpu_embedding_forward(out_cpu, ids, type_ids, wte, wpe, wtt, B, T, C);

    int32_t *d_ids = gt_dev_upload_ints(be, ids, (size_t)N);
    int32_t *d_types = type_ids ? gt_dev_upload_ints(be, type_ids, (size_t)N) : NULL;
    float *d_wte = gt_dev_upload(be, wte, (size_t)V * C), *d_wpe = gt_dev_upload(be, wpe, (size_t)T * C);
    float *d_wtt = wtt ? gt_dev_upload(be, wtt, (size_t)n_types * C) : NULL;
    float *d_out = gt_dev_nan(be, (size_t)N * C);
    be->ops->embedding_forward(be, d_out, d_ids, d_types, d_wte, d_wpe, d_wtt, B, T, C);
    gt_sync(be, "embedding_forward");
    gt_dev_download(be, out_gpu, d_out, (size_t)N * C);
    gt_compare_exact("embedding_forward out", out_gpu, out_cpu, (size_t)N * C);

    /* backward: accumulate onto random gradients */
    float *dout = gt_random((size_t)N * C, -1, 1);
    float *dwte0 = gt_random((size_t)V * C, -1, 1), *dwpe0 = gt_random((size_t)T * C, -1, 1);
    float *dwtt0 = gt_random((size_t)n_types * C, -1, 1);
    float *dwte = gt_host_copy(dwte0, (size_t)V * C), *dwpe = gt_host_copy(dwpe0, (size_t)T * C);
    float *dwtt = gt_host_copy(dwtt0, (size_t)n_types * C);
    lm_cpu_embedding_backward(dwte, dwpe, types ? dwtt : NULL, dout, ids, type_ids, B, T, C);

    float *d_dout = gt_dev_upload(be, dout, (size_t)N * C);
    float *g_dwte[2], *g_dwpe[2], *g_dwtt[2];
    for (int run = 0; run < 2; run++) {
        float *d_dwte = gt_dev_upload(be, dwte0, (size_t)V * C), *d_dwpe = gt_dev_upload(be, dwpe0, (size_t)T * C);
        float *d_dwtt = gt_dev_upload(be, dwtt0, (size_t)n_types * C);
        be->ops->embedding_backward(be, d_dwte, d_dwpe, types ? d_dwtt : NULL, d_dout, d_ids, d_types, B, T, C);
        gt_sync(be, "embedding_backward");
        g_dwte[run] = gt_host((size_t)V * C);
        g_dwpe[run] = gt_host((size_t)T * C);
        g_dwtt[run] = gt_host((size_t)n_types * C);
        gt_dev_download(be, g_dwte[run], d_dwte, (size_t)V * C);
        gt_dev_download(be, g_dwpe[run], d_dwpe, (size_t)T * C);
        gt_dev_download(be, g_dwtt[run], d_dwtt, (size_t)n_types * C);
        gt_dev_free(be, d_dwte);
        gt_dev_free(be, d_dwpe);
        gt_dev_free(be, d_dwtt);
    }
    gt_compare_accumulated("embedding_backward dwte", g_dwte[0], dwte, dwte0, (size_t)V * C, TOL_REDUCE);
    gt_compare_accumulated("embedding_backward dwpe", g_dwpe[0], dwpe, dwpe0, (size_t)T * C, TOL_REDUCE);
    if (types) gt_compare_accumulated("embedding_backward dwtt", g_dwtt[0], dwtt, dwtt0, (size_t)n_types * C, TOL_REDUCE);
    gt_assert_bitwise("embedding_backward dwte determinism", g_dwte[0], g_dwte[1], (size_t)V * C);
    gt_assert_bitwise("embedding_backward dwtt determinism", g_dwtt[0], g_dwtt[1], (size_t)n_types * C);

    for (int run = 0; run < 2; run++) {
        free(g_dwte[run]);
        free(g_dwpe[run]);
        free(g_dwtt[run]);
    }
    gt_dev_free(be, d_ids);
    gt_dev_free(be, d_types);
    gt_dev_free(be, d_wte);
    gt_dev_free(be, d_wpe);
    gt_dev_free(be, d_wtt);
    gt_dev_free(be, d_out);
    gt_dev_free(be, d_dout);
    free(ids);
    free(type_ids);
    free(wte);
    free(wpe);
    free(wtt);
    free(out_cpu);
    free(out_gpu);
    free(dout);
    free(dwte0);
    free(dwpe0);
    free(dwtt0);
    free(dwte);
    free(dwpe);
    free(dwtt);
}

START_TEST(test_embedding) {
    check_embedding(3, 37, 96, 50, 0, 0);
    check_embedding(2, 64, 128, 1000, 1, 0);
    check_embedding(2, 16, 40, 30, 2, 0);
    check_embedding(4, 700, 32, 11, 1, 1);
}
END_TEST

/* ---- layernorm --------------------------------------------------------------------------- */

static void check_layernorm(int N, int C, float offset, float eps) {
    lm_backend *be = gt_be;
    const size_t NC = (size_t)N * C;
    printf("layernorm N=%d C=%d offset=%g eps=%g\n", N, C, (double)offset, (double)eps);
    float *inp = gt_random(NC, -2, 2);
    for (size_t i = 0; i < NC; i++) inp[i] += offset;
    float *w = gt_random((size_t)C, 0.5f, 1.5f), *b = gt_random((size_t)C, -0.5f, 0.5f);
    float *out = gt_host(NC), *mean = gt_host((size_t)N), *rstd = gt_host((size_t)N);
    gt_fill_nan(out, NC);
    lm_cpu_layernorm_forward(out, mean, rstd, inp, w, b, N, C, eps);

    float *d_inp = gt_dev_upload(be, inp, NC), *d_w = gt_dev_upload(be, w, (size_t)C);
    float *d_b = gt_dev_upload(be, b, (size_t)C);
    float *d_out = gt_dev_nan(be, NC), *d_mean = gt_dev_nan(be, (size_t)N), *d_rstd = gt_dev_nan(be, (size_t)N);
    be->ops->layernorm_forward(be, d_out, d_mean, d_rstd, d_inp, d_w, d_b, N, C, eps);
    gt_sync(be, "layernorm_forward");
    float *g = gt_host(NC);
    gt_dev_download(be, g, d_out, NC);
    gt_compare("layernorm_forward out", g, out, NC, TOL_REDUCE);
    gt_dev_download(be, g, d_mean, (size_t)N);
    gt_compare("layernorm_forward mean", g, mean, (size_t)N, TOL_REDUCE);
    gt_dev_download(be, g, d_rstd, (size_t)N);
    gt_compare("layernorm_forward rstd", g, rstd, (size_t)N, TOL_REDUCE);

    float *dout = gt_random(NC, -1, 1);
    float *dinp0 = gt_random(NC, -1, 1), *dw0 = gt_random((size_t)C, -1, 1), *db0 = gt_random((size_t)C, -1, 1);
    float *dinp = gt_host_copy(dinp0, NC), *dw = gt_host_copy(dw0, (size_t)C), *db = gt_host_copy(db0, (size_t)C);
    lm_cpu_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C, LM_GRAD_ADD, LM_GRAD_ADD);
    float *d_dout = gt_dev_upload(be, dout, NC);
    float *gw[2];
    for (int run = 0; run < 2; run++) {
        /* the GPU backward uses the GPU's own mean/rstd, as in training */
        float *d_dinp = gt_dev_upload(be, dinp0, NC), *d_dw = gt_dev_upload(be, dw0, (size_t)C);
        float *d_db = gt_dev_upload(be, db0, (size_t)C);
        be->ops->layernorm_backward(be, d_dinp, d_dw, d_db, d_dout, d_inp, d_w, d_mean, d_rstd, N, C, LM_GRAD_ADD,
                                    LM_GRAD_ADD);
        gt_sync(be, "layernorm_backward");
        gw[run] = gt_host((size_t)C);
        gt_dev_download(be, gw[run], d_dw, (size_t)C);
        if (run == 0) {
            gt_dev_download(be, g, d_dinp, NC);
            gt_compare_accumulated("layernorm_backward dinp", g, dinp, dinp0, NC, TOL_REDUCE);
            gt_compare_accumulated("layernorm_backward dweight", gw[0], dw, dw0, (size_t)C, TOL_REDUCE);
            gt_dev_download(be, g, d_db, (size_t)C);
            gt_compare_accumulated("layernorm_backward dbias", g, db, db0, (size_t)C, TOL_REDUCE);
        }
        gt_dev_free(be, d_dinp);
        gt_dev_free(be, d_dw);
        gt_dev_free(be, d_db);
    }
    gt_assert_bitwise("layernorm_backward dweight determinism", gw[0], gw[1], (size_t)C);
    free(gw[0]);
    free(gw[1]);
    gt_dev_free(be, d_inp);
    gt_dev_free(be, d_w);
    gt_dev_free(be, d_b);
    gt_dev_free(be, d_out);
    gt_dev_free(be, d_mean);
    gt_dev_free(be, d_rstd);
    gt_dev_free(be, d_dout);
    free(inp);
    free(w);
    free(b);
    free(out);
    free(mean);
    free(rstd);
    free(g);
    free(dout);
    free(dinp0);
    free(dw0);
    free(db0);
    free(dinp);
    free(dw);
    free(db);
}

START_TEST(test_layernorm) {
    check_layernorm(67, 96, 0.0f, 1e-5f);
    check_layernorm(5, 33, 3.0f, 1e-12f);    /* one chunk: the direct column-sum path */
    check_layernorm(1024, 768, 10.0f, 1e-5f); /* GPT-2 width, large mean */
}
END_TEST

/* ---- matmul ------------------------------------------------------------------------------------ */

/* bias_mode: 0 none, 1 16-byte aligned (fused epilogue), 2 misaligned
 * (separate bias kernel); misalign: every other buffer 4-byte aligned only. */
static void check_matmul(lm_backend *be, const char *label, int N, int IC, int OC, lm_weight_layout layout,
                         int bias_mode, int misalign, double tol) {
    printf("matmul[%s] N=%d IC=%d OC=%d layout=%s bias=%d misalign=%d\n", label, N, IC, OC,
           layout == LM_W_IN_OUT ? "IN_OUT" : "OUT_IN", bias_mode, misalign);
    const size_t nx = (size_t)N * IC, ny = (size_t)N * OC, nw = (size_t)IC * OC;
    const size_t off = misalign ? 1 : 0;
    float *x = gt_random(nx, -1, 1), *w = gt_random(nw, -0.5f, 0.5f);
    float *b = bias_mode ? gt_random((size_t)OC, -1, 1) : NULL;
    float *y = gt_host(ny);
    gt_fill_nan(y, ny);
    lm_cpu_matmul_forward(y, x, w, b, N, IC, OC, layout);

    float *bx, *bw, *bb = NULL, *by;
    float *d_x = dev_at_offset(be, x, nx, off, &bx), *d_w = dev_at_offset(be, w, nw, 0, &bw);
    float *d_b = b ? dev_at_offset(be, b, (size_t)OC, bias_mode == 2 ? 1 : 0, &bb) : NULL;
    float *nan_y = gt_host(ny);
    gt_fill_nan(nan_y, ny);
    float *d_y = dev_at_offset(be, nan_y, ny, off, &by);
    be->ops->matmul_forward(be, d_y, d_x, d_w, d_b, N, IC, OC, layout);
    gt_sync(be, "matmul_forward");
    float *g = gt_host(ny > nx ? (ny > nw ? ny : nw) : (nx > nw ? nx : nw));
    gt_dev_download(be, g, d_y, ny);
    gt_compare("matmul_forward out", g, y, ny, tol);

    float *dy = gt_random(ny, -1, 1);
    float *dx0 = gt_random(nx, -1, 1), *dw0 = gt_random(nw, -1, 1), *db0 = gt_random((size_t)OC, -1, 1);
    float *dx = gt_host_copy(dx0, nx), *dw = gt_host_copy(dw0, nw), *db = gt_host_copy(db0, (size_t)OC);
    lm_cpu_matmul_backward(dx, dw, bias_mode ? db : NULL, dy, x, w, N, IC, OC, layout, LM_GRAD_ADD, LM_GRAD_ADD);
    float *bdy, *bdx, *bdw, *bdb;
    float *d_dy = dev_at_offset(be, dy, ny, off, &bdy), *d_dx = dev_at_offset(be, dx0, nx, off, &bdx);
    float *d_dw = dev_at_offset(be, dw0, nw, off, &bdw), *d_db = dev_at_offset(be, db0, (size_t)OC, off, &bdb);
    be->ops->matmul_backward(be, d_dx, d_dw, bias_mode ? d_db : NULL, d_dy, d_x, d_w, N, IC, OC, layout, LM_GRAD_ADD,
                             LM_GRAD_ADD);
    gt_sync(be, "matmul_backward");
    gt_dev_download(be, g, d_dx, nx);
    gt_compare_accumulated("matmul_backward dinp", g, dx, dx0, nx, tol);
    gt_dev_download(be, g, d_dw, nw);
    gt_compare_accumulated("matmul_backward dweight", g, dw, dw0, nw, tol);
    if (bias_mode) {
        gt_dev_download(be, g, d_db, (size_t)OC);
        gt_compare_accumulated("matmul_backward dbias", g, db, db0, (size_t)OC, tol > TOL_REDUCE ? tol : TOL_REDUCE);
    }
    /* dinp = NULL (first layer): dweight still accumulates, nothing else */
    float *bdw2;
    float *d_dw2 = dev_at_offset(be, dw0, nw, 0, &bdw2);
    be->ops->matmul_backward(be, NULL, d_dw2, NULL, d_dy, d_x, d_w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_ADD);
    gt_sync(be, "matmul_backward (dinp NULL)");
    gt_dev_download(be, g, d_dw2, nw);
    gt_compare_accumulated("matmul_backward dweight (dinp NULL)", g, dw, dw0, nw, tol);

    void *to_free[] = {bx, bw, bb, by, bdy, bdx, bdw, bdb, bdw2};
    for (size_t i = 0; i < sizeof to_free / sizeof to_free[0]; i++) gt_dev_free(be, to_free[i]);
    free(x);
    free(w);
    free(b);
    free(y);
    free(nan_y);
    free(g);
    free(dy);
    free(dx0);
    free(dw0);
    free(db0);
    free(dx);
    free(dw);
    free(db);
}

START_TEST(test_matmul) {
    check_matmul(gt_be, "fp32", 77, 96, 288, LM_W_IN_OUT, 1, 0, TOL_GEMM);
    check_matmul(gt_be, "fp32", 77, 96, 288, LM_W_OUT_IN, 1, 0, TOL_GEMM);
    check_matmul(gt_be, "fp32", 31, 50, 70, LM_W_IN_OUT, 2, 1, TOL_GEMM);
    check_matmul(gt_be, "fp32", 31, 50, 70, LM_W_OUT_IN, 0, 1, TOL_GEMM);
    check_matmul(gt_be, "fp32", 256, 768, 2304, LM_W_IN_OUT, 1, 0, TOL_GEMM);
    check_matmul(gt_be, "fp32", 256, 768, 3072, LM_W_OUT_IN, 1, 0, TOL_GEMM);
    check_matmul(gt_be, "fp32", 64, 768, 28996, LM_W_OUT_IN, 1, 0, TOL_GEMM); /* BERT decoder width */
}
END_TEST

/* The cuBLASLt plan of a shape is cached (kernels/cuda/gemm.cu): the same
 * shape on other buffers, with another bias, must use those buffers and that
 * bias, every time. */
START_TEST(test_matmul_plan_reuse) {
    enum { N = 64, IC = 96, OC = 192, SETS = 2 };
    float *x[SETS], *w[SETS], *b[SETS], *y[SETS], *d_x[SETS], *d_w[SETS], *d_b[SETS], *d_y[SETS];
    for (int s = 0; s < SETS; s++) {
        x[s] = gt_random((size_t)N * IC, -1, 1);
        w[s] = gt_random((size_t)IC * OC, -0.5f, 0.5f);
        b[s] = gt_random(OC, -1, 1);
        y[s] = gt_host((size_t)N * OC);
        lm_cpu_matmul_forward(y[s], x[s], w[s], b[s], N, IC, OC, LM_W_IN_OUT);
        d_x[s] = gt_dev_upload(gt_be, x[s], (size_t)N * IC);
        d_w[s] = gt_dev_upload(gt_be, w[s], (size_t)IC * OC);
        d_b[s] = gt_dev_upload(gt_be, b[s], OC);
        d_y[s] = gt_dev_nan(gt_be, (size_t)N * OC);
    }
    float *g = gt_host((size_t)N * OC);
    const int order[] = {0, 1, 0, 1, 1, 0};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        const int s = order[i];
        gt_dev_free(gt_be, d_y[s]);
        d_y[s] = gt_dev_nan(gt_be, (size_t)N * OC);
        gt_be->ops->matmul_forward(gt_be, d_y[s], d_x[s], d_w[s], d_b[s], N, IC, OC, LM_W_IN_OUT);
        gt_sync(gt_be, "matmul_forward (plan reuse)");
        gt_dev_download(gt_be, g, d_y[s], (size_t)N * OC);
        gt_compare(s ? "matmul_forward, set B" : "matmul_forward, set A", g, y[s], (size_t)N * OC, TOL_GEMM);
    }
    for (int s = 0; s < SETS; s++) {
        gt_dev_free(gt_be, d_x[s]);
        gt_dev_free(gt_be, d_w[s]);
        gt_dev_free(gt_be, d_b[s]);
        gt_dev_free(gt_be, d_y[s]);
        free(x[s]);
        free(w[s]);
        free(b[s]);
        free(y[s]);
    }
    free(g);
}
END_TEST

START_TEST(test_matmul_tf32) {
    /* tf32 rounds the operands to 10 mantissa bits: ~3e-4 expected */
    check_matmul(gt_be_tf32, "tf32", 256, 768, 768, LM_W_IN_OUT, 1, 0, 3e-3);
    check_matmul(gt_be_tf32, "tf32", 256, 768, 768, LM_W_OUT_IN, 2, 1, 3e-3);
    /* bf16 math (8 mantissa bits): ~2e-3 expected */
    check_matmul(gt_be_bf16, "bf16", 256, 768, 768, LM_W_IN_OUT, 1, 0, 2e-2);
}
END_TEST

/* ---- attention ------------------------------------------------------------------------------- */

/* interleaved: GPT-2's qkv [B,T,3C] (stride 3C), else three [B,T,C] buffers.
 * mask_mode: 0 none; 1 right padding of random length per batch row; 2 left
 * padding (5 keys) and the last batch row fully padded (queries that see no
 * key: uniform rows).  alias: att == preatt (only with dropout_p == 0).
 * On `be` (label names it), every tolerance times tol_scale (tensor-core
 * math rounds the GEMM operands). */
static void check_attention_on(lm_backend *be, const char *label, double tol_scale, int B, int T, int C, int NH,
                               int interleaved, int causal, int mask_mode, float p, int alias) {
    printf("attention[%s] B=%d T=%d C=%d NH=%d interleaved=%d causal=%d mask=%d p=%g alias=%d\n", label, B, T, C, NH,
           interleaved, causal, mask_mode, (double)p, alias);
    const int stride = interleaved ? 3 * C : C;
    const size_t n_in = (size_t)B * T * stride, n_out = (size_t)B * T * C, n_att = (size_t)B * NH * T * T;
    /* The GPU reads the key (seed, micro-batch) from a device step state and
     * draws with the stream of site 7; the CPU is given that stream. */
    const uint64_t seed = gt_next_seed(), micro_batch = 1000 + (seed >> 48);
    const int site = 7;
    const uint64_t stream = lm_dropout_stream(micro_batch, site);
    /* NULL where nothing is drawn (p 0 or 1): the backend must not read it */
    lm_step_state *d_key = p > 0.0f && p < 1.0f ? gt_dev_key(be, seed, micro_batch) : NULL;
    /* interleaved: one buffer, q/k/v at offsets 0, C, 2C; else three */
    const int n_buffers = interleaved ? 1 : 3;
    float *in[3], *d_in[3];
    for (int i = 0; i < n_buffers; i++) in[i] = gt_random(n_in, -2, 2);
    const float *q = in[0], *k = interleaved ? in[0] + C : in[1], *v = interleaved ? in[0] + 2 * C : in[2];
    int32_t *mask = NULL;
    if (mask_mode) {
        mask = gt_host_ints((size_t)B * T);
        int32_t *lengths = gt_random_ints((size_t)B, 1, T + 1);
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                if (mask_mode == 1) mask[b * T + t] = t < lengths[b];
                else mask[b * T + t] = b == B - 1 ? 0 : t >= 5;
            }
        }
        free(lengths);
    }
    float *out = gt_host(n_out), *preatt = gt_host(n_att), *att_buffer = alias ? preatt : gt_host(n_att);
    gt_fill_nan(out, n_out);
    gt_fill_nan(preatt, n_att);
    gt_fill_nan(att_buffer, n_att);
    lm_cpu_attention_forward(out, preatt, att_buffer, q, k, v, stride, mask, causal, B, T, C, NH, p, seed, stream);

    for (int i = 0; i < n_buffers; i++) d_in[i] = gt_dev_upload(be, in[i], n_in);
    const float *dq_ = d_in[0], *dk_ = interleaved ? d_in[0] + C : d_in[1], *dv_ = interleaved ? d_in[0] + 2 * C : d_in[2];
    int32_t *d_mask = mask ? gt_dev_upload_ints(be, mask, (size_t)B * T) : NULL;
    float *g_out[2], *g_preatt = gt_host(n_att), *g_att = gt_host(n_att), *g_att2 = gt_host(n_att);
    float *g_grad[2][3];

    float *dout = gt_random(n_out, -1, 1);
    float *grad0[3], *grad_cpu[3];
    for (int i = 0; i < n_buffers; i++) {
        grad0[i] = gt_random(n_in, -1, 1);
        grad_cpu[i] = gt_host_copy(grad0[i], n_in);
    }
    float *scratch = gt_host(n_att);
    gt_fill_nan(scratch, n_att);
    float *gq = grad_cpu[0], *gk = interleaved ? grad_cpu[0] + C : grad_cpu[1];
    float *gv = interleaved ? grad_cpu[0] + 2 * C : grad_cpu[2];
    lm_cpu_attention_backward(gq, gk, gv, scratch, dout, preatt, att_buffer, q, k, v, stride, B, T, C, NH, p, seed,
                              stream);
    float *d_dout = gt_dev_upload(be, dout, n_out);

    for (int run = 0; run < 2; run++) {
        float *d_out = gt_dev_nan(be, n_out), *d_preatt = gt_dev_nan(be, n_att);
        float *d_att = alias ? d_preatt : gt_dev_nan(be, n_att);
        be->ops->attention_forward(be, d_out, d_preatt, d_att, dq_, dk_, dv_, stride, d_mask, causal, B, T, C, NH, p,
                                   d_key, site);
        gt_sync(be, "attention_forward");
        g_out[run] = gt_host(n_out);
        gt_dev_download(be, g_out[run], d_out, n_out);
        gt_dev_download(be, run == 0 ? g_att : g_att2, d_att, n_att);
        if (run == 0) gt_dev_download(be, g_preatt, d_preatt, n_att);

        float *d_grad[3];
        for (int i = 0; i < n_buffers; i++) d_grad[i] = gt_dev_upload(be, grad0[i], n_in);
        float *d_scratch = gt_dev_nan(be, n_att);
        float *ddq = d_grad[0], *ddk = interleaved ? d_grad[0] + C : d_grad[1];
        float *ddv = interleaved ? d_grad[0] + 2 * C : d_grad[2];
        be->ops->attention_backward(be, ddq, ddk, ddv, d_scratch, d_dout, d_preatt, d_att, dq_, dk_, dv_, stride, B,
                                    T, C, NH, p, d_key, site);
        gt_sync(be, "attention_backward");
        for (int i = 0; i < n_buffers; i++) {
            g_grad[run][i] = gt_host(n_in);
            gt_dev_download(be, g_grad[run][i], d_grad[i], n_in);
            gt_dev_free(be, d_grad[i]);
        }
        gt_dev_free(be, d_scratch);
        gt_dev_free(be, d_out);
        gt_dev_free(be, d_preatt);
        if (!alias) gt_dev_free(be, d_att);
    }
    gt_compare("attention_forward preatt", g_preatt, preatt, n_att, TOL_REDUCE * tol_scale);
    gt_compare("attention_forward att", g_att, att_buffer, n_att, TOL_REDUCE * tol_scale);
    if (p > 0.0f && p < 1.0f) gt_compare_zero_pattern("attention_forward dropout mask", g_att, att_buffer, preatt, n_att);
    gt_compare("attention_forward out", g_out[0], out, n_out, TOL_GEMM * tol_scale);
    static const char *names[3][2] = {{"attention_backward dqkv", "attention_backward dq"},
                                      {"", "attention_backward dk"},
                                      {"", "attention_backward dv"}};
    for (int i = 0; i < n_buffers; i++)
        gt_compare_accumulated(names[i][interleaved ? 0 : 1], g_grad[0][i], grad_cpu[i], grad0[i], n_in,
                               5e-5 * tol_scale);
    gt_assert_bitwise("attention_forward determinism (out)", g_out[0], g_out[1], n_out);
    gt_assert_bitwise("attention_forward determinism (att)", g_att, g_att2, n_att);
    for (int i = 0; i < n_buffers; i++) gt_assert_bitwise("attention_backward determinism", g_grad[0][i], g_grad[1][i], n_in);

    for (int run = 0; run < 2; run++) {
        free(g_out[run]);
        for (int i = 0; i < n_buffers; i++) free(g_grad[run][i]);
    }
    for (int i = 0; i < n_buffers; i++) {
        gt_dev_free(be, d_in[i]);
        free(in[i]);
        free(grad0[i]);
        free(grad_cpu[i]);
    }
    gt_dev_free(be, d_mask);
    gt_dev_free(be, d_dout);
    gt_dev_free(be, d_key);
    free(mask);
    free(out);
    free(preatt);
    if (!alias) free(att_buffer);
    free(g_preatt);
    free(g_att);
    free(g_att2);
    free(dout);
    free(scratch);
}

static void check_attention(int B, int T, int C, int NH, int interleaved, int causal, int mask_mode, float p,
                            int alias) {
    check_attention_on(gt_be, "fp32", 1.0, B, T, C, NH, interleaved, causal, mask_mode, p, alias);
}

START_TEST(test_attention) {
    check_attention(2, 33, 96, 4, 1, 1, 0, 0.1f, 0);  /* GPT-2 layout, causal, dropout */
    check_attention(3, 29, 64, 2, 0, 0, 1, 0.1f, 0);  /* BERT layout, padding mask, dropout */
    check_attention(3, 20, 32, 2, 0, 1, 2, 0.2f, 0);  /* causal + left padding + a fully padded row */
    check_attention(2, 16, 32, 4, 1, 1, 0, 0.0f, 1);  /* no dropout, att aliases preatt */
    check_attention(2, 16, 32, 4, 0, 0, 0, 1.0f, 0);  /* everything dropped */
    check_attention(2, 128, 768, 12, 1, 1, 0, 0.1f, 0); /* GPT-2 small head size 64 */
    check_attention(3, 32, 96, 3, 1, 1, 0, 0.1f, 0);   /* 9 (b, h) pairs: pointer lists padded to 12 */
}
END_TEST

/* Tensor-core math (tf32, bf16) assumes every matrix of a pointer-array
 * batch is 16-byte aligned; at an odd T the score matrices are not, and
 * gemm_batched.cu must take the strided batches instead of faulting.  Even
 * T takes the pointer arrays.  Tolerances: the GEMM operands are rounded to
 * 10 (tf32) or 7 (bf16) mantissa bits, and softmax carries the scores'
 * error into the probabilities. */
START_TEST(test_attention_fast_math) {
    check_attention_on(gt_be_tf32, "tf32", 500.0, 2, 33, 96, 4, 1, 1, 0, 0.1f, 0);
    check_attention_on(gt_be_tf32, "tf32", 500.0, 2, 32, 96, 4, 1, 1, 0, 0.1f, 0);
    check_attention_on(gt_be_bf16, "bf16", 2500.0, 3, 29, 64, 2, 0, 0, 1, 0.1f, 0);
    check_attention_on(gt_be_bf16, "bf16", 2500.0, 2, 32, 96, 4, 1, 1, 0, 0.1f, 0);
}
END_TEST

/* Attention's products are one cuBLAS call over device arrays of pointers,
 * cached per (buffers, shape) (kernels/cuda/gemm_batched.cu): two sets of
 * buffers used in turn, forward and backward, must each get their own
 * results every time (a stale or shared array would mix them up). */
START_TEST(test_attention_pointer_arrays_reuse) {
    enum { B = 3, T = 24, C = 64, NH = 4, SETS = 2 };
    const size_t n_in = (size_t)B * T * 3 * C, n_out = (size_t)B * T * C, n_att = (size_t)B * NH * T * T;
    float *qkv[SETS], *dout[SETS], *want_out[SETS], *want_dqkv[SETS];
    float *d_qkv[SETS], *d_dout[SETS], *d_out[SETS], *d_preatt[SETS], *d_att[SETS], *d_dqkv[SETS], *d_scratch[SETS];
    for (int s = 0; s < SETS; s++) {
        qkv[s] = gt_random(n_in, -2, 2);
        dout[s] = gt_random(n_out, -1, 1);
        want_out[s] = gt_host(n_out);
        want_dqkv[s] = gt_host(n_in);
        float *preatt = gt_host(n_att), *att = gt_host(n_att), *scratch = gt_host(n_att);
        lm_cpu_attention_forward(want_out[s], preatt, att, qkv[s], qkv[s] + C, qkv[s] + 2 * C, 3 * C, NULL, 1, B, T, C,
                                 NH, 0.0f, 1, 1);
        lm_cpu_attention_backward(want_dqkv[s], want_dqkv[s] + C, want_dqkv[s] + 2 * C, scratch, dout[s], preatt, att,
                                  qkv[s], qkv[s] + C, qkv[s] + 2 * C, 3 * C, B, T, C, NH, 0.0f, 1, 1);
        free(preatt), free(att), free(scratch);
        d_qkv[s] = gt_dev_upload(gt_be, qkv[s], n_in);
        d_dout[s] = gt_dev_upload(gt_be, dout[s], n_out);
        d_out[s] = gt_dev_nan(gt_be, n_out);
        d_preatt[s] = gt_dev_nan(gt_be, n_att);
        d_att[s] = gt_dev_nan(gt_be, n_att);
        d_dqkv[s] = gt_dev_nan(gt_be, n_in);
        d_scratch[s] = gt_dev_nan(gt_be, n_att);
    }
    float *got_out = gt_host(n_out), *got_dqkv = gt_host(n_in), *zeros = gt_host(n_in);
    const int order[] = {0, 1, 0, 1, 1, 0};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        const int s = order[i];
        float *q = d_qkv[s], *dq = d_dqkv[s];
        /* Poisoned again each pass: a write that went to the other set's
         * buffers would otherwise leave this set's earlier results. */
        gt_dev_poison(gt_be, d_out[s], n_out);
        gt_dev_poison(gt_be, d_preatt[s], n_att);
        gt_dev_poison(gt_be, d_att[s], n_att);
        gt_be->ops->zero(gt_be, dq, n_in * sizeof(float));
        gt_be->ops->attention_forward(gt_be, d_out[s], d_preatt[s], d_att[s], q, q + C, q + 2 * C, 3 * C, NULL, 1, B,
                                      T, C, NH, 0.0f, NULL, 0);
        gt_be->ops->attention_backward(gt_be, dq, dq + C, dq + 2 * C, d_scratch[s], d_dout[s], d_preatt[s], d_att[s],
                                       q, q + C, q + 2 * C, 3 * C, B, T, C, NH, 0.0f, NULL, 0);
        gt_sync(gt_be, "attention (pointer arrays reuse)");
        gt_dev_download(gt_be, got_out, d_out[s], n_out);
        gt_dev_download(gt_be, got_dqkv, dq, n_in);
        gt_compare(s ? "attention_forward, set B" : "attention_forward, set A", got_out, want_out[s], n_out, TOL_GEMM);
        gt_compare_accumulated(s ? "attention_backward, set B" : "attention_backward, set A", got_dqkv, want_dqkv[s],
                               zeros, n_in, 5e-5);
    }
    for (int s = 0; s < SETS; s++) {
        gt_dev_free(gt_be, d_qkv[s]);
        gt_dev_free(gt_be, d_dout[s]);
        gt_dev_free(gt_be, d_out[s]);
        gt_dev_free(gt_be, d_preatt[s]);
        gt_dev_free(gt_be, d_att[s]);
        gt_dev_free(gt_be, d_dqkv[s]);
        gt_dev_free(gt_be, d_scratch[s]);
        free(qkv[s]), free(dout[s]), free(want_out[s]), free(want_dqkv[s]);
    }
    free(got_out), free(got_dqkv), free(zeros);
}
END_TEST

/* ---- pointwise ----------------------------------------------------------------------------- */

START_TEST(test_gelu) {
    lm_backend *be = gt_be;
    const size_t n = 100003;
    for (int approx = 0; approx <= 1; approx++) {
        printf("gelu approx_tanh=%d n=%zu\n", approx, n);
        float *x = gt_random(n, -8, 8), *y = gt_host(n), *g = gt_host(n);
        x[0] = 0.0f;
        x[1] = -30.0f;
        x[2] = 30.0f;
        gt_fill_nan(y, n);
        lm_cpu_gelu_forward(y, x, n, approx);
        float *d_x = gt_dev_upload(be, x, n), *d_y = gt_dev_nan(be, n);
        be->ops->gelu_forward(be, d_y, d_x, n, approx);
        gt_sync(be, "gelu_forward");
        gt_dev_download(be, g, d_y, n);
        gt_compare(approx ? "gelu_forward (tanh)" : "gelu_forward (erf)", g, y, n, TOL_POINTWISE);

        /* Written (backend_ops.def): dinp starts as NaN and must not be read. */
        float *dy = gt_random(n, -1, 1), *dx0 = gt_host(n), *dx = gt_host(n);
        lm_cpu_gelu_backward(dx, x, dy, n, approx);
        float *d_dy = gt_dev_upload(be, dy, n), *d_dx = gt_dev_nan(be, n);
        be->ops->gelu_backward(be, d_dx, d_x, d_dy, n, approx);
        gt_sync(be, "gelu_backward");
        gt_dev_download(be, g, d_dx, n);
        gt_compare_accumulated(approx ? "gelu_backward (tanh)" : "gelu_backward (erf)", g, dx, dx0, n, 1e-5);
        gt_dev_free(be, d_x);
        gt_dev_free(be, d_y);
        gt_dev_free(be, d_dy);
        gt_dev_free(be, d_dx);
        free(x);
        free(y);
        free(g);
        free(dy);
        free(dx);
    }
}
END_TEST

START_TEST(test_dropout) {
    lm_backend *be = gt_be;
    const size_t n = 100003;
    const float ps[] = {0.1f, 0.5f, 0.0f, 1.0f};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        const float p = ps[k];
        /* micro-batches past 2^32 too: the key's high bits reach the stream */
        const uint64_t seed = gt_next_seed(), micro_batch = ((uint64_t)k << 34) + 17 * k + 3;
        const int site = 3 + (int)k;
        const uint64_t stream = lm_dropout_stream(micro_batch, site);
        lm_step_state *d_key = gt_dev_key(be, seed, micro_batch);
        printf("dropout p=%g n=%zu micro_batch=%llu site=%d\n", (double)p, n, (unsigned long long)micro_batch, site);
        float *x = gt_random(n, -1, 1), *y = gt_host(n), *g = gt_host(n);
        gt_fill_nan(y, n);
        lm_cpu_dropout_forward(y, x, n, p, seed, stream);
        float *d_x = gt_dev_upload(be, x, n), *d_y = gt_dev_nan(be, n);
        be->ops->dropout_forward(be, d_y, d_x, n, p, d_key, site);
        gt_sync(be, "dropout_forward");
        gt_dev_download(be, g, d_y, n);
        gt_compare_exact("dropout_forward out", g, y, n);
        gt_compare_zero_pattern("dropout_forward mask", g, y, x, n);

        float *dy = gt_random(n, -1, 1), *dx = gt_host(n);
        lm_cpu_dropout_backward(dx, dy, n, p, seed, stream);
        float *d_dy = gt_dev_upload(be, dy, n), *d_dx = gt_dev_nan(be, n); /* written: the NaN is never read */
        be->ops->dropout_backward(be, d_dx, d_dy, n, p, d_key, site);
        gt_sync(be, "dropout_backward");
        gt_dev_download(be, g, d_dx, n);
        gt_compare_exact("dropout_backward dinp", g, dx, n);
        gt_dev_free(be, d_key);
        gt_dev_free(be, d_x);
        gt_dev_free(be, d_y);
        gt_dev_free(be, d_dy);
        gt_dev_free(be, d_dx);
        free(x);
        free(y);
        free(g);
        free(dy);
        free(dx);
    }
}
END_TEST

START_TEST(test_residual_accumulate) {
    lm_backend *be = gt_be;
    const size_t n = 300007;
    printf("residual (and in place) n=%zu\n", n);
    float *a = gt_random(n, -1, 1), *b = gt_random(n, -1, 1), *y = gt_host(n), *g = gt_host(n);
    lm_cpu_residual_forward(y, a, b, n);
    float *d_a = gt_dev_upload(be, a, n), *d_b = gt_dev_upload(be, b, n), *d_y = gt_dev_nan(be, n);
    be->ops->residual_forward(be, d_y, d_a, d_b, n);
    gt_sync(be, "residual_forward");
    gt_dev_download(be, g, d_y, n);
    gt_compare_exact("residual_forward out", g, y, n);
    /* in place, as a gradient merge (dst += src) */
    lm_cpu_residual_forward(a, a, b, n);
    be->ops->residual_forward(be, d_a, d_a, d_b, n);
    gt_sync(be, "residual_forward in place");
    gt_dev_download(be, g, d_a, n);
    gt_compare_exact("residual_forward in place", g, a, n);
    gt_dev_free(be, d_a);
    gt_dev_free(be, d_b);
    gt_dev_free(be, d_y);
    free(a);
    free(b);
    free(y);
    free(g);
}
END_TEST

/* ---- cross-entropy ----------------------------------------------------------------------------- */

static void check_crossentropy(int N, int V) {
    lm_backend *be = gt_be;
    const size_t NV = (size_t)N * V;
    printf("crossentropy N=%d V=%d\n", N, V);
    float *logits = gt_random(NV, -4, 4);
    int32_t *labels = gt_random_ints((size_t)N, 0, V);
    labels[1] = -100;            /* ignored */
    labels[N - 1] = V + 5;       /* out of range: treated as ignored */
    labels[2] = V - 1;
    int scored = 0;
    for (int i = 0; i < N; i++) scored += labels[i] >= 0 && labels[i] < V;
    float *losses = gt_host((size_t)N), *g = gt_host(NV);
    gt_fill_nan(losses, (size_t)N);
    double sum_cpu = lm_cpu_crossentropy_forward(losses, logits, labels, N, V, V);
    float *d_logits = gt_dev_upload(be, logits, NV), *d_losses = gt_dev_nan(be, (size_t)N);
    int32_t *d_labels = gt_dev_upload_ints(be, labels, (size_t)N);
    be->ops->crossentropy_forward(be, d_losses, d_logits, d_labels, N, V, V);
    gt_sync(be, "crossentropy_forward");
    gt_dev_download(be, g, d_losses, (size_t)N);
    gt_compare("crossentropy_forward losses", g, losses, (size_t)N, TOL_POINTWISE);
    double sum_gpu = 0.0;
    lm_status status = be->ops->sum_to_host(be, d_losses, (size_t)N, &sum_gpu);
    ck_assert_msg(status == LM_OK, "sum_to_host: %s", lm_error_message());
    printf("  %-44s gpu=%.9g cpu=%.9g rel=%.3e\n", "crossentropy loss sum", sum_gpu, sum_cpu,
           fabs(sum_gpu - sum_cpu) / fabs(sum_cpu));
    ck_assert_msg(fabs(sum_gpu - sum_cpu) <= 1e-6 * fabs(sum_cpu), "loss sums differ: %.9g vs %.9g", sum_gpu, sum_cpu);

    /* backward, accumulating into a separate buffer */
    const float dloss = 1.0f / (float)scored; /* the op divides 1 by the count it reads on the device */
    int64_t *d_count = gt_dev_count(be, scored);
    /* start values of the size of the increments (probabilities ~1/V) */
    float *d0 = gt_random(NV, -1.0f / (float)V, 1.0f / (float)V), *dcpu = gt_host_copy(d0, NV);
    lm_cpu_crossentropy_backward(dcpu, logits, labels, dloss, N, V, V);
    float *d_d = gt_dev_upload(be, d0, NV);
    be->ops->crossentropy_backward(be, d_d, d_logits, d_labels, 1.0f, d_count, N, V, V);
    gt_sync(be, "crossentropy_backward");
    gt_dev_download(be, g, d_d, NV);
    gt_compare_accumulated("crossentropy_backward dlogits", g, dcpu, d0, NV, 1e-5);

    /* backward in place (dlogits == logits): unscored rows become 0 */
    float *inplace = gt_host_copy(logits, NV);
    lm_cpu_crossentropy_backward(inplace, inplace, labels, dloss, N, V, V);
    be->ops->crossentropy_backward(be, d_logits, d_logits, d_labels, 1.0f, d_count, N, V, V);
    gt_sync(be, "crossentropy_backward (in place)");
    gt_dev_download(be, g, d_logits, NV);
    gt_compare("crossentropy_backward in place", g, inplace, NV, 1e-5);
    size_t not_zeroed = 0;
    for (int i = 0; i < N; i++) {
        if (labels[i] >= 0 && labels[i] < V) continue;
        for (int j = 0; j < V; j++) not_zeroed += g[(size_t)i * V + j] != 0.0f;
    }
    ck_assert_msg(not_zeroed == 0, "%zu elements of unscored rows were not zeroed in place", not_zeroed);
    gt_dev_free(be, d_count);
    gt_dev_free(be, d_logits);
    gt_dev_free(be, d_losses);
    gt_dev_free(be, d_labels);
    gt_dev_free(be, d_d);
    free(logits);
    free(labels);
    free(losses);
    free(g);
    free(d0);
    free(dcpu);
    free(inplace);
}

START_TEST(test_crossentropy) {
    check_crossentropy(37, 1013);
    check_crossentropy(16, 50257);
}
END_TEST

/* ---- reductions (the step's own ops, loss_mean and step_clip: test_cuda_step.c) ------------------------ */

START_TEST(test_sums) {
    lm_backend *be = gt_be;
    const size_t sizes[] = {0, 1, 1000, 1000003, 20000000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const size_t n = sizes[k];
        float *x = gt_random(n, -1, 1);
        double want_sq = lm_cpu_sum_squares(x, n), want = 0.0;
        for (size_t i = 0; i < n; i++) want += (double)x[i];
        float *d_x = gt_dev_upload(be, x, n > 0 ? n : 1);
        double got_sq = -1.0, got = -1.0, again = -1.0;
        ck_assert_msg(be->ops->sum_squares_to_host(be, d_x, n, &got_sq) == LM_OK, "%s", lm_error_message());
        ck_assert_msg(be->ops->sum_to_host(be, d_x, n, &got) == LM_OK, "%s", lm_error_message());
        ck_assert_msg(be->ops->sum_squares_to_host(be, d_x, n, &again) == LM_OK, "%s", lm_error_message());
        double rel_sq = want_sq != 0 ? fabs(got_sq - want_sq) / want_sq : fabs(got_sq);
        double rel = fabs(got - want) / (want_sq > 0 ? sqrt(want_sq) : 1.0); /* Σx can cancel: scale by ‖x‖ */
        printf("  sum_squares n=%-9zu gpu=%.15g cpu=%.15g rel=%.2e | sum gpu=%.15g cpu=%.15g err/‖x‖=%.2e\n", n,
               got_sq, want_sq, rel_sq, got, want, rel);
        ck_assert_msg(rel_sq <= 1e-12, "sum_squares n=%zu: %.17g vs %.17g", n, got_sq, want_sq);
        ck_assert_msg(rel <= 1e-12, "sum n=%zu: %.17g vs %.17g", n, got, want);
        ck_assert_msg(memcmp(&got_sq, &again, sizeof got_sq) == 0, "sum_squares not deterministic: %.17g vs %.17g",
                      got_sq, again);
        gt_dev_free(be, d_x);
        free(x);
    }
}
END_TEST

Suite *gpu_ops_suite(void) {
    Suite *s = suite_create("cuda ops vs cpu");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_embedding);
    tcase_add_test(tc, test_layernorm);
    tcase_add_test(tc, test_matmul);
    tcase_add_test(tc, test_matmul_plan_reuse);
    tcase_add_test(tc, test_matmul_tf32);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_attention_pointer_arrays_reuse);
    tcase_add_test(tc, test_attention_fast_math);
    tcase_add_test(tc, test_gelu);
    tcase_add_test(tc, test_dropout);
    tcase_add_test(tc, test_residual_accumulate);
    tcase_add_test(tc, test_crossentropy);
    tcase_add_test(tc, test_sums);
    suite_add_tcase(s, tc);
    return s;
}

/* Gradients written rather than zeroed and then added (issue #16 item 6).
 * Activation gradients: matmul_backward's and layernorm_backward's dinp with
 * LM_GRAD_WRITE, gelu_backward and dropout_backward.  GPT-2 and BERT no
 * longer zero those buffers before the op that fills them, so the op must
 * (1) never read what the buffer held — here a buffer of NaN, which any
 * read would carry into the result — and (2) give the bits that zeroing
 * then adding gave, or every trained number on the CPU would change (the
 * README quickstart's validation loss included).  LM_GRAD_ADD must still
 * add (GPT-2's and BERT's residual paths rely on it).  Parameter gradients
 * (dweight/dbias of matmul_backward, gelu_matmul_backward and
 * layernorm_backward with dparam_store LM_GRAD_WRITE, the first
 * micro-batch of a step): the same two properties; the models' use of them
 * is checked by tests/models/test_written_param_grads.c. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "kernel_test_util.h"
#include "kernels.h"
#include "lmcore/status.h"
#include "test_main.h"

static float *nan_floats(size_t n) {
    float *x = tk_floats(n);
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* ---- matmul_backward's dinp ---- */

typedef struct linear_case {
    int N, IC, OC;
    lm_weight_layout layout;
    float *inp, *w, *dout;
} linear_case;

static linear_case linear_make(int N, int IC, int OC, lm_weight_layout layout, uint64_t seed) {
    linear_case c = {N, IC, OC, layout, tk_floats((size_t)N * IC), tk_floats((size_t)IC * OC),
                     tk_floats((size_t)N * OC)};
    tk_fill(c.inp, (size_t)N * IC, -1, 1, seed);
    tk_fill(c.w, (size_t)IC * OC, -0.3f, 0.3f, seed + 1);
    tk_fill(c.dout, (size_t)N * OC, -1, 1, seed + 2);
    /* Exact zeros and negative zeros in dout: rows of products that are all
     * ±0, where a signed zero could come out differently. */
    for (int o = 0; o < OC; o++) c.dout[o] = o % 2 ? -0.0f : 0.0f;
    return c;
}

static void linear_free(linear_case *c) { free(c->inp), free(c->w), free(c->dout); }

static void check_matmul_dinp_written(int N, int IC, int OC, lm_weight_layout layout) {
    linear_case c = linear_make(N, IC, OC, layout, 300 + (uint64_t)N);
    const size_t nx = (size_t)N * IC, nw = (size_t)IC * OC;
    /* What the models ran before: a zeroed dinp, then the op adding. */
    float *dx0 = tk_floats(nx), *dw0 = tk_floats(nw), *db0 = tk_floats((size_t)OC);
    lm_cpu_matmul_backward(dx0, dw0, db0, c.dout, c.inp, c.w, N, IC, OC, layout, LM_GRAD_ADD, LM_GRAD_ADD);
    float *dx1 = nan_floats(nx), *dw1 = tk_floats(nw), *db1 = tk_floats((size_t)OC);
    lm_cpu_matmul_backward(dx1, dw1, db1, c.dout, c.inp, c.w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_ADD);
    for (size_t i = 0; i < nx; i++)
        ck_assert_msg(!isnan(dx1[i]), "dinp[%zu] read the NaN it held (N=%d IC=%d OC=%d layout %d)", i, N, IC, OC,
                      (int)layout);
    ck_assert_msg(memcmp(dx0, dx1, nx * sizeof *dx0) == 0,
                  "written dinp differs from zeroed-then-added (N=%d IC=%d OC=%d layout %d)", N, IC, OC, (int)layout);
    /* The parameter gradients still add, whatever dinp does. */
    ck_assert_mem_eq(dw0, dw1, nw * sizeof *dw0);
    ck_assert_mem_eq(db0, db1, (size_t)OC * sizeof *db0);

    /* LM_GRAD_ADD adds onto what is there: twice is 2x (up to the order of
     * the sums: BLAS adds its K blocks one by one onto C). */
    lm_cpu_matmul_backward(dx0, NULL, NULL, c.dout, c.inp, c.w, N, IC, OC, layout, LM_GRAD_ADD, LM_GRAD_ADD);
    for (size_t i = 0; i < nx; i++) dx1[i] *= 2.0f;
    tk_assert_close("dinp added twice", dx0, dx1, nx, 1e-5, 1e-5);
    free(dx0), free(dw0), free(db0), free(dx1), free(dw1), free(db1);
    linear_free(&c);
}

START_TEST(test_matmul_dinp_written_is_zeroed_then_added_bit_for_bit) {
    check_matmul_dinp_written(37, 48, 96, LM_W_IN_OUT);
    check_matmul_dinp_written(37, 48, 96, LM_W_OUT_IN);
    check_matmul_dinp_written(300, 64, 640, LM_W_IN_OUT); /* GEMM tiles, several tasks, K above a BLAS block */
    check_matmul_dinp_written(300, 640, 64, LM_W_OUT_IN);
    check_matmul_dinp_written(1, 3, 5, LM_W_IN_OUT);
}
END_TEST

/* Through the backend table: the store mode reaches the kernel. */
START_TEST(test_matmul_dinp_store_through_the_cpu_backend) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 2), LM_OK);
    const int N = 19, IC = 24, OC = 40;
    linear_case c = linear_make(N, IC, OC, LM_W_IN_OUT, 9);
    const size_t nx = (size_t)N * IC;
    float *want = tk_floats(nx), *got = nan_floats(nx), *dw = tk_floats((size_t)IC * OC);
    lm_cpu_matmul_backward(want, NULL, NULL, c.dout, c.inp, c.w, N, IC, OC, LM_W_IN_OUT, LM_GRAD_ADD, LM_GRAD_ADD);
    be->ops->matmul_backward(be, got, dw, NULL, c.dout, c.inp, c.w, N, IC, OC, LM_W_IN_OUT, LM_GRAD_WRITE, LM_GRAD_ADD);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    ck_assert_mem_eq(want, got, nx * sizeof *want);
    be->ops->matmul_backward(be, got, dw, NULL, c.dout, c.inp, c.w, N, IC, OC, LM_W_IN_OUT, LM_GRAD_ADD, LM_GRAD_ADD);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    for (size_t i = 0; i < nx; i++) want[i] *= 2.0f;
    tk_assert_close("dinp added twice through the backend", got, want, nx, 1e-5, 1e-5);
    free(want), free(got), free(dw);
    linear_free(&c);
    lm_backend_release(be);
}
END_TEST

/* ---- gelu_backward ---- */

static void check_gelu_written(size_t n, int approx_tanh) {
    float *x = tk_floats(n), *dout = tk_floats(n);
    tk_fill(x, n, -6, 6, 11 + n);
    tk_fill(dout, n, -1, 1, 12 + n);
    for (size_t i = 0; i < n; i += 7) dout[i] = i % 2 ? -0.0f : 0.0f;
    if (n > 3) x[3] = -30.0f; /* gelu' underflows to (-)0 */
    /* The previous contract's bits: 0 + dout·gelu'(x), element by element. */
    float *added = tk_floats(n);
    lm_cpu_gelu_backward(added, x, dout, n, approx_tanh);
    for (size_t i = 0; i < n; i++) added[i] = 0.0f + added[i];

    float *written = nan_floats(n);
    lm_cpu_gelu_backward(written, x, dout, n, approx_tanh);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(!isnan(written[i]), "gelu_backward read the NaN dinp[%zu] held (n=%zu tanh=%d)", i, n,
                      approx_tanh);
        /* Equal as numbers; only a signed zero may differ from 0 + x. */
        ck_assert_msg(written[i] == added[i], "dinp[%zu] = %g, want %g", i, (double)written[i], (double)added[i]);
    }
    /* In place (dinp = dout), as gelu_matmul_backward's CPU twin runs it. */
    float *in_place = tk_copy(dout, n);
    lm_cpu_gelu_backward(in_place, x, in_place, n, approx_tanh);
    ck_assert_msg(memcmp(in_place, written, n * sizeof *written) == 0, "in place differs (n=%zu tanh=%d)", n,
                  approx_tanh);
    free(x), free(dout), free(added), free(written), free(in_place);
}

START_TEST(test_gelu_backward_writes) {
    for (int approx_tanh = 0; approx_tanh <= 1; approx_tanh++) {
        check_gelu_written(45, approx_tanh);
        check_gelu_written(70001, approx_tanh); /* several tasks, the erf chunks' tails */
        check_gelu_written(1, approx_tanh);
    }
}
END_TEST

/* ---- layernorm_backward's dinp ---- */

static void check_layernorm_dinp_written(int N, int C, uint64_t seed) {
    const size_t nx = (size_t)N * C;
    float *x = tk_floats(nx), *w = tk_floats((size_t)C), *b = tk_floats((size_t)C), *dout = tk_floats(nx);
    float *y = tk_floats(nx), *mean = tk_floats((size_t)N), *rstd = tk_floats((size_t)N);
    tk_fill(x, nx, -2, 2, seed);
    tk_fill(w, (size_t)C, -1.5f, 1.5f, seed + 1); /* negative weights: w·0 is -0 */
    tk_fill(b, (size_t)C, -1, 1, seed + 2);
    tk_fill(dout, nx, -1, 1, seed + 3);
    /* A row of zeros (an unscored position's gradient) and one of -0: rows
     * whose input gradient is made of signed zeros, where writing x and
     * adding x onto 0 differ unless the op takes care. */
    for (int c = 0; c < C; c++) dout[c] = 0.0f;
    if (N > 2)
        for (int c = 0; c < C; c++) dout[2 * (size_t)C + c] = -0.0f;
    lm_cpu_layernorm_forward(y, mean, rstd, x, w, b, N, C, 1e-5f);

    /* What the models ran before: a zeroed dinp, then the op adding. */
    float *dx0 = tk_floats(nx), *dw0 = tk_floats((size_t)C), *db0 = tk_floats((size_t)C);
    memset(dx0, 0, nx * sizeof *dx0);
    lm_cpu_layernorm_backward(dx0, dw0, db0, dout, x, w, mean, rstd, N, C, LM_GRAD_ADD, LM_GRAD_ADD);
    float *dx1 = nan_floats(nx), *dw1 = tk_floats((size_t)C), *db1 = tk_floats((size_t)C);
    lm_cpu_layernorm_backward(dx1, dw1, db1, dout, x, w, mean, rstd, N, C, LM_GRAD_WRITE, LM_GRAD_ADD);
    for (size_t i = 0; i < nx; i++)
        ck_assert_msg(!isnan(dx1[i]), "layernorm dinp[%zu] read the NaN it held (N=%d C=%d)", i, N, C);
    ck_assert_msg(memcmp(dx0, dx1, nx * sizeof *dx0) == 0,
                  "written layernorm dinp differs from zeroed-then-added, signed zeros included (N=%d C=%d)", N, C);
    ck_assert_mem_eq(dw0, dw1, (size_t)C * sizeof *dw0);
    ck_assert_mem_eq(db0, db1, (size_t)C * sizeof *db0);

    /* LM_GRAD_ADD adds onto what is there: twice is exactly 2x here (the
     * same row values added onto themselves). */
    lm_cpu_layernorm_backward(dx0, dw0, db0, dout, x, w, mean, rstd, N, C, LM_GRAD_ADD, LM_GRAD_ADD);
    for (size_t i = 0; i < nx; i++) dx1[i] = dx1[i] + dx1[i];
    ck_assert_mem_eq(dx0, dx1, nx * sizeof *dx0);
    free(x), free(w), free(b), free(dout), free(y), free(mean), free(rstd);
    free(dx0), free(dw0), free(db0), free(dx1), free(dw1), free(db1);
}

START_TEST(test_layernorm_dinp_written_is_zeroed_then_added_bit_for_bit) {
    check_layernorm_dinp_written(7, 48, 40);
    check_layernorm_dinp_written(300, 200, 41); /* several tasks; C not a multiple of the SIMD width */
    check_layernorm_dinp_written(1, 5, 42);
}
END_TEST

/* Through the backend table: the store mode reaches the kernel. */
START_TEST(test_layernorm_dinp_store_through_the_cpu_backend) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 2), LM_OK);
    const int N = 19, C = 24;
    const size_t nx = (size_t)N * C;
    float *x = tk_floats(nx), *w = tk_floats((size_t)C), *dout = tk_floats(nx), *y = tk_floats(nx);
    float *mean = tk_floats((size_t)N), *rstd = tk_floats((size_t)N), *dw = tk_floats((size_t)C);
    tk_fill(x, nx, -2, 2, 50), tk_fill(w, (size_t)C, 0.5f, 1.5f, 51), tk_fill(dout, nx, -1, 1, 52);
    lm_cpu_layernorm_forward(y, mean, rstd, x, w, w, N, C, 1e-5f);
    float *want = tk_floats(nx), *got = nan_floats(nx);
    lm_cpu_layernorm_backward(want, dw, dw, dout, x, w, mean, rstd, N, C, LM_GRAD_ADD, LM_GRAD_ADD);
    be->ops->layernorm_backward(be, got, dw, dw, dout, x, w, mean, rstd, N, C, LM_GRAD_WRITE, LM_GRAD_ADD);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    ck_assert_mem_eq(want, got, nx * sizeof *want);
    free(x), free(w), free(dout), free(y), free(mean), free(rstd), free(dw), free(want), free(got);
    lm_backend_release(be);
}
END_TEST

/* ---- dropout_backward ---- */

static void check_dropout_written(size_t n, float p) {
    float *dout = tk_floats(n), *kept = tk_floats(n);
    tk_fill(dout, n, -1, 1, 60 + n);
    for (size_t i = 0; i < n; i += 5) dout[i] = i % 2 ? -0.0f : 0.0f;
    /* The previous contract's bits: 0 + dout·keep/(1-p) (a zeroed dinp, then
     * the op adding), the mask being forward's. */
    lm_cpu_dropout_forward(kept, dout, n, p, 77, 5);
    for (size_t i = 0; i < n; i++) kept[i] = 0.0f + kept[i];
    float *written = nan_floats(n);
    lm_cpu_dropout_backward(written, dout, n, p, 77, 5);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(!isnan(written[i]), "dropout_backward read the NaN dinp[%zu] held (n=%zu p=%g)", i, n,
                      (double)p);
    ck_assert_msg(memcmp(written, kept, n * sizeof *kept) == 0,
                  "dropout_backward's dinp differs from zeroed-then-added (n=%zu p=%g)", n, (double)p);
    free(dout), free(kept), free(written);
}

START_TEST(test_dropout_backward_writes) {
    check_dropout_written(45, 0.1f);
    check_dropout_written(70001, 0.5f); /* several tasks */
    check_dropout_written(1, 0.3f);
}
END_TEST

/* ---- parameter gradients written (the first micro-batch) ---- */

/* dweight and dbias with dparam_store LM_GRAD_WRITE over NaN equal a zeroed
 * buffer with LM_GRAD_ADD, bit for bit; LM_GRAD_ADD then adds onto them. */
static void check_matmul_params_written(int N, int IC, int OC, lm_weight_layout layout) {
    linear_case c = linear_make(N, IC, OC, layout, 700 + (uint64_t)N);
    const size_t nx = (size_t)N * IC, nw = (size_t)IC * OC;
    float *dx = tk_floats(nx);
    float *dw0 = tk_floats(nw), *db0 = tk_floats((size_t)OC); /* zeroed */
    lm_cpu_matmul_backward(dx, dw0, db0, c.dout, c.inp, c.w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_ADD);
    float *dw1 = nan_floats(nw), *db1 = nan_floats((size_t)OC);
    lm_cpu_matmul_backward(dx, dw1, db1, c.dout, c.inp, c.w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_WRITE);
    ck_assert_msg(memcmp(dw0, dw1, nw * sizeof *dw0) == 0,
                  "written dweight differs from zeroed-then-added (N=%d IC=%d OC=%d layout %d)", N, IC, OC,
                  (int)layout);
    ck_assert_msg(memcmp(db0, db1, (size_t)OC * sizeof *db0) == 0,
                  "written dbias differs from zeroed-then-added (N=%d IC=%d OC=%d layout %d)", N, IC, OC,
                  (int)layout);
    /* The next micro-batch adds onto what the first wrote. */
    lm_cpu_matmul_backward(NULL, dw1, db1, c.dout, c.inp, c.w, N, IC, OC, layout, LM_GRAD_WRITE, LM_GRAD_ADD);
    for (size_t i = 0; i < nw; i++) dw0[i] *= 2.0f;
    for (int o = 0; o < OC; o++) db0[o] *= 2.0f;
    tk_assert_close("dweight added onto the written one", dw1, dw0, nw, 1e-5, 1e-5);
    tk_assert_close("dbias added onto the written one", db1, db0, (size_t)OC, 1e-6, 1e-6);
    free(dx), free(dw0), free(db0), free(dw1), free(db1);
    linear_free(&c);
}

START_TEST(test_matmul_param_grads_written_bit_for_bit) {
    check_matmul_params_written(37, 48, 96, LM_W_IN_OUT);
    check_matmul_params_written(37, 48, 96, LM_W_OUT_IN);
    check_matmul_params_written(300, 64, 640, LM_W_IN_OUT); /* several bias tasks, K above a BLAS block */
    check_matmul_params_written(300, 640, 64, LM_W_OUT_IN);
    check_matmul_params_written(1, 3, 5, LM_W_IN_OUT);
}
END_TEST

static void check_layernorm_params_written(int N, int C, uint64_t seed) {
    const size_t nx = (size_t)N * C;
    float *x = tk_floats(nx), *w = tk_floats((size_t)C), *dout = tk_floats(nx), *y = tk_floats(nx);
    float *mean = tk_floats((size_t)N), *rstd = tk_floats((size_t)N), *dx = tk_floats(nx);
    tk_fill(x, nx, -2, 2, seed), tk_fill(w, (size_t)C, -1.5f, 1.5f, seed + 1), tk_fill(dout, nx, -1, 1, seed + 2);
    for (int c = 0; c < C; c++) dout[c] = c % 2 ? -0.0f : 0.0f; /* a row of signed zeros */
    lm_cpu_layernorm_forward(y, mean, rstd, x, w, w, N, C, 1e-5f);
    float *dw0 = tk_floats((size_t)C), *db0 = tk_floats((size_t)C); /* zeroed */
    lm_cpu_layernorm_backward(dx, dw0, db0, dout, x, w, mean, rstd, N, C, LM_GRAD_WRITE, LM_GRAD_ADD);
    float *dw1 = nan_floats((size_t)C), *db1 = nan_floats((size_t)C);
    lm_cpu_layernorm_backward(dx, dw1, db1, dout, x, w, mean, rstd, N, C, LM_GRAD_WRITE, LM_GRAD_WRITE);
    ck_assert_msg(memcmp(dw0, dw1, (size_t)C * sizeof *dw0) == 0, "written LayerNorm dweight differs (N=%d C=%d)",
                  N, C);
    ck_assert_msg(memcmp(db0, db1, (size_t)C * sizeof *db0) == 0, "written LayerNorm dbias differs (N=%d C=%d)", N,
                  C);
    lm_cpu_layernorm_backward(NULL, dw1, db1, dout, x, w, mean, rstd, N, C, LM_GRAD_WRITE, LM_GRAD_ADD);
    for (int c = 0; c < C; c++) ck_assert_float_eq(dw1[c], dw0[c] + dw0[c]);
    for (int c = 0; c < C; c++) ck_assert_float_eq(db1[c], db0[c] + db0[c]);
    free(x), free(w), free(dout), free(y), free(mean), free(rstd), free(dx);
    free(dw0), free(db0), free(dw1), free(db1);
}

START_TEST(test_layernorm_param_grads_written_bit_for_bit) {
    check_layernorm_params_written(7, 48, 80);
    check_layernorm_params_written(300, 200, 81); /* several channel blocks, one partial */
    check_layernorm_params_written(1, 5, 82);
}
END_TEST

/* gelu_matmul_backward passes the store to its dweight/dbias/dbias_pre;
 * through the CPU backend, so that the op's arguments reach the kernel. */
START_TEST(test_gelu_matmul_param_grads_written_through_the_cpu_backend) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 2), LM_OK);
    const int N = 29, IC = 64, OC = 24;
    linear_case c = linear_make(N, IC, OC, LM_W_IN_OUT, 90);
    const size_t nx = (size_t)N * IC, nw = (size_t)IC * OC;
    float *pre = tk_floats(nx), *act = tk_floats(nx), *dpre = tk_floats(nx);
    tk_fill(pre, nx, -3, 3, 91);
    lm_cpu_gelu_forward(act, pre, nx, 1);
    float *dw0 = tk_floats(nw), *db0 = tk_floats((size_t)OC), *dw1 = nan_floats(nw), *db1 = nan_floats((size_t)OC);
    float *dbp0 = tk_floats((size_t)IC), *dbp1 = nan_floats((size_t)IC);
    be->ops->gelu_matmul_backward(be, dpre, dw0, db0, dbp0, c.dout, act, pre, c.w, N, IC, OC, LM_W_IN_OUT,
                                  LM_GRAD_ADD);
    be->ops->gelu_matmul_backward(be, dpre, dw1, db1, dbp1, c.dout, act, pre, c.w, N, IC, OC, LM_W_IN_OUT,
                                  LM_GRAD_WRITE);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    ck_assert_mem_eq(dw0, dw1, nw * sizeof *dw0);
    ck_assert_mem_eq(db0, db1, (size_t)OC * sizeof *db0);
    ck_assert_mem_eq(dbp0, dbp1, (size_t)IC * sizeof *dbp0);
    /* And matmul_backward and layernorm_backward through the table. */
    float *dx = tk_floats(nx), *mw0 = tk_floats(nw), *mw1 = nan_floats(nw);
    be->ops->matmul_backward(be, dx, mw0, NULL, c.dout, c.inp, c.w, N, IC, OC, LM_W_IN_OUT, LM_GRAD_WRITE,
                             LM_GRAD_ADD);
    be->ops->matmul_backward(be, dx, mw1, NULL, c.dout, c.inp, c.w, N, IC, OC, LM_W_IN_OUT, LM_GRAD_WRITE,
                             LM_GRAD_WRITE);
    float *mean = tk_floats((size_t)N), *rstd = tk_floats((size_t)N), *ln = tk_floats(nx);
    float *lw0 = tk_floats((size_t)IC), *lb0 = tk_floats((size_t)IC), *lw1 = nan_floats((size_t)IC);
    float *lb1 = nan_floats((size_t)IC), *ones = tk_floats((size_t)IC);
    for (int i = 0; i < IC; i++) ones[i] = 1.0f;
    lm_cpu_layernorm_forward(ln, mean, rstd, pre, ones, lw0, N, IC, 1e-5f);
    be->ops->layernorm_backward(be, dx, lw0, lb0, act, pre, ones, mean, rstd, N, IC, LM_GRAD_WRITE, LM_GRAD_ADD);
    be->ops->layernorm_backward(be, dx, lw1, lb1, act, pre, ones, mean, rstd, N, IC, LM_GRAD_WRITE, LM_GRAD_WRITE);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    ck_assert_mem_eq(mw0, mw1, nw * sizeof *mw0);
    ck_assert_mem_eq(lw0, lw1, (size_t)IC * sizeof *lw0);
    ck_assert_mem_eq(lb0, lb1, (size_t)IC * sizeof *lb0);
    free(pre), free(act), free(dpre), free(dw0), free(db0), free(dw1), free(db1), free(dx), free(mw0), free(mw1);
    free(dbp0), free(dbp1);
    free(mean), free(rstd), free(ln), free(lw0), free(lb0), free(lw1), free(lb1), free(ones);
    linear_free(&c);
    lm_backend_release(be);
}
END_TEST

static Suite *written_gradients_suite(void) {
    Suite *s = suite_create("activation gradients written");
    TCase *tc = tcase_create("bits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_matmul_dinp_written_is_zeroed_then_added_bit_for_bit);
    tcase_add_test(tc, test_matmul_dinp_store_through_the_cpu_backend);
    tcase_add_test(tc, test_gelu_backward_writes);
    tcase_add_test(tc, test_layernorm_dinp_written_is_zeroed_then_added_bit_for_bit);
    tcase_add_test(tc, test_layernorm_dinp_store_through_the_cpu_backend);
    tcase_add_test(tc, test_dropout_backward_writes);
    tcase_add_test(tc, test_matmul_param_grads_written_bit_for_bit);
    tcase_add_test(tc, test_layernorm_param_grads_written_bit_for_bit);
    tcase_add_test(tc, test_gelu_matmul_param_grads_written_through_the_cpu_backend);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_run_suites(written_gradients_suite(), NULL); }

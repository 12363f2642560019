/* Finite-difference gradient checks of every backward kernel.
 *
 * Each check runs the float forward kernel at x ± h for every input element
 * and compares the central difference of L = Σ w·out (summed in double)
 * with what the backward kernel accumulated into a gradient buffer that was
 * pre-filled with random values (so accumulation, not overwrite, is
 * checked too).  Inputs are O(1), h = 1e-2: truncation error ~1e-5, float
 * rounding of L ~1e-6 / h (observed worst 1.5e-4, GELU with h = 1e-3), so
 * atol 5e-4 + rtol 5e-3 leaves a margin while a wrong term (off by O(1))
 * fails by orders of magnitude. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test_util.h"
#include "kernels.h"

#define FD_H 1e-2
#define FD_ATOL 5e-4
#define FD_RTOL 5e-3

/* ---- layer norm ------------------------------------------------------------ */

typedef struct layernorm_case {
    int N, C;
    float *x, *w, *b, *out, *mean, *rstd;
} layernorm_case;

static void layernorm_run(void *ctx) {
    layernorm_case *c = ctx;
    lm_cpu_layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C, 1e-5f);
}

START_TEST(test_layernorm_gradients) {
    layernorm_case c = {.N = 3, .C = 7};
    size_t nx = (size_t)c.N * c.C;
    c.x = tk_floats(nx);
    c.w = tk_floats(c.C);
    c.b = tk_floats(c.C);
    c.out = tk_floats(nx);
    c.mean = tk_floats(c.N);
    c.rstd = tk_floats(c.N);
    tk_fill(c.x, nx, -2.0f, 2.0f, 1);
    tk_fill(c.w, c.C, 0.5f, 1.5f, 2);
    tk_fill(c.b, c.C, -0.5f, 0.5f, 3);
    float *dout = tk_floats(nx), *dx = tk_floats(nx), *dw = tk_floats(c.C), *db = tk_floats(c.C);
    tk_fill(dout, nx, -1.0f, 1.0f, 4);
    tk_fill(dx, nx, -0.5f, 0.5f, 5);
    tk_fill(dw, c.C, -0.5f, 0.5f, 6);
    tk_fill(db, c.C, -0.5f, 0.5f, 7);
    float *dx0 = tk_copy(dx, nx), *dw0 = tk_copy(dw, c.C), *db0 = tk_copy(db, c.C);
    layernorm_run(&c);
    lm_cpu_layernorm_backward(dx, dw, db, dout, c.x, c.w, c.mean, c.rstd, c.N, c.C, LM_GRAD_ADD, LM_GRAD_ADD);
    float *gx = tk_delta(dx, dx0, nx), *gw = tk_delta(dw, dw0, c.C), *gb = tk_delta(db, db0, c.C);
    tk_check_gradient("layernorm dx", layernorm_run, &c, c.x, nx, c.out, dout, nx, gx, FD_H, FD_ATOL, FD_RTOL);
    tk_check_gradient("layernorm dweight", layernorm_run, &c, c.w, c.C, c.out, dout, nx, gw, FD_H, FD_ATOL, FD_RTOL);
    tk_check_gradient("layernorm dbias", layernorm_run, &c, c.b, c.C, c.out, dout, nx, gb, FD_H, FD_ATOL, FD_RTOL);
    /* The saved statistics are the biased ones. */
    for (int n = 0; n < c.N; n++) {
        double sum = 0.0, sq = 0.0;
        for (int i = 0; i < c.C; i++) sum += c.x[n * c.C + i];
        double m = sum / c.C;
        for (int i = 0; i < c.C; i++) sq += (c.x[n * c.C + i] - m) * (c.x[n * c.C + i] - m);
        ck_assert_double_eq_tol(c.mean[n], m, 1e-6);
        ck_assert_double_eq_tol(c.rstd[n], 1.0 / sqrt(sq / c.C + 1e-5), 1e-5);
    }
    free(c.x), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd);
    free(dout), free(dx), free(dw), free(db), free(dx0), free(dw0), free(db0), free(gx), free(gw), free(gb);
}
END_TEST

/* ---- linear ---------------------------------------------------------------- */

typedef struct matmul_case {
    int N, IC, OC;
    lm_weight_layout layout;
    float *x, *w, *b, *out;
} matmul_case;

static void matmul_run(void *ctx) {
    matmul_case *c = ctx;
    lm_cpu_matmul_forward(c->out, c->x, c->w, c->b, c->N, c->IC, c->OC, c->layout);
}

static void check_matmul(lm_weight_layout layout, int with_bias) {
    matmul_case c = {.N = 5, .IC = 6, .OC = 7, .layout = layout};
    size_t nx = (size_t)c.N * c.IC, nw = (size_t)c.IC * c.OC, no = (size_t)c.N * c.OC;
    c.x = tk_floats(nx);
    c.w = tk_floats(nw);
    c.b = with_bias ? tk_floats(c.OC) : NULL;
    c.out = tk_floats(no);
    tk_fill(c.x, nx, -1.0f, 1.0f, 11);
    tk_fill(c.w, nw, -1.0f, 1.0f, 12);
    if (c.b) tk_fill(c.b, c.OC, -1.0f, 1.0f, 13);
    matmul_run(&c);
    /* Forward against a double-precision reference with the layout spelt out. */
    float *want = tk_floats(no);
    for (int n = 0; n < c.N; n++)
        for (int o = 0; o < c.OC; o++) {
            double acc = c.b ? c.b[o] : 0.0;
            for (int i = 0; i < c.IC; i++)
                acc += (double)c.x[n * c.IC + i] *
                       (layout == LM_W_IN_OUT ? c.w[i * c.OC + o] : c.w[o * c.IC + i]);
            want[n * c.OC + o] = (float)acc;
        }
    tk_assert_close("matmul forward", c.out, want, no, 1e-5, 1e-5);

    float *dout = tk_floats(no), *dx = tk_floats(nx), *dw = tk_floats(nw), *db = tk_floats(c.OC);
    tk_fill(dout, no, -1.0f, 1.0f, 14);
    tk_fill(dx, nx, -0.5f, 0.5f, 15);
    tk_fill(dw, nw, -0.5f, 0.5f, 16);
    tk_fill(db, c.OC, -0.5f, 0.5f, 17);
    float *dx0 = tk_copy(dx, nx), *dw0 = tk_copy(dw, nw), *db0 = tk_copy(db, c.OC);
    lm_cpu_matmul_backward(dx, dw, c.b ? db : NULL, dout, c.x, c.w, c.N, c.IC, c.OC, layout, LM_GRAD_ADD, LM_GRAD_ADD);
    float *gx = tk_delta(dx, dx0, nx), *gw = tk_delta(dw, dw0, nw), *gb = tk_delta(db, db0, c.OC);
    tk_check_gradient("matmul dinp", matmul_run, &c, c.x, nx, c.out, dout, no, gx, FD_H, FD_ATOL, FD_RTOL);
    tk_check_gradient("matmul dweight", matmul_run, &c, c.w, nw, c.out, dout, no, gw, FD_H, FD_ATOL, FD_RTOL);
    if (c.b) {
        tk_check_gradient("matmul dbias", matmul_run, &c, c.b, c.OC, c.out, dout, no, gb, FD_H, FD_ATOL, FD_RTOL);
    } else {
        ck_assert_mem_eq(db, db0, c.OC * sizeof *db); /* NULL dbias: nothing written */
    }
    /* dinp = NULL (first layer): the weight gradient is still accumulated. */
    float *dw_only = tk_copy(dw0, nw);
    lm_cpu_matmul_backward(NULL, dw_only, NULL, dout, c.x, c.w, c.N, c.IC, c.OC, layout, LM_GRAD_WRITE, LM_GRAD_ADD);
    tk_assert_close("matmul dweight without dinp", dw_only, dw, nw, 0.0, 0.0);
    free(c.x), free(c.w), free(c.b), free(c.out), free(want), free(dout), free(dx), free(dw), free(db);
    free(dx0), free(dw0), free(db0), free(gx), free(gw), free(gb), free(dw_only);
}

START_TEST(test_matmul_gradients_conv1d_layout) {
    check_matmul(LM_W_IN_OUT, 1);
    check_matmul(LM_W_IN_OUT, 0);
}
END_TEST

START_TEST(test_matmul_gradients_linear_layout) {
    check_matmul(LM_W_OUT_IN, 1);
    check_matmul(LM_W_OUT_IN, 0);
}
END_TEST

/* ---- attention ---------------------------------------------------------------- */

typedef struct attention_case {
    int B, T, C, NH, stride, causal;
    float p;
    const int32_t *key_mask;
    float *q, *k, *v, *out, *preatt, *att;
} attention_case;

static void attention_run(void *ctx) {
    attention_case *c = ctx;
    lm_cpu_attention_forward(c->out, c->preatt, c->att, c->q, c->k, c->v, c->stride, c->key_mask, c->causal, c->B,
                             c->T, c->C, c->NH, c->p, 77, 5);
}

/* fused: q/k/v interleaved in one [B,T,3C] buffer (GPT-2); else three buffers. */
static void check_attention(int fused, int causal, const int32_t *key_mask, float p) {
    attention_case c = {.B = 2, .T = 5, .C = 8, .NH = 2, .causal = causal, .p = p, .key_mask = key_mask};
    size_t rows = (size_t)c.B * c.T, natt = (size_t)c.B * c.NH * c.T * c.T, no = rows * c.C;
    float *qkv = NULL, *bufs[3] = {NULL, NULL, NULL};
    size_t n_in;
    if (fused) {
        c.stride = 3 * c.C;
        n_in = rows * 3 * c.C;
        qkv = tk_floats(n_in);
        tk_fill(qkv, n_in, -1.5f, 1.5f, 21);
        c.q = qkv, c.k = qkv + c.C, c.v = qkv + 2 * c.C;
    } else {
        c.stride = c.C;
        n_in = rows * c.C;
        for (int i = 0; i < 3; i++) {
            bufs[i] = tk_floats(n_in);
            tk_fill(bufs[i], n_in, -1.5f, 1.5f, 22 + i);
        }
        c.q = bufs[0], c.k = bufs[1], c.v = bufs[2];
    }
    c.out = tk_floats(no);
    c.preatt = tk_floats(natt);
    c.att = tk_floats(natt);
    float *dout = tk_floats(no), *scratch = tk_floats(natt);
    tk_fill(dout, no, -1.0f, 1.0f, 25);
    attention_run(&c);
    if (fused) {
        float *d = tk_floats(n_in);
        tk_fill(d, n_in, -0.5f, 0.5f, 26);
        float *d0 = tk_copy(d, n_in);
        lm_cpu_attention_backward(d, d + c.C, d + 2 * c.C, scratch, dout, c.preatt, c.att, c.q, c.k, c.v, c.stride,
                                  c.B, c.T, c.C, c.NH, c.p, 77, 5);
        float *g = tk_delta(d, d0, n_in);
        tk_check_gradient("attention dqkv", attention_run, &c, qkv, n_in, c.out, dout, no, g, FD_H, FD_ATOL, FD_RTOL);
        free(d), free(d0), free(g);
    } else {
        float *d[3], *d0[3], *g[3];
        for (int i = 0; i < 3; i++) {
            d[i] = tk_floats(n_in);
            tk_fill(d[i], n_in, -0.5f, 0.5f, 27 + i);
            d0[i] = tk_copy(d[i], n_in);
        }
        lm_cpu_attention_backward(d[0], d[1], d[2], scratch, dout, c.preatt, c.att, c.q, c.k, c.v, c.stride, c.B, c.T,
                                  c.C, c.NH, c.p, 77, 5);
        const char *names[3] = {"attention dq", "attention dk", "attention dv"};
        for (int i = 0; i < 3; i++) {
            g[i] = tk_delta(d[i], d0[i], n_in);
            tk_check_gradient(names[i], attention_run, &c, bufs[i], n_in, c.out, dout, no, g[i], FD_H, FD_ATOL,
                              FD_RTOL);
            free(d[i]), free(d0[i]), free(g[i]);
        }
    }
    free(qkv), free(bufs[0]), free(bufs[1]), free(bufs[2]);
    free(c.out), free(c.preatt), free(c.att), free(dout), free(scratch);
}

/* Padding that leaves every query at least one visible key (a query with
 * none gets Hugging Face's uniform row, whose autograd gradient is not the
 * derivative of the float function: the torch fixture covers that case). */
static const int32_t padded_mask[2 * 5] = {1, 1, 1, 1, 1, 1, 1, 0, 1, 0};

START_TEST(test_attention_gradients_causal) {
    check_attention(1, 1, NULL, 0.0f);
}
END_TEST

START_TEST(test_attention_gradients_causal_padded_dropout) {
    check_attention(1, 1, padded_mask, 0.2f);
}
END_TEST

START_TEST(test_attention_gradients_bidirectional_padded_dropout) {
    check_attention(0, 0, padded_mask, 0.25f);
    check_attention(0, 0, NULL, 0.0f);
}
END_TEST

/* ---- GELU, dropout ------------------------------------------------------------- */

typedef struct pointwise_case {
    size_t n;
    int approx_tanh;
    float p;
    int writes; /* the backward writes dx (gelu) rather than adding into it (dropout) */
    float *x, *out;
} pointwise_case;

static void gelu_run(void *ctx) {
    pointwise_case *c = ctx;
    lm_cpu_gelu_forward(c->out, c->x, c->n, c->approx_tanh);
}

static void dropout_run(void *ctx) {
    pointwise_case *c = ctx;
    lm_cpu_dropout_forward(c->out, c->x, c->n, c->p, 99, 3);
}

static void check_pointwise(const char *what, tk_forward_fn run, pointwise_case *c,
                            void (*backward)(pointwise_case *c, float *dx, const float *dout)) {
    c->x = tk_floats(c->n);
    c->out = tk_floats(c->n);
    float *dout = tk_floats(c->n), *dx = tk_floats(c->n);
    tk_fill(c->x, c->n, -5.0f, 5.0f, 31);
    tk_fill(dout, c->n, -1.0f, 1.0f, 32);
    tk_fill(dx, c->n, -0.5f, 0.5f, 33); /* what an adding backward adds to, a writing one ignores */
    float *dx0 = tk_copy(dx, c->n);
    run(c);
    backward(c, dx, dout);
    float *g = c->writes ? tk_copy(dx, c->n) : tk_delta(dx, dx0, c->n);
    tk_check_gradient(what, run, c, c->x, c->n, c->out, dout, c->n, g, 1e-3, FD_ATOL, FD_RTOL);
    free(c->x), free(c->out), free(dout), free(dx), free(dx0), free(g);
}

static void gelu_back(pointwise_case *c, float *dx, const float *dout) {
    lm_cpu_gelu_backward(dx, c->x, dout, c->n, c->approx_tanh);
}

static void dropout_back(pointwise_case *c, float *dx, const float *dout) {
    lm_cpu_dropout_backward(dx, dout, c->n, c->p, 99, 3);
}

START_TEST(test_gelu_gradients) {
    pointwise_case tanh_case = {.n = 45, .approx_tanh = 1, .writes = 1};
    check_pointwise("gelu tanh dx", gelu_run, &tanh_case, gelu_back);
    pointwise_case erf_case = {.n = 45, .approx_tanh = 0, .writes = 1};
    check_pointwise("gelu erf dx", gelu_run, &erf_case, gelu_back);
}
END_TEST

START_TEST(test_dropout_gradients) {
    pointwise_case c = {.n = 64, .p = 0.3f, .writes = 1};
    check_pointwise("dropout dx", dropout_run, &c, dropout_back);
    pointwise_case c0 = {.n = 20, .p = 0.0f, .writes = 1};
    check_pointwise("dropout p=0 dx", dropout_run, &c0, dropout_back);
}
END_TEST

/* ---- cross-entropy ------------------------------------------------------------- */

typedef struct ce_case {
    int N, V;
    float *logits, *losses;
    const int32_t *labels;
} ce_case;

static void ce_run(void *ctx) {
    ce_case *c = ctx;
    (void)lm_cpu_crossentropy_forward(c->losses, c->logits, c->labels, c->N, c->V, c->V);
}

START_TEST(test_crossentropy_gradients) {
    static const int32_t labels[4] = {3, -100, 10, 0};
    ce_case c = {.N = 4, .V = 11, .labels = labels};
    size_t n = (size_t)c.N * c.V;
    c.logits = tk_floats(n);
    c.losses = tk_floats(c.N);
    tk_fill(c.logits, n, -3.0f, 3.0f, 41);
    float dloss = 0.7f, weights[4] = {dloss, dloss, dloss, dloss};
    float *d = tk_floats(n);
    tk_fill(d, n, -0.5f, 0.5f, 42);
    float *d0 = tk_copy(d, n);
    ce_run(&c);
    lm_cpu_crossentropy_backward(d, c.logits, c.labels, dloss, c.N, c.V, c.V);
    float *g = tk_delta(d, d0, n);
    tk_check_gradient("crossentropy dlogits", ce_run, &c, c.logits, n, c.losses, weights, c.N, g, FD_H, FD_ATOL,
                      FD_RTOL);
    /* The ignored row is untouched, and scores nothing. */
    ck_assert_mem_eq(d + c.V, d0 + c.V, c.V * sizeof *d);
    ck_assert_float_eq(c.losses[1], 0.0f);
    free(c.logits), free(c.losses), free(d), free(d0), free(g);
}
END_TEST

/* ---- embeddings ------------------------------------------------------------------ */

typedef struct embedding_case {
    int B, T, C;
    const int32_t *ids, *types;
    float *wte, *wpe, *wtt, *out;
} embedding_case;

static void embedding_run(void *ctx) {
    embedding_case *c = ctx;
    lm_cpu_embedding_forward(c->out, c->ids, c->types, c->wte, c->wpe, c->wtt, c->B, c->T, c->C);
}

START_TEST(test_embedding_gradients) {
    static const int32_t ids[6] = {4, 1, 4, 0, 4, 2}, types[6] = {0, 1, 1, 0, 0, 1};
    embedding_case c = {.B = 2, .T = 3, .C = 4, .ids = ids, .types = types};
    size_t nte = 5 * 4, npe = 3 * 4, ntt = 2 * 4, no = 6 * 4;
    c.wte = tk_floats(nte), c.wpe = tk_floats(npe), c.wtt = tk_floats(ntt), c.out = tk_floats(no);
    tk_fill(c.wte, nte, -1.0f, 1.0f, 51);
    tk_fill(c.wpe, npe, -1.0f, 1.0f, 52);
    tk_fill(c.wtt, ntt, -1.0f, 1.0f, 53);
    embedding_run(&c);
    for (int bt = 0; bt < 6; bt++)
        for (int i = 0; i < 4; i++)
            ck_assert_float_eq(c.out[bt * 4 + i],
                               (c.wte[ids[bt] * 4 + i] + c.wtt[types[bt] * 4 + i]) + c.wpe[(bt % 3) * 4 + i]);
    float *dout = tk_floats(no), *dte = tk_floats(nte), *dpe = tk_floats(npe), *dtt = tk_floats(ntt);
    tk_fill(dout, no, -1.0f, 1.0f, 54);
    lm_cpu_embedding_backward(dte, dpe, dtt, dout, ids, types, c.B, c.T, c.C);
    tk_check_gradient("embedding dwte", embedding_run, &c, c.wte, nte, c.out, dout, no, dte, FD_H, FD_ATOL, FD_RTOL);
    tk_check_gradient("embedding dwpe", embedding_run, &c, c.wpe, npe, c.out, dout, no, dpe, FD_H, FD_ATOL, FD_RTOL);
    tk_check_gradient("embedding dwtt", embedding_run, &c, c.wtt, ntt, c.out, dout, no, dtt, FD_H, FD_ATOL, FD_RTOL);
    /* Without token types (GPT-2) the type table is not touched. */
    float *wtt = c.wtt;
    c.wtt = NULL;
    c.types = NULL;
    embedding_run(&c);
    ck_assert_float_eq(c.out[5], c.wte[1 * 4 + 1] + c.wpe[1 * 4 + 1]);
    free(c.wte), free(c.wpe), free(wtt), free(c.out), free(dout), free(dte), free(dpe), free(dtt);
}
END_TEST

Suite *kernels_grad_suite(void) {
    Suite *s = suite_create("kernels_gradients");
    TCase *tc = tcase_create("finite_differences");
    tcase_add_test(tc, test_layernorm_gradients);
    tcase_add_test(tc, test_matmul_gradients_conv1d_layout);
    tcase_add_test(tc, test_matmul_gradients_linear_layout);
    tcase_add_test(tc, test_attention_gradients_causal);
    tcase_add_test(tc, test_attention_gradients_causal_padded_dropout);
    tcase_add_test(tc, test_attention_gradients_bidirectional_padded_dropout);
    tcase_add_test(tc, test_gelu_gradients);
    tcase_add_test(tc, test_dropout_gradients);
    tcase_add_test(tc, test_crossentropy_gradients);
    tcase_add_test(tc, test_embedding_gradients);
    suite_add_tcase(s, tc);
    return s;
}

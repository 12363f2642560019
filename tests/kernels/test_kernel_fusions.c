/* The CPU twins of the fused ops (issue #16 item 6) against the composition
 * of the ops they replace, bit for bit: the architectures now call the
 * fused op, so any difference would change every trained number on the
 * CPU (the README quickstart's validation loss included).  Also the CPU
 * backend's forwarding of the fused ops: the dropout key read from the step
 * state, and a draw without a key kept as a failure. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "kernel_test_util.h"
#include "kernels.h"
#include "lmcore/status.h"
#include "test_main.h"

/* ---- residual (+ dropout) + LayerNorm forward ---- */

typedef struct rln_case {
    int N, C;
    float *a, *branch, *weight, *bias;
} rln_case;

static rln_case rln_make(int N, int C, uint64_t seed) {
    rln_case c = {N, C, tk_floats((size_t)N * C), tk_floats((size_t)N * C), tk_floats((size_t)C),
                  tk_floats((size_t)C)};
    tk_fill(c.a, (size_t)N * C, -2, 2, seed);
    tk_fill(c.branch, (size_t)N * C, -1, 1, seed + 1);
    tk_fill(c.weight, (size_t)C, 0.5f, 1.5f, seed + 2);
    tk_fill(c.bias, (size_t)C, -0.1f, 0.1f, seed + 3);
    return c;
}

static void rln_free(rln_case *c) {
    free(c->a);
    free(c->branch);
    free(c->weight);
    free(c->bias);
}

/* What GPT-2 and BERT ran before the fusion: dropout (skipped at p = 0),
 * the residual add, the LayerNorm. */
static void rln_composition(const rln_case *c, float *residual, float *out, float *mean, float *rstd, float p,
                            uint64_t seed, uint64_t stream) {
    const size_t n = (size_t)c->N * c->C;
    const float *branch = c->branch;
    float *dropped = tk_floats(n);
    if (p > 0.0f) {
        lm_cpu_dropout_forward(dropped, c->branch, n, p, seed, stream);
        branch = dropped;
    }
    lm_cpu_residual_forward(residual, c->a, branch, n);
    lm_cpu_layernorm_forward(out, mean, rstd, residual, c->weight, c->bias, c->N, c->C, 1e-5f);
    free(dropped);
}

static void check_rln_bits(int N, int C, float p) {
    rln_case c = rln_make(N, C, 1000 + (uint64_t)N);
    const size_t n = (size_t)N * C;
    float *r0 = tk_floats(n), *o0 = tk_floats(n), *m0 = tk_floats((size_t)N), *s0 = tk_floats((size_t)N);
    float *r1 = tk_floats(n), *o1 = tk_floats(n), *m1 = tk_floats((size_t)N), *s1 = tk_floats((size_t)N);
    rln_composition(&c, r0, o0, m0, s0, p, 42, 7);
    lm_cpu_residual_layernorm_forward(r1, o1, m1, s1, c.a, c.branch, c.weight, c.bias, N, C, 1e-5f, p, 42, 7);
    ck_assert_msg(memcmp(r0, r1, n * sizeof *r0) == 0, "residual differs from the composition (N=%d C=%d p=%g)", N,
                  C, (double)p);
    ck_assert_msg(memcmp(o0, o1, n * sizeof *o0) == 0, "LayerNorm output differs (N=%d C=%d p=%g)", N, C, (double)p);
    ck_assert_msg(memcmp(m0, m1, (size_t)N * sizeof *m0) == 0, "mean differs (p=%g)", (double)p);
    ck_assert_msg(memcmp(s0, s1, (size_t)N * sizeof *s0) == 0, "rstd differs (p=%g)", (double)p);
    if (p > 0.0f && p < 1.0f) {
        /* The mask is drawn: some branch elements were dropped. */
        size_t dropped = 0;
        for (size_t i = 0; i < n; i++) dropped += r1[i] == c.a[i];
        ck_assert_msg(dropped > 0, "p=%g dropped nothing", (double)p);
    }
    free(r0), free(o0), free(m0), free(s0), free(r1), free(o1), free(m1), free(s1);
    rln_free(&c);
}

START_TEST(test_residual_layernorm_is_the_composition_bit_for_bit) {
    check_rln_bits(37, 96, 0.0f);
    check_rln_bits(37, 96, 0.1f);
    check_rln_bits(37, 96, 1.0f);
    check_rln_bits(300, 768, 0.1f); /* several tasks of the thread pool */
    check_rln_bits(1, 5, 0.5f);
}
END_TEST

START_TEST(test_residual_layernorm_through_the_cpu_backend) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 2), LM_OK);
    const int N = 19, C = 64, site = 5;
    const size_t n = (size_t)N * C;
    rln_case c = rln_make(N, C, 77);
    lm_step_state key;
    memset(&key, 0, sizeof key);
    key.seed = 1234;
    key.micro_batch = 3;
    float *r0 = tk_floats(n), *o0 = tk_floats(n), *m0 = tk_floats((size_t)N), *s0 = tk_floats((size_t)N);
    float *r1 = tk_floats(n), *o1 = tk_floats(n), *m1 = tk_floats((size_t)N), *s1 = tk_floats((size_t)N);
    rln_composition(&c, r0, o0, m0, s0, 0.2f, key.seed, lm_dropout_stream(key.micro_batch, site));
    be->ops->residual_layernorm_forward(be, r1, o1, m1, s1, c.a, c.branch, c.weight, c.bias, N, C, 1e-5f, 0.2f, &key,
                                        site);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    ck_assert_msg(memcmp(r0, r1, n * sizeof *r0) == 0, "the backend op does not draw the key's mask");
    ck_assert_msg(memcmp(o0, o1, n * sizeof *o0) == 0, "the backend op's LayerNorm differs");

    /* Dropout without the step state: nothing written, a failure kept that names the op. */
    memset(r1, 0, n * sizeof *r1);
    be->ops->residual_layernorm_forward(be, r1, o1, m1, s1, c.a, c.branch, c.weight, c.bias, N, C, 1e-5f, 0.2f, NULL,
                                        site);
    ck_assert_int_eq(be->ops->check(be), LM_ERR_DEVICE);
    ck_assert_msg(strstr(lm_error_message(), "residual_layernorm_forward") != NULL, "message: %s",
                  lm_error_message());
    for (size_t i = 0; i < n; i++) ck_assert_float_eq(r1[i], 0.0f);
    /* p = 0 needs no key. */
    be->ops->residual_layernorm_forward(be, r1, o1, m1, s1, c.a, c.branch, c.weight, c.bias, N, C, 1e-5f, 0.0f, NULL,
                                        site);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    for (size_t i = 0; i < n; i++) ck_assert_float_eq(r1[i], c.a[i] + c.branch[i]);

    free(r0), free(o0), free(m0), free(s0), free(r1), free(o1), free(m1), free(s1);
    rln_free(&c);
    lm_backend_release(be);
}
END_TEST

/* ---- linear layer + tanh GELU ---- */

static void check_matmul_gelu_bits(int N, int IC, int OC, lm_weight_layout layout, int with_bias) {
    float *inp = tk_floats((size_t)N * IC), *w = tk_floats((size_t)IC * OC), *bias = tk_floats((size_t)OC);
    tk_fill(inp, (size_t)N * IC, -1, 1, 5);
    tk_fill(w, (size_t)IC * OC, -0.3f, 0.3f, 6);
    tk_fill(bias, (size_t)OC, -0.5f, 0.5f, 7);
    const size_t n = (size_t)N * OC;
    float *pre0 = tk_floats(n), *out0 = tk_floats(n), *pre1 = tk_floats(n), *out1 = tk_floats(n);
    lm_cpu_matmul_forward(pre0, inp, w, with_bias ? bias : NULL, N, IC, OC, layout);
    lm_cpu_gelu_forward(out0, pre0, n, 1);
    lm_cpu_matmul_gelu_forward(out1, pre1, inp, w, with_bias ? bias : NULL, N, IC, OC, layout);
    ck_assert_msg(memcmp(pre0, pre1, n * sizeof *pre0) == 0, "pre-GELU values differ (N=%d IC=%d OC=%d)", N, IC, OC);
    ck_assert_msg(memcmp(out0, out1, n * sizeof *out0) == 0, "GELU output differs (N=%d IC=%d OC=%d)", N, IC, OC);
    free(inp), free(w), free(bias), free(pre0), free(out0), free(pre1), free(out1);
}

START_TEST(test_matmul_gelu_is_the_composition_bit_for_bit) {
    check_matmul_gelu_bits(37, 48, 192, LM_W_IN_OUT, 1);
    check_matmul_gelu_bits(64, 96, 384, LM_W_IN_OUT, 1); /* GPT-2's c_fc shape at C = 96 */
    check_matmul_gelu_bits(5, 33, 70, LM_W_OUT_IN, 0);
}
END_TEST

/* ---- tanh GELU + linear layer, backward ---- */

/* What GPT-2 ran before gelu_matmul_backward: c_proj's matmul_backward
 * adding into a zeroed scratch, then gelu_backward adding into a zeroed
 * dfch (gelu_backward now writes: 0 + its value is the old sum), then c_fc's
 * matmul_backward (dinp and dweight too, as GPT-2 called it) with its dbias,
 * the sum of dfch, written or added per `store` as the parameter gradients
 * of c_proj.  c_fc: inp [N, C] and w_fc [C, IC], IN_OUT. */
static void gelu_matmul_composition(float *dpre, float *dw, float *db, float *db_fc, const float *dout,
                                    const float *act, const float *pre, const float *w, int N, int IC, int OC,
                                    lm_weight_layout layout, lm_grad_store store) {
    const size_t n = (size_t)N * IC;
    float *scratch = tk_floats(n), *gelu_grad = tk_floats(n);
    lm_cpu_matmul_backward(scratch, dw, db, dout, act, w, N, IC, OC, layout, LM_GRAD_ADD, store);
    lm_cpu_gelu_backward(gelu_grad, pre, scratch, n, 1);
    for (size_t i = 0; i < n; i++) dpre[i] = 0.0f + gelu_grad[i];
    if (db_fc) {
        const int C = 24;
        float *inp = tk_floats((size_t)N * C), *w_fc = tk_floats((size_t)C * IC);
        float *dinp = tk_floats((size_t)N * C), *dw_fc = tk_floats((size_t)C * IC);
        tk_fill(inp, (size_t)N * C, -1, 1, 26);
        tk_fill(w_fc, (size_t)C * IC, -0.3f, 0.3f, 27);
        lm_cpu_matmul_backward(dinp, dw_fc, db_fc, dpre, inp, w_fc, N, C, IC, LM_W_IN_OUT, LM_GRAD_WRITE, store);
        free(inp), free(w_fc), free(dinp), free(dw_fc);
    }
    free(scratch), free(gelu_grad);
}

/* The twin against that composition, bit for bit: dpre_gelu written over
 * NaN; dweight, dbias and dbias_pre (c_fc's dbias before) written over NaN
 * (store LM_GRAD_WRITE) or added onto random values (LM_GRAD_ADD).
 * with_bias: c_proj's dbias; with_bias_pre: dbias_pre (NULL must leave its
 * buffer untouched). */
static void check_gelu_matmul_backward_bits(int N, int IC, int OC, lm_weight_layout layout, int with_bias,
                                            int with_bias_pre, lm_grad_store store) {
    const size_t nx = (size_t)N * IC, nw = (size_t)IC * OC;
    float *pre = tk_floats(nx), *act = tk_floats(nx), *w = tk_floats(nw), *dout = tk_floats((size_t)N * OC);
    tk_fill(pre, nx, -4, 4, 21);
    tk_fill(w, nw, -0.3f, 0.3f, 22);
    tk_fill(dout, (size_t)N * OC, -1, 1, 23);
    lm_cpu_gelu_forward(act, pre, nx, 1);
    /* Start values: random for an added gradient, NaN for a written one (never read). */
    float *dw0 = tk_floats(nw), *db0 = tk_floats((size_t)OC), *dbp0 = tk_floats((size_t)IC);
    tk_fill(dw0, nw, -1, 1, 24);
    tk_fill(db0, (size_t)OC, -1, 1, 25);
    tk_fill(dbp0, (size_t)IC, -1, 1, 28);
    if (store == LM_GRAD_WRITE) {
        for (size_t i = 0; i < nw; i++) dw0[i] = NAN;
        for (int o = 0; o < OC; o++) db0[o] = with_bias ? NAN : 0.5f;
        for (int i = 0; i < IC; i++) dbp0[i] = with_bias_pre ? NAN : 0.5f;
    }
    float *dpre0 = tk_floats(nx), *dw_0 = tk_copy(dw0, nw), *db_0 = tk_copy(db0, (size_t)OC);
    float *dbp_0 = tk_copy(dbp0, (size_t)IC);
    gelu_matmul_composition(dpre0, dw_0, with_bias ? db_0 : NULL, with_bias_pre ? dbp_0 : NULL, dout, act, pre, w, N,
                            IC, OC, layout, store);
    float *dpre1 = tk_floats(nx), *dw_1 = tk_copy(dw0, nw), *db_1 = tk_copy(db0, (size_t)OC);
    float *dbp_1 = tk_copy(dbp0, (size_t)IC);
    for (size_t i = 0; i < nx; i++) dpre1[i] = NAN; /* written: never read */
    lm_cpu_gelu_matmul_backward(dpre1, dw_1, with_bias ? db_1 : NULL, with_bias_pre ? dbp_1 : NULL, dout, act, pre,
                                w, N, IC, OC, layout, store);
    const char *how = store == LM_GRAD_WRITE ? "written" : "added";
    ck_assert_msg(memcmp(dpre0, dpre1, nx * sizeof *dpre0) == 0, "dpre_gelu differs (N=%d IC=%d OC=%d)", N, IC, OC);
    ck_assert_msg(memcmp(dw_0, dw_1, nw * sizeof *dw_0) == 0, "dweight %s differs (N=%d IC=%d OC=%d)", how, N, IC,
                  OC);
    ck_assert_msg(memcmp(db_0, db_1, (size_t)OC * sizeof *db_0) == 0, "dbias %s differs (N=%d IC=%d OC=%d)", how, N,
                  IC, OC);
    ck_assert_msg(memcmp(dbp_0, dbp_1, (size_t)IC * sizeof *dbp_0) == 0,
                  "dbias_pre %s differs from c_fc's matmul_backward dbias (N=%d IC=%d OC=%d)", how, N, IC, OC);
    if (!with_bias) ck_assert_mem_eq(db_1, db0, (size_t)OC * sizeof *db0);
    if (!with_bias_pre) ck_assert_mem_eq(dbp_1, dbp0, (size_t)IC * sizeof *dbp0);
    for (int i = 0; i < IC && with_bias_pre && store == LM_GRAD_WRITE; i++)
        ck_assert_msg(!isnan(dbp_1[i]), "dbias_pre[%d] still NaN: not written", i);
    free(pre), free(act), free(w), free(dout), free(dw0), free(db0), free(dbp0);
    free(dpre0), free(dw_0), free(db_0), free(dbp_0), free(dpre1), free(dw_1), free(db_1), free(dbp_1);
}

START_TEST(test_gelu_matmul_backward_is_the_composition_bit_for_bit) {
    const lm_grad_store stores[] = {LM_GRAD_ADD, LM_GRAD_WRITE};
    for (int s = 0; s < 2; s++) {
        check_gelu_matmul_backward_bits(37, 192, 48, LM_W_IN_OUT, 1, 1, stores[s]);
        check_gelu_matmul_backward_bits(64, 384, 96, LM_W_IN_OUT, 1, 1, stores[s]); /* GPT-2's MLP at C = 96 */
        check_gelu_matmul_backward_bits(300, 640, 160, LM_W_IN_OUT, 1, 1, stores[s]); /* several tasks */
        check_gelu_matmul_backward_bits(300, 200, 40, LM_W_IN_OUT, 0, 1, stores[s]); /* a partial column block */
        check_gelu_matmul_backward_bits(5, 70, 33, LM_W_OUT_IN, 0, 0, stores[s]);
        check_gelu_matmul_backward_bits(37, 192, 48, LM_W_IN_OUT, 1, 0, stores[s]);
    }
}
END_TEST

static Suite *kernel_fusions_suite(void) {
    Suite *s = suite_create("fused ops' CPU twins");
    TCase *tc = tcase_create("bits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_residual_layernorm_is_the_composition_bit_for_bit);
    tcase_add_test(tc, test_residual_layernorm_through_the_cpu_backend);
    tcase_add_test(tc, test_matmul_gelu_is_the_composition_bit_for_bit);
    tcase_add_test(tc, test_gelu_matmul_backward_is_the_composition_bit_for_bit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_run_suites(kernel_fusions_suite(), NULL); }

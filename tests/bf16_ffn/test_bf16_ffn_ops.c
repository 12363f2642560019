/* The feed-forward block's bf16 ops (backend_ops.def, "the feed-forward block
 * in bf16") through the backend table, against references that do not
 * share their code, and on the CPU against what the twins promise:
 *
 *   matmul_forward_bf16_to_fp32  Σ in double over the bf16 inputs (+ the fp32
 *                                bias): within γ_K·Σ|terms|, γ_K = (K + 2)·2^-24
 *                                (fp32 accumulation in any order, the GPU's
 *                                too; no rounding to bf16);
 *   matmul_gelu_forward_bf16     pre_gelu within half a bf16 ulp + γ_K·Σ|terms|
 *                                of the exact product p; out within half a
 *                                bf16 ulp of gelu_tanh(p) (in double) plus
 *                                max|gelu'|·γ_K·Σ|terms| plus the fp32 GELU's
 *                                own error (GELU_EVAL: 1e-6·(|p| + 1));
 *   gelu_matmul_backward_bf16    dpre_gelu within half a bf16 ulp of
 *                                (Σ dout·W)·gelu'(pre_gelu) (double) plus
 *                                max|gelu'|·γ·Σ|terms| plus GELU_EVAL; dweight
 *                                and dbias within γ·Σ|terms| (written, added);
 *                                dbias_pre within the sum of its terms' bounds
 *                                plus γ·Σ|terms|;
 *   gelu_{forward,backward}_bf16 NaN, ±inf, ±0, subnormals and rounding ties
 *                                (dout ties through gelu' = 1 at x = 10), and
 *                                torch's bf16 GELU from a committed fixture
 *                                (gen_gelu_bf16_fixture.py, both forms): within
 *                                TORCH_STEPS bf16 steps for x >= -4 (the CPU:
 *                                0, torch's bits), TAIL_ABS below, where
 *                                torch's 1 + tanh and 1 + erf cancel.
 *
 * On the CPU (test_bf16_ffn_ops) every op is also, bit for bit, the fp32 op
 * on the widened operands with its bf16 outputs rounded once: what the
 * twins promise.  The same source builds test_bf16_ffn_ops_cuda (label
 * gpu; 77 without a GPU): the GEMM ops then meet the same bounds (plus the
 * CUDA fallbacks' slack where cuBLASLt cannot fuse: OC or IC not a multiple
 * of 8, kernels/cuda/NOTES_bf16_storage.md, point 8), and the elementwise ops are bit
 * for bit the GPU's own fp32 gelu_forward / gelu_backward on the widened
 * values, rounded (the GPU's expf and erff are not the CPU's, so not the
 * CPU twin's bits), and within TORCH_STEPS (1) of torch. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bf16.h"
#include "bf16_op_check.h"
#include "cuda_probe.h"
#include "gelu_bf16_fixture.h"
#include "kernels.h"
#include "lmcore/lmcore.h"
#include "test_main.h"

#ifndef BF16_TEST_DEVICE
#define BF16_TEST_DEVICE "cpu"
#endif
#define GELU_GRAD_MAX 1.13 /* max |gelu'| over the reals (tanh and erf forms: 1.1289 and 1.1290) */
#ifdef BF16_TEST_CUDA
#define TORCH_STEPS 1 /* the GPU's expf and erff are not the CPU's: a value may round the other way */
#else
#define TORCH_STEPS 0 /* measured: the CPU twins give torch's bits for x >= -4 */
#endif

/* ---- helpers ---- */

static float *widened(const uint16_t *h, size_t n) {
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    lm_cpu_widen_bf16(x, h, n);
    return x;
}


/* The exact GELU and its derivative, in double (backend_ops.def's forms). */
static double gelu_exact(double x, int approx_tanh) {
    if (approx_tanh) return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

static double gelu_grad_exact(double x, int approx_tanh) {
    if (approx_tanh) {
        const double c = sqrt(2.0 / M_PI), t = tanh(c * (x + 0.044715 * x * x * x));
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
    }
    return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
}

/* The fp32 GELU's own error (either device), absolute, around an input of magnitude |p|. */
static double gelu_eval_error(double p) { return 1e-6 * (fabs(p) + 1.0); }

/* A bf16 value against an exact one: within half a bf16 ulp (its one
 * rounding) plus `slack`; the ulp taken at the larger of the two ends. */
static int bf16_within(double value, double exact, double slack) {
    const double bound = 0.5 * lm_test_bf16_ulp(fmax(fabs(value), fabs(exact) + slack)) + slack;
    return fabs(value - exact) <= bound;
}


#ifdef BF16_TEST_CUDA
/* cuBLASLt's GELU epilogues need the aux matrix's leading dimension (OC in
 * the forward, IC in the backward) to be a multiple of 8; otherwise the CUDA
 * op runs its fallback (kernels/cuda/matmul_gelu_bf16.cu, gelu_matmul_bf16.cu). */
static int cuda_falls_back(int ld) { return ld % 8 != 0; }
#endif

/* The forward GEMMs' inputs: inp [N, IC] in [-2, 2] and weight [IC, OC]
 * in [-0.5, 0.5], bf16, and an fp32 bias [OC] in [-1, 1], drawn from
 * `seed`; on the host and on the backend (the bias only with_bias). */
typedef struct gemm_inputs {
    uint16_t *inp, *weight, *d_inp, *d_w;
    float *bias, *d_bias;
} gemm_inputs;

static gemm_inputs gemm_inputs_make(lm_backend *be, int N, int IC, int OC, int with_bias, uint64_t seed) {
    const size_t n_in = (size_t)N * IC, n_w = (size_t)IC * OC;
    gemm_inputs in = {malloc(n_in * 2), malloc(n_w * 2), NULL, NULL, malloc((size_t)OC * 4), NULL};
    ck_assert(in.inp && in.weight && in.bias);
    lm_test_lcg_state = seed;
    lm_test_random_bf16(in.inp, n_in, 2.0f);
    lm_test_random_bf16(in.weight, n_w, 0.5f);
    for (int o = 0; o < OC; o++) in.bias[o] = lm_test_uniform(-1.0f, 1.0f);
    in.d_inp = lm_test_dev_copy(be, in.inp, n_in * 2);
    in.d_w = lm_test_dev_copy(be, in.weight, n_w * 2);
    in.d_bias = with_bias ? lm_test_dev_copy(be, in.bias, (size_t)OC * 4) : NULL;
    return in;
}

static void gemm_inputs_free(lm_backend *be, gemm_inputs *g) {
    be->ops->free(be, g->d_inp), be->ops->free(be, g->d_w);
    if (g->d_bias) be->ops->free(be, g->d_bias);
    free(g->inp), free(g->weight), free(g->bias);
}

/* ---- matmul_forward_bf16_to_fp32 ---- */

static void check_forward_to_fp32(int N, int IC, int OC, lm_weight_layout layout, int with_bias) {
    const size_t n_out = (size_t)N * OC;
    lm_backend *be = lm_test_make_backend(BF16_TEST_DEVICE);
    gemm_inputs in = gemm_inputs_make(be, N, IC, OC, with_bias, 31u + (uint64_t)layout * 2u + (uint64_t)with_bias);
    const uint16_t *inp = in.inp, *weight = in.weight;
    const float *bias = in.bias;
    float *got = malloc(n_out * 4);
    ck_assert_ptr_nonnull(got);
    float *d_out = lm_test_dev_copy(be, NULL, n_out * 4);
    be->ops->matmul_forward_bf16_to_fp32(be, d_out, in.d_inp, in.d_w, in.d_bias, N, IC, OC, layout);
    lm_test_download(be, got, d_out, n_out * 4);
    double worst = 0.0;
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < OC; o++) {
            double magnitude;
            const double sum = lm_test_exact_dot(&inp[(size_t)n * IC], weight, o, IC, OC, layout,
                                                 with_bias ? (double)bias[o] : 0.0, &magnitude);
            const double bound = lm_test_gamma_k(IC + 1) * magnitude, err = fabs(got[(size_t)n * OC + o] - sum);
            ck_assert_msg(err <= bound, "layout %d bias %d: out[%d,%d] = %.9g, exact %.9g (bound %.3g)", layout,
                          with_bias, n, o, (double)got[(size_t)n * OC + o], sum, bound);
            if (err / bound > worst) worst = err / bound;
        }
    }
#ifndef BF16_TEST_CUDA
    /* The twin is the fp32 op on the widened inputs, bit for bit. */
    const size_t n_in = (size_t)N * IC, n_w = (size_t)IC * OC;
    float *inp32 = widened(inp, n_in), *w32 = widened(weight, n_w), *want = malloc(n_out * 4);
    ck_assert_ptr_nonnull(want);
    lm_cpu_matmul_forward(want, inp32, w32, with_bias ? bias : NULL, N, IC, OC, layout);
    ck_assert_int_eq(memcmp(got, want, n_out * 4), 0);
    free(want), free(w32), free(inp32);
#endif
    printf("matmul_forward_bf16_to_fp32 %dx%dx%d layout %d bias %d: worst %.3f of the bound\n", N, IC, OC, layout,
           with_bias, worst);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    be->ops->free(be, d_out);
    gemm_inputs_free(be, &in);
    lm_backend_release(be);
    free(got);
}

START_TEST(matmul_forward_bf16_to_fp32_sums_in_fp32) {
    for (int layout = 0; layout < 2; layout++)
        for (int bias = 0; bias < 2; bias++) check_forward_to_fp32(37, 48, 70, (lm_weight_layout)layout, bias);
}
END_TEST

/* ---- matmul_gelu_forward_bf16 ---- */

static void check_matmul_gelu(int N, int IC, int OC, lm_weight_layout layout, int with_bias) {
    const size_t n_out = (size_t)N * OC;
    lm_backend *be = lm_test_make_backend(BF16_TEST_DEVICE);
    gemm_inputs in =
        gemm_inputs_make(be, N, IC, OC, with_bias, 51u + (uint64_t)layout * 2u + (uint64_t)with_bias + (uint64_t)OC);
    const uint16_t *inp = in.inp, *weight = in.weight;
    const float *bias = in.bias;
    uint16_t *out = malloc(n_out * 2), *pre = malloc(n_out * 2);
    ck_assert(out && pre);
    uint16_t *d_out = lm_test_dev_copy(be, NULL, n_out * 2), *d_pre = lm_test_dev_copy(be, NULL, n_out * 2);
    be->ops->matmul_gelu_forward_bf16(be, d_out, d_pre, in.d_inp, in.d_w, in.d_bias, N, IC, OC, layout);
    lm_test_download(be, out, d_out, n_out * 2);
    lm_test_download(be, pre, d_pre, n_out * 2);
    int fallback = 0;
#ifdef BF16_TEST_CUDA
    fallback = cuda_falls_back(OC);
#endif
    double worst_pre = 0.0, worst_out = 0.0;
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < OC; o++) {
            double magnitude;
            const double p = lm_test_exact_dot(&inp[(size_t)n * IC], weight, o, IC, OC, layout,
                                               with_bias ? (double)bias[o] : 0.0, &magnitude);
            const size_t at = (size_t)n * OC + o;
            const double acc = lm_test_gamma_k(IC + 1) * magnitude;
            ck_assert_msg(bf16_within(lm_test_widen(pre[at]), p, acc),
                          "layout %d bias %d: pre_gelu[%d,%d] = %.9g, exact %.9g",
                          layout, with_bias, n, o, (double)lm_test_widen(pre[at]), p);
            /* The fallback's GELU reads the rounded product (up to half a bf16 ulp of p more). */
            const double slack =
                GELU_GRAD_MAX * (acc + (fallback ? 0.5 * lm_test_bf16_ulp(p) : 0.0)) + gelu_eval_error(p);
            const double g = gelu_exact(p, 1);
            ck_assert_msg(bf16_within(lm_test_widen(out[at]), g, slack),
                          "layout %d bias %d: out[%d,%d] = %.9g, gelu(p) %.9g",
                          layout, with_bias, n, o, (double)lm_test_widen(out[at]), g);
            worst_pre = fmax(worst_pre, fabs(lm_test_widen(pre[at]) - p) / (0.5 * lm_test_bf16_ulp(p) + acc));
            worst_out = fmax(worst_out, fabs(lm_test_widen(out[at]) - g) / (0.5 * lm_test_bf16_ulp(g) + slack));
        }
    }
#ifndef BF16_TEST_CUDA
    /* The twin: matmul_gelu_forward on the widened inputs, both outputs rounded once. */
    const size_t n_in = (size_t)N * IC, n_w = (size_t)IC * OC;
    float *inp32 = widened(inp, n_in), *w32 = widened(weight, n_w);
    float *out32 = malloc(n_out * 4), *pre32 = malloc(n_out * 4);
    ck_assert(out32 && pre32);
    lm_cpu_matmul_gelu_forward(out32, pre32, inp32, w32, with_bias ? bias : NULL, N, IC, OC, layout);
    for (size_t e = 0; e < n_out; e++) {
        ck_assert_uint_eq(pre[e], lm_bf16_from_float(pre32[e]));
        ck_assert_uint_eq(out[e], lm_bf16_from_float(out32[e]));
    }
    free(pre32), free(out32), free(w32), free(inp32);
#else
    if (fallback) { /* out is then gelu_forward_bf16 of pre_gelu, bit for bit */
        uint16_t *d_again = lm_test_dev_copy(be, NULL, n_out * 2), *again = malloc(n_out * 2);
        ck_assert_ptr_nonnull(again);
        be->ops->gelu_forward_bf16(be, d_again, d_pre, n_out, 1);
        lm_test_download(be, again, d_again, n_out * 2);
        ck_assert_int_eq(memcmp(again, out, n_out * 2), 0);
        be->ops->free(be, d_again);
        free(again);
    }
#endif
    printf("matmul_gelu_forward_bf16 %dx%dx%d layout %d bias %d%s: worst pre_gelu %.3f, out %.3f of the bound\n", N, IC,
           OC, layout, with_bias, fallback ? " (CUDA fallback)" : "", worst_pre, worst_out);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    be->ops->free(be, d_out), be->ops->free(be, d_pre);
    gemm_inputs_free(be, &in);
    lm_backend_release(be);
    free(out), free(pre);
}

START_TEST(matmul_gelu_forward_bf16_rounds_once) {
    for (int layout = 0; layout < 2; layout++) {
        for (int bias = 0; bias < 2; bias++) {
            check_matmul_gelu(37, 48, 72, (lm_weight_layout)layout, bias); /* OC % 8 == 0: cuBLASLt's epilogue */
            check_matmul_gelu(37, 48, 70, (lm_weight_layout)layout, bias); /* CUDA: the unfused fallback */
        }
    }
}
END_TEST

/* ---- gelu_matmul_backward_bf16 ---- */

typedef struct backward_case {
    int N, IC, OC;
    lm_weight_layout layout;
    lm_grad_store store;
    int with_dbias, with_dbias_pre;
} backward_case;

static void check_gelu_matmul_backward(backward_case c) {
    const int N = c.N, IC = c.IC, OC = c.OC, add = c.store == LM_GRAD_ADD;
    const size_t n_in = (size_t)N * IC, n_w = (size_t)IC * OC, n_out = (size_t)N * OC;
    uint16_t *dout = malloc(n_out * 2), *pre = malloc(n_in * 2), *gelu_out = malloc(n_in * 2);
    uint16_t *weight = malloc(n_w * 2), *dpre = malloc(n_in * 2);
    float *dweight = malloc(n_w * 4), *dbias = malloc((size_t)OC * 4), *dbias_pre = malloc((size_t)IC * 4);
    float *dweight0 = malloc(n_w * 4), *dbias0 = malloc((size_t)OC * 4), *dbias_pre0 = malloc((size_t)IC * 4);
    ck_assert(dout && pre && gelu_out && weight && dpre && dweight && dbias && dbias_pre && dweight0 && dbias0 &&
              dbias_pre0);
    lm_test_lcg_state = 71u + (uint64_t)c.layout * 2u + (uint64_t)c.store + (uint64_t)IC;
    lm_test_random_bf16(dout, n_out, 0.05f);
    lm_test_random_bf16(pre, n_in, 3.0f);
    lm_test_random_bf16(weight, n_w, 0.5f);
    lm_cpu_gelu_forward_bf16(gelu_out, pre, n_in, 1); /* the forward's output, as the model keeps it */
    /* What the parameter gradients held: added to, or never read (NaN). */
    for (size_t e = 0; e < n_w; e++) dweight0[e] = add ? lm_test_uniform(-0.1f, 0.1f) : NAN;
    for (int o = 0; o < OC; o++) dbias0[o] = add ? lm_test_uniform(-0.1f, 0.1f) : NAN;
    for (int i = 0; i < IC; i++) dbias_pre0[i] = add ? lm_test_uniform(-0.1f, 0.1f) : NAN;
    memset(dpre, 0xff, n_in * 2); /* a NaN the op never writes: dpre_gelu is written, not read */
    lm_backend *be = lm_test_make_backend(BF16_TEST_DEVICE);
    uint16_t *d_dout = lm_test_dev_copy(be, dout, n_out * 2), *d_pre = lm_test_dev_copy(be, pre, n_in * 2);
    uint16_t *d_gelu = lm_test_dev_copy(be, gelu_out, n_in * 2), *d_w = lm_test_dev_copy(be, weight, n_w * 2);
    uint16_t *d_dpre = lm_test_dev_copy(be, dpre, n_in * 2);
    float *d_dw = lm_test_dev_copy(be, dweight0, n_w * 4);
    float *d_db = c.with_dbias ? lm_test_dev_copy(be, dbias0, (size_t)OC * 4) : NULL;
    float *d_dbp = c.with_dbias_pre ? lm_test_dev_copy(be, dbias_pre0, (size_t)IC * 4) : NULL;
    be->ops->gelu_matmul_backward_bf16(be, d_dpre, d_dw, d_db, d_dbp, d_dout, d_gelu, d_pre, d_w, N, IC, OC, c.layout,
                                       c.store);
    lm_test_download(be, dpre, d_dpre, n_in * 2);
    lm_test_download(be, dweight, d_dw, n_w * 4);
    if (d_db) lm_test_download(be, dbias, d_db, (size_t)OC * 4);
    if (d_dbp) lm_test_download(be, dbias_pre, d_dbp, (size_t)IC * 4);
    int fallback = 0, rounded_sums = 0;
#ifdef BF16_TEST_CUDA
    /* The fallback rounds dpre_gelu twice; the column reduction (dbias_pre
     * added, or DGELU_BGRAD refused) sums the rounded values. */
    fallback = cuda_falls_back(IC);
    rounded_sums = 1;
#endif
    double worst_dpre = 0.0, worst_dbias_pre = 0.0; /* the latter against the bound of unrounded sums */
    for (int i = 0; i < IC; i++) {
        double col = add ? (double)dbias_pre0[i] : 0.0, col_magnitude = fabs(col), col_slack = 0.0;
        double unrounded_slack = 0.0;
        for (int n = 0; n < N; n++) {
            double d = 0.0, magnitude = 0.0;
            for (int o = 0; o < OC; o++) {
                const double term = (double)lm_test_widen(dout[(size_t)n * OC + o]) *
                                    lm_test_weight_at(weight, i, o, IC, OC, c.layout);
                d += term;
                magnitude += fabs(term);
            }
            const double x = lm_test_widen(pre[(size_t)n * IC + i]), grad = gelu_grad_exact(x, 1), exact = d * grad;
            /* the fp32 gradient's error: the sum's, times |gelu'|, and gelu' evaluated in fp32 */
            const double slack = GELU_GRAD_MAX * lm_test_gamma_k(OC) * magnitude + gelu_eval_error(x) * fabs(d) +
                                 (fallback ? GELU_GRAD_MAX * lm_test_bf16_ulp(d) : 0.0);
            const double value = lm_test_widen(dpre[(size_t)n * IC + i]);
            ck_assert_msg(bf16_within(value, exact, slack), "layout %d store %d: dpre_gelu[%d,%d] = %.9g, exact %.9g",
                          c.layout, c.store, n, i, value, exact);
            worst_dpre = fmax(worst_dpre, fabs(value - exact) / (0.5 * lm_test_bf16_ulp(exact) + slack));
            col += exact;
            col_magnitude += fabs(exact);
            col_slack += slack + (rounded_sums ? lm_test_bf16_ulp(exact) : 0.0);
            unrounded_slack += slack;
        }
        if (d_dbp)
            worst_dbias_pre = fmax(worst_dbias_pre, fabs(dbias_pre[i] - col) /
                                                        (unrounded_slack + lm_test_gamma_k(N + 1) * col_magnitude));
        if (d_dbp)
            ck_assert_msg(fabs(dbias_pre[i] - col) <= col_slack + lm_test_gamma_k(N + 1) * col_magnitude,
                          "layout %d store %d: dbias_pre[%d] = %.9g, exact %.9g", c.layout, c.store, i,
                          (double)dbias_pre[i], col);
    }
    for (int i = 0; i < IC; i++) {
        for (int o = 0; o < OC; o++) {
            const size_t at = c.layout == LM_W_IN_OUT ? (size_t)i * OC + o : (size_t)o * IC + i;
            double sum = add ? (double)dweight0[at] : 0.0, magnitude = fabs(sum);
            for (int n = 0; n < N; n++) {
                const double term =
                    (double)lm_test_widen(gelu_out[(size_t)n * IC + i]) * lm_test_widen(dout[(size_t)n * OC + o]);
                sum += term;
                magnitude += fabs(term);
            }
            ck_assert_msg(fabs(dweight[at] - sum) <= lm_test_gamma_k(N + 1) * magnitude,
                          "layout %d store %d: dweight(%d,%d) = %.9g, exact %.9g", c.layout, c.store, i, o,
                          (double)dweight[at], sum);
        }
    }
    for (int o = 0; o < OC && d_db; o++) {
        double sum = add ? (double)dbias0[o] : 0.0, magnitude = fabs(sum);
        for (int n = 0; n < N; n++) {
            sum += lm_test_widen(dout[(size_t)n * OC + o]);
            magnitude += fabs(lm_test_widen(dout[(size_t)n * OC + o]));
        }
        ck_assert_msg(fabs(dbias[o] - sum) <= lm_test_gamma_k(N + 1) * magnitude, "dbias[%d] = %.9g, exact %.9g", o,
                      (double)dbias[o], sum);
    }
#ifndef BF16_TEST_CUDA
    /* The twin: gelu_matmul_backward on the widened inputs, dpre_gelu rounded
     * once, the fp32 gradients the fp32 op's bits. */
    float *dout32 = widened(dout, n_out), *pre32 = widened(pre, n_in), *gelu32 = widened(gelu_out, n_in);
    float *w32 = widened(weight, n_w), *dpre32 = malloc(n_in * 4);
    float *want_dw = malloc(n_w * 4), *want_db = malloc((size_t)OC * 4), *want_dbp = malloc((size_t)IC * 4);
    ck_assert(dpre32 && want_dw && want_db && want_dbp);
    memcpy(want_dw, dweight0, n_w * 4);
    memcpy(want_db, dbias0, (size_t)OC * 4);
    memcpy(want_dbp, dbias_pre0, (size_t)IC * 4);
    lm_cpu_gelu_matmul_backward(dpre32, want_dw, c.with_dbias ? want_db : NULL, c.with_dbias_pre ? want_dbp : NULL,
                                dout32, gelu32, pre32, w32, N, IC, OC, c.layout, c.store);
    for (size_t e = 0; e < n_in; e++) ck_assert_uint_eq(dpre[e], lm_bf16_from_float(dpre32[e]));
    ck_assert_int_eq(memcmp(dweight, want_dw, n_w * 4), 0);
    if (d_db) ck_assert_int_eq(memcmp(dbias, want_db, (size_t)OC * 4), 0);
    if (d_dbp) ck_assert_int_eq(memcmp(dbias_pre, want_dbp, (size_t)IC * 4), 0);
    free(want_dbp), free(want_db), free(want_dw), free(dpre32), free(w32), free(gelu32), free(pre32), free(dout32);
#endif
    printf("gelu_matmul_backward_bf16 %dx%dx%d layout %d store %d dbias %d dbias_pre %d%s: worst dpre_gelu %.3f of "
           "the bound, dbias_pre %.3f of the unrounded sums' bound\n",
           N, IC, OC, c.layout, c.store, c.with_dbias, c.with_dbias_pre, fallback ? " (CUDA fallback)" : "",
           worst_dpre, worst_dbias_pre);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    be->ops->free(be, d_dout), be->ops->free(be, d_pre), be->ops->free(be, d_gelu), be->ops->free(be, d_w);
    be->ops->free(be, d_dpre), be->ops->free(be, d_dw);
    if (d_db) be->ops->free(be, d_db);
    if (d_dbp) be->ops->free(be, d_dbp);
    lm_backend_release(be);
    free(dout), free(pre), free(gelu_out), free(weight), free(dpre), free(dweight), free(dbias), free(dbias_pre);
    free(dweight0), free(dbias0), free(dbias_pre0);
}

START_TEST(gelu_matmul_backward_bf16_rounds_once) {
    for (int layout = 0; layout < 2; layout++) {
        for (int store = 0; store < 2; store++) {
            const lm_weight_layout l = (lm_weight_layout)layout;
            const lm_grad_store s = store ? LM_GRAD_ADD : LM_GRAD_WRITE;
            check_gelu_matmul_backward((backward_case){37, 48, 70, l, s, 1, 1}); /* IC % 8 == 0: DGELU(_BGRAD) */
            check_gelu_matmul_backward((backward_case){37, 44, 70, l, s, 1, 1}); /* CUDA: the unfused fallback */
            check_gelu_matmul_backward((backward_case){37, 48, 70, l, s, 0, 0}); /* no biases */
        }
    }
}
END_TEST

/* ---- gelu_forward_bf16 / gelu_backward_bf16 ---- */

enum { FIXTURE = sizeof gelu_bf16_fixture / sizeof *gelu_bf16_fixture };

/* The fixture's inputs (bf16 x, fp32 dout) and the op's outputs for one form. */
static void run_gelu_ops(uint16_t *fwd, uint16_t *bwd, const uint16_t *x, const float *dout, size_t n, int tanh_form,
                         uint16_t *fp32_fwd_rounded, uint16_t *fp32_bwd_rounded) {
    lm_backend *be = lm_test_make_backend(BF16_TEST_DEVICE);
    uint16_t *d_x = lm_test_dev_copy(be, x, n * 2), *d_fwd = lm_test_dev_copy(be, NULL, n * 2),
             *d_bwd = lm_test_dev_copy(be, NULL, n * 2);
    float *d_dout = lm_test_dev_copy(be, dout, n * 4), *d_x32 = lm_test_dev_copy(be, NULL, n * 4),
          *d_y32 = lm_test_dev_copy(be, NULL, n * 4);
    be->ops->gelu_forward_bf16(be, d_fwd, d_x, n, tanh_form);
    be->ops->gelu_backward_bf16(be, d_bwd, d_x, d_dout, n, tanh_form);
    lm_test_download(be, fwd, d_fwd, n * 2);
    lm_test_download(be, bwd, d_bwd, n * 2);
    /* The same device's fp32 ops on the widened values, rounded: what the bf16 ops promise. */
    float *x32 = widened(x, n), *y32 = malloc(n * 4);
    ck_assert_ptr_nonnull(y32);
    ck_assert_int_eq(be->ops->upload(be, d_x32, x32, n * 4), LM_OK);
    be->ops->gelu_forward(be, d_y32, d_x32, n, tanh_form);
    lm_test_download(be, y32, d_y32, n * 4);
    for (size_t i = 0; i < n; i++) fp32_fwd_rounded[i] = lm_bf16_from_float(y32[i]);
    be->ops->gelu_backward(be, d_y32, d_x32, d_dout, n, tanh_form);
    lm_test_download(be, y32, d_y32, n * 4);
    for (size_t i = 0; i < n; i++) fp32_bwd_rounded[i] = lm_bf16_from_float(y32[i]);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    be->ops->free(be, d_x), be->ops->free(be, d_fwd), be->ops->free(be, d_bwd);
    be->ops->free(be, d_dout), be->ops->free(be, d_x32), be->ops->free(be, d_y32);
    lm_backend_release(be);
    free(y32), free(x32);
}

static void fixture_inputs(uint16_t *x, float *dout) {
    for (int i = 0; i < FIXTURE; i++) {
        x[i] = gelu_bf16_fixture[i].x;
        memcpy(&dout[i], &gelu_bf16_fixture[i].dout_bits, sizeof dout[i]);
    }
}

/* bf16 codes on one ordered integer line (±0 both 0), for step counts. */
static int ordered(uint16_t h) { return h & 0x8000u ? -(int)(h & 0x7fffu) : (int)h; }
static int is_nan(uint16_t h) { return (h & 0x7fffu) > 0x7f80u; }

START_TEST(gelu_bf16_specials_and_ties) {
    static uint16_t x[FIXTURE], fwd[FIXTURE], bwd[FIXTURE], want_fwd[FIXTURE], want_bwd[FIXTURE];
    static float dout[FIXTURE];
    fixture_inputs(x, dout);
    for (int tanh_form = 0; tanh_form <= 1; tanh_form++) {
        run_gelu_ops(fwd, bwd, x, dout, FIXTURE, tanh_form, want_fwd, want_bwd);
        /* The device's fp32 op on the widened values, rounded once, bit for bit
         * (on the CPU that is the twin's definition; on the GPU gelu_bf16.cu's claim). */
        for (int i = 0; i < FIXTURE; i++) {
            ck_assert_msg(fwd[i] == want_fwd[i], "form %d: gelu(0x%04x) = 0x%04x, the fp32 op's rounded 0x%04x",
                          tanh_form, x[i], fwd[i], want_fwd[i]);
            ck_assert_msg(bwd[i] == want_bwd[i], "form %d: dgelu(0x%04x, 0x%08x) = 0x%04x, the fp32 op's 0x%04x",
                          tanh_form, x[i], gelu_bf16_fixture[i].dout_bits, bwd[i], want_bwd[i]);
        }
        /* The specials (the fixture's first rows), whatever the device's exp and erf. */
        ck_assert_uint_eq(fwd[0], 0x7fc0); /* NaN -> torch's NaN, sign and payload dropped */
        ck_assert_uint_eq(fwd[1], 0x7fc0);
        ck_assert_uint_eq(fwd[2], 0x7f80); /* gelu(+inf) = +inf */
        ck_assert_uint_eq(fwd[4], 0x0000); /* gelu(+0) = +0 */
        ck_assert_uint_eq(bwd[0], 0x7fc0);
        ck_assert_uint_eq(bwd[4], 0x3f00); /* gelu'(0) = 1/2 */
        ck_assert_uint_eq(bwd[12], 0x7f80); /* +inf · gelu'(0) */
        ck_assert_uint_eq(bwd[13], 0x7fc0); /* NaN dout */
        ck_assert_uint_eq(fwd[6], 0x0000);  /* a subnormal's half, a tie, to even (0) */
        ck_assert_uint_eq(fwd[8], 0x0040);  /* 0x007F·(1/2 + ~0): subnormal, rounded */
        ck_assert_uint_eq(fwd[10], 0x7f7f); /* the largest finite: gelu = x */
        /* gelu'(10) = 1 exactly: dout's fp32 ties reach the rounding as they are */
        ck_assert_uint_eq(fwd[14], 0x4120);
        ck_assert_uint_eq(bwd[14], 0x3f80); /* 1.00390625: down, to even */
        ck_assert_uint_eq(bwd[15], 0x3f82); /* 1.01171875: up, to even */
        ck_assert_uint_eq(bwd[16], 0xbf80); /* negative tie, down in magnitude */
        ck_assert_uint_eq(bwd[17], 0x3f81); /* just above a tie: up */
        ck_assert_uint_eq(bwd[19], 0x0000); /* the smallest fp32 subnormal rounds to +0 */
    }
}
END_TEST

/* The ops against torch's bf16 GELU (the committed fixture): steps between
 * the codes (±0 equal, NaN only with NaN).  In the far negative tail
 * (x < -4) torch's 1 + tanh(u) and 1 + erf(x/√2) cancel (the twins' tanh
 * form, x·σ(2u), does not): an fp32 ulp there is many bf16 steps of a tiny
 * result, so the tail is held to an absolute bound (TAIL_ABS) instead. */
#define TAIL_ABS 2e-6
START_TEST(gelu_bf16_against_torch) {
    static uint16_t x[FIXTURE], fwd[FIXTURE], bwd[FIXTURE], fp32_fwd[FIXTURE], fp32_bwd[FIXTURE];
    static float dout[FIXTURE];
    fixture_inputs(x, dout);
    for (int tanh_form = 0; tanh_form <= 1; tanh_form++) {
        run_gelu_ops(fwd, bwd, x, dout, FIXTURE, tanh_form, fp32_fwd, fp32_bwd);
        for (int backward = 0; backward <= 1; backward++) {
            int equal = 0, worst = 0, tail = 0;
            double worst_tail = 0.0;
            for (int i = 0; i < FIXTURE; i++) {
                const uint16_t got = backward ? bwd[i] : fwd[i];
                const uint16_t want = backward ? (tanh_form ? gelu_bf16_fixture[i].backward_tanh
                                                            : gelu_bf16_fixture[i].backward_erf)
                                               : (tanh_form ? gelu_bf16_fixture[i].forward_tanh
                                                            : gelu_bf16_fixture[i].forward_erf);
                ck_assert_msg(is_nan(got) == is_nan(want), "form %d backward %d: x 0x%04x: 0x%04x, torch 0x%04x",
                              tanh_form, backward, x[i], got, want);
                if (is_nan(want)) {
                    equal++;
                    continue;
                }
                const int steps = abs(ordered(got) - ordered(want));
                equal += steps == 0;
                if (lm_test_widen(x[i]) < -4.0f) {
                    const double diff = fabs(lm_test_widen(got) - lm_test_widen(want));
                    tail++;
                    worst_tail = fmax(worst_tail, diff);
                    ck_assert_msg(diff <= TAIL_ABS, "form %d backward %d, tail: x %.6g: %.9g, torch %.9g", tanh_form,
                                  backward, (double)lm_test_widen(x[i]), (double)lm_test_widen(got),
                                  (double)lm_test_widen(want));
                    continue;
                }
                if (steps > worst) worst = steps;
                ck_assert_msg(steps <= TORCH_STEPS, "form %d backward %d: x %.6g (0x%04x): 0x%04x, torch 0x%04x",
                              tanh_form, backward, (double)lm_test_widen(x[i]), x[i], got, want);
            }
            printf("gelu_%s_bf16 (%s) against torch: %d of %d equal, worst %d bf16 step(s) for x >= -4; the %d in "
                   "the tail x < -4 within %.2g\n",
                   backward ? "backward" : "forward", tanh_form ? "tanh" : "erf", equal, FIXTURE, worst, tail,
                   worst_tail);
        }
    }
}
END_TEST

static Suite *bf16_ffn_suite(void) {
    Suite *s = suite_create("bf16_ffn_ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, matmul_forward_bf16_to_fp32_sums_in_fp32);
    tcase_add_test(tc, matmul_gelu_forward_bf16_rounds_once);
    tcase_add_test(tc, gelu_matmul_backward_bf16_rounds_once);
    tcase_add_test(tc, gelu_bf16_specials_and_ties);
    tcase_add_test(tc, gelu_bf16_against_torch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_main_for_device(BF16_TEST_DEVICE, bf16_ffn_suite); }

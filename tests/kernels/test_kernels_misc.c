/* Kernel properties beyond gradients: the vectorised exp, dropout masks as a
 * pure function of (seed, stream, index), attention and cross-entropy
 * against plain double-precision references, identical results on 1 and 2
 * threads, and the CPU backend / device selection. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu/dropout_mask.h"
#include "cpu/vec_math.h"
#include "kernel_test_util.h"
#include "kernels.h"
#include "lmcore/rng.h"

START_TEST(test_vectorised_exp_is_within_one_ulp) {
    enum { N = 200001 };
    float *x = tk_floats(N), *got = tk_floats(N), *want = tk_floats(N);
    for (int i = 0; i < N; i++) x[i] = -87.0f + 175.0f * (float)i / (float)(N - 1);
    for (int i = 0; i < N; i++) {
        got[i] = lm_vexpf(x[i]);
        want[i] = (float)exp((double)x[i]);
    }
    int64_t ulp = tk_max_ulp(got, want, N);
    ck_assert_msg(ulp <= 1, "lm_vexpf is %lld ulp from exp", (long long)ulp);
    /* The edges: 0 far below, +inf above, NaN kept. */
    ck_assert_float_eq(lm_vexpf(-INFINITY), 0.0f);
    ck_assert_float_eq(lm_vexpf(-1e30f), 0.0f);
    ck_assert(isinf(lm_vexpf(100.0f)) && lm_vexpf(100.0f) > 0);
    ck_assert(isinf(lm_vexpf(INFINITY)));
    ck_assert(isnan(lm_vexpf(NAN)));
    ck_assert_float_eq(lm_vexpf(0.0f), 1.0f);
    free(x), free(got), free(want);
}
END_TEST

/* The exact GELU (vectorised erf from libmvec where the build has it, glibc
 * erff elsewhere) against double precision, forward and backward, on a
 * length that exercises the 8-wide blocks, the chunk edges and the tail.
 * Allowance: a few ulp of erf near 1 times 0.5·|x| (1 + erf cancels for
 * negative x, in any float evaluation, PyTorch's included) plus a few ulp
 * of the result. */
START_TEST(test_exact_gelu_matches_double_reference) {
    enum { N = 100003 };
    float *x = tk_floats(N), *y = tk_floats(N), *dx = tk_floats(N), *dy = tk_floats(N);
    for (int i = 0; i < N; i++) {
        x[i] = -9.0f + 18.0f * (float)i / (float)(N - 1);
        dy[i] = 1.0f;
    }
    x[0] = 0.0f, x[1] = -0.0f, x[2] = 1e-30f, x[3] = 40.0f, x[4] = -40.0f;
    lm_cpu_gelu_forward(y, x, N, 0);
    lm_cpu_gelu_backward(dx, x, dy, N, 0);
    const double erf_ulp = 5.96e-8;         /* an ulp of floats just below 1 */
    double worst_y = 0, worst_dx = 0;
    for (int i = 0; i < N; i++) {
        double xd = x[i], cdf = 0.5 * (1.0 + erf(xd / sqrt(2.0)));
        double want_y = xd * cdf;
        double want_dx = cdf + xd * exp(-0.5 * xd * xd) / sqrt(2.0 * M_PI);
        double allow_y = 0.5 * fabs(xd) * 4 * erf_ulp + 4 * 1.2e-7 * fabs(want_y) + 1e-37;
        double allow_dx = 0.5 * 4 * erf_ulp + 8 * 1.2e-7 * (fabs(want_dx) + fabs(xd * 0.4)) + 1e-37;
        double ey = fabs(y[i] - want_y) / allow_y, edx = fabs(dx[i] - want_dx) / allow_dx;
        if (ey > worst_y) worst_y = ey;
        if (edx > worst_dx) worst_dx = edx;
        ck_assert_msg(ey <= 1.0, "gelu(%.9g) = %.9g, double says %.9g", (double)x[i], (double)y[i], want_y);
        ck_assert_msg(edx <= 1.0, "gelu'(%.9g) = %.9g, double says %.9g", (double)x[i], (double)dx[i], want_dx);
    }
    ck_assert_float_eq(y[0], 0.0f);
    ck_assert_float_eq(y[3], 40.0f);
    ck_assert(y[4] == 0.0f); /* -40 · Φ(-40): underflows to (-)0 */
    printf("exact gelu: worst error %.2f (forward) and %.2f (backward) of the allowance\n", worst_y, worst_dx);
    free(x), free(y), free(dx), free(dy);
}
END_TEST

START_TEST(test_dropout_integer_threshold_equals_uniform_comparison) {
    /* The kernels keep an element when its top 24 random bits k reach an
     * integer threshold; lm_rng_uniform is k / 2^24.  Equivalence with
     * "uniform >= p" holds iff the threshold is the smallest such k. */
    const float ps[] = {1e-7f, 0.1f, 0.25f, 0.3f, 0.5f, 1.0f / 3.0f, 0.9f, 0.999f, 1.0f - 1.0f / 16777216.0f};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
        lm_dropout_mask mask = lm_dropout_mask_make(ps[i]);
        uint32_t t = mask.threshold;
        ck_assert_msg(t > 0 && t < (1u << 24), "p = %g: threshold %u", (double)ps[i], t);
        ck_assert_msg(lm_u32_to_unit_float(t << 8) >= ps[i], "p = %g: k = threshold is dropped", (double)ps[i]);
        ck_assert_msg(lm_u32_to_unit_float((t - 1) << 8) < ps[i], "p = %g: k = threshold - 1 is kept",
                      (double)ps[i]);
    }
}
END_TEST

START_TEST(test_dropout_mask_is_a_function_of_seed_stream_index) {
    enum { N = 5000 };
    const float p = 0.3f, scale = 1.0f / (1.0f - p);
    float *ones = tk_floats(N), *out = tk_floats(N), *again = tk_floats(N), *prefix = tk_floats(N);
    for (int i = 0; i < N; i++) ones[i] = 1.0f;
    lm_cpu_dropout_forward(out, ones, N, p, 1234, 7);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        float want = lm_rng_uniform(1234, 7, (uint64_t)i) >= p ? scale : 0.0f;
        ck_assert_msg(out[i] == want, "element %d: %g, expected %g", i, (double)out[i], (double)want);
        kept += out[i] != 0.0f;
    }
    /* ~70 % kept: 5 standard deviations of a binomial(5000, 0.7) is ~160. */
    ck_assert_int_lt(abs(kept - 3500), 160);
    lm_cpu_dropout_forward(again, ones, N, p, 1234, 7);
    ck_assert_mem_eq(out, again, N * sizeof *out);
    /* A shorter call draws the same prefix: nothing depends on n. */
    lm_cpu_dropout_forward(prefix, ones, 777, p, 1234, 7);
    ck_assert_mem_eq(out, prefix, 777 * sizeof *out);
    /* Another stream or seed gives another mask. */
    lm_cpu_dropout_forward(again, ones, N, p, 1234, 8);
    ck_assert(memcmp(out, again, N * sizeof *out) != 0);
    lm_cpu_dropout_forward(again, ones, N, p, 1235, 7);
    ck_assert(memcmp(out, again, N * sizeof *out) != 0);
    /* Backward applies the same mask and writes (what the buffer held,
     * here NaN, is never read). */
    float *grad = tk_floats(N);
    for (int i = 0; i < N; i++) grad[i] = NAN;
    lm_cpu_dropout_backward(grad, ones, N, p, 1234, 7);
    ck_assert_mem_eq(grad, out, N * sizeof *out);
    /* p = 0 copies; p = 1 drops everything without NaN: forward and backward. */
    lm_cpu_dropout_forward(again, ones, N, 0.0f, 1, 1);
    ck_assert_mem_eq(again, ones, N * sizeof *out);
    for (int i = 0; i < N; i++) grad[i] = NAN;
    lm_cpu_dropout_backward(grad, ones, N, 0.0f, 1, 1);
    ck_assert_mem_eq(grad, ones, N * sizeof *out);
    lm_cpu_dropout_forward(again, ones, N, 1.0f, 1, 1);
    for (int i = 0; i < N; i++) ck_assert_float_eq(again[i], 0.0f);
    for (int i = 0; i < N; i++) grad[i] = NAN;
    lm_cpu_dropout_backward(grad, ones, N, 1.0f, 1, 1);
    for (int i = 0; i < N; i++) ck_assert_float_eq(grad[i], 0.0f);
    free(ones), free(out), free(again), free(prefix), free(grad);
}
END_TEST

/* Hugging Face eager attention in double, with lm_rng_uniform >= p masks. */
static void reference_attention(double *out, double *probs, const float *q, const float *k, const float *v,
                                int stride, const int32_t *mask, int causal, int B, int T, int C, int NH, float p,
                                uint64_t seed, uint64_t stream) {
    int hs = C / NH;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                double *row = probs + (((size_t)b * NH + h) * T + i) * T;
                double max = -INFINITY;
                int visible = 0;
                for (int j = 0; j < T; j++) {
                    int shown = (!causal || j <= i) && (!mask || mask[b * T + j]);
                    double s = 0.0;
                    for (int d = 0; d < hs; d++)
                        s += (double)q[(b * T + i) * stride + h * hs + d] * k[(b * T + j) * stride + h * hs + d];
                    row[j] = shown ? s / sqrt((double)hs) : -INFINITY;
                    visible += shown;
                    if (row[j] > max) max = row[j];
                }
                double sum = 0.0;
                for (int j = 0; j < T; j++) sum += row[j] = visible ? exp(row[j] - max) : 1.0;
                for (int d = 0; d < hs; d++) out[(b * T + i) * C + h * hs + d] = 0.0;
                for (int j = 0; j < T; j++) {
                    row[j] /= sum;
                    uint64_t index = (((uint64_t)b * NH + h) * T + i) * T + j;
                    double a = p > 0 ? (lm_rng_uniform(seed, stream, index) >= p ? row[j] / (1.0 - p) : 0.0) : row[j];
                    for (int d = 0; d < hs; d++)
                        out[(b * T + i) * C + h * hs + d] += a * v[(b * T + j) * stride + h * hs + d];
                }
            }
}

static void check_attention_reference(int causal, const int32_t *mask, float p) {
    enum { B = 2, T = 9, C = 12, NH = 3 };
    size_t nin = (size_t)B * T * 3 * C, natt = (size_t)B * NH * T * T, no = (size_t)B * T * C;
    float *qkv = tk_floats(nin), *out = tk_floats(no), *preatt = tk_floats(natt), *att = tk_floats(natt);
    tk_fill(qkv, nin, -2.0f, 2.0f, 61);
    lm_cpu_attention_forward(out, preatt, att, qkv, qkv + C, qkv + 2 * C, 3 * C, mask, causal, B, T, C, NH, p, 42, 9);
    double *ref_out = calloc(no, sizeof *ref_out), *ref_probs = calloc(natt, sizeof *ref_probs);
    reference_attention(ref_out, ref_probs, qkv, qkv + C, qkv + 2 * C, 3 * C, mask, causal, B, T, C, NH, p, 42, 9);
    float *want_out = tk_floats(no), *want_probs = tk_floats(natt), *want_att = tk_floats(natt);
    for (size_t i = 0; i < no; i++) want_out[i] = (float)ref_out[i];
    for (size_t i = 0; i < natt; i++) {
        want_probs[i] = (float)ref_probs[i];
        want_att[i] = p > 0 ? (lm_rng_uniform(42, 9, i) >= p ? want_probs[i] / (1.0f - p) : 0.0f) : want_probs[i];
    }
    tk_assert_close("attention probabilities vs double reference", preatt, want_probs, natt, 1e-6, 1e-5);
    tk_assert_close("attention dropped probabilities vs reference", att, want_att, natt, 1e-6, 1e-5);
    tk_assert_close("attention output vs double reference", out, want_out, no, 1e-5, 1e-5);
    free(qkv), free(out), free(preatt), free(att), free(ref_out), free(ref_probs), free(want_out), free(want_probs);
    free(want_att);
}

START_TEST(test_attention_matches_double_reference) {
    /* Sequence 1: left padding (its first query sees nothing under the
     * causal mask: uniform row) and a hole in the middle. */
    static const int32_t mask[2 * 9] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0};
    static const int32_t all_padding[2 * 9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    check_attention_reference(1, NULL, 0.0f);
    check_attention_reference(1, mask, 0.0f);
    check_attention_reference(1, mask, 0.1f);
    check_attention_reference(0, mask, 0.3f);
    check_attention_reference(0, all_padding, 0.0f); /* sequence 1 entirely padding */
}
END_TEST

START_TEST(test_crossentropy_matches_double_reference) {
    enum { N = 6, V = 1000 };
    static const int32_t labels[N] = {0, 999, -100, 500, 17, -100};
    float *logits = tk_floats(N * V), *losses = tk_floats(N);
    tk_fill(logits, N * V, -20.0f, 20.0f, 71);
    for (int j = 0; j < V; j++) logits[3 * V + j] += 1000.0f; /* large offset: needs the max shift */
    double sum = lm_cpu_crossentropy_forward(losses, logits, labels, N, V, V);
    double want_sum = 0.0;
    for (int n = 0; n < N; n++) {
        double want = 0.0;
        if (labels[n] >= 0) {
            double max = -INFINITY, s = 0.0;
            for (int j = 0; j < V; j++) max = fmax(max, logits[n * V + j]);
            for (int j = 0; j < V; j++) s += exp((double)logits[n * V + j] - max);
            want = log(s) + max - logits[n * V + labels[n]];
        }
        want_sum += (float)want;
        ck_assert_msg(fabs(losses[n] - want) <= 1e-5 * fmax(1.0, fabs(want)), "row %d loss %.9g, expected %.9g", n,
                      (double)losses[n], want);
    }
    ck_assert_double_eq_tol(sum, want_sum, 1e-4);
    free(logits), free(losses);
}
END_TEST

START_TEST(test_residual_and_sum_squares) {
    enum { N = 100003 };
    float *a = tk_floats(N), *b = tk_floats(N), *out = tk_floats(N);
    tk_fill(a, N, -1.0f, 1.0f, 81);
    tk_fill(b, N, -1.0f, 1.0f, 82);
    lm_cpu_residual_forward(out, a, b, N);
    for (int i = 0; i < N; i++) ck_assert_float_eq(out[i], a[i] + b[i]);
    lm_cpu_residual_forward(out, out, a, N); /* in place: a gradient merge */
    for (int i = 0; i < N; i++) ck_assert_float_eq(out[i], (a[i] + b[i]) + a[i]);
    double want = 0.0;
    for (int i = 0; i < N; i++) want += (double)a[i] * a[i];
    ck_assert_double_eq_tol(lm_cpu_sum_squares(a, N), want, 1e-9 * want);
    ck_assert_double_eq(lm_cpu_sum_squares(a, 0), 0.0);
    free(a), free(b), free(out);
}
END_TEST

START_TEST(test_nan_inputs_give_nan_outputs) {
    /* A NaN must reach the loss so that the trainer stops: softmax rows with
     * NaN scores must not be mistaken for rows without visible keys. */
    enum { B = 1, T = 4, C = 4, NH = 1 };
    float qkv[B * T * 3 * C], out[B * T * C], preatt[T * T], att[T * T];
    tk_fill(qkv, B * T * 3 * C, -1, 1, 101);
    for (int t = 0; t < T; t++) qkv[t * 3 * C + C] = NAN; /* every key */
    lm_cpu_attention_forward(out, preatt, att, qkv, qkv + C, qkv + 2 * C, 3 * C, NULL, 1, B, T, C, NH, 0.0f, 1, 1);
    for (int i = 0; i < B * T * C; i++) ck_assert_msg(isnan(out[i]), "attention out[%d] = %g", i, (double)out[i]);
    float logits[2 * 5] = {0, 1, 2, 3, 4, 0, 1, NAN, 3, 4}, losses[2];
    int32_t labels[2] = {1, 1};
    double sum = lm_cpu_crossentropy_forward(losses, logits, labels, 2, 5, 5);
    ck_assert(!isnan(losses[0]) && isnan(losses[1]) && isnan(sum));
    float x[3] = {NAN, 1.0f, -1.0f}, y[3];
    lm_cpu_gelu_forward(y, x, 3, 1);
    ck_assert(isnan(y[0]));
    ck_assert(isnan(lm_cpu_sum_squares(x, 3)));
}
END_TEST

/* ---- one op sequence run on a given thread count ---- */

typedef struct thread_run {
    float *mm_out, *mm_dx, *mm_dw, *mm_db, *att_out, *att_p, *att_a, *att_d, *ln_out, *ln_dx, *ln_dw, *ln_db, *ce_loss,
        *ce_d, *emb_dte, *gelu_out, *gelu_dx, *drop_out, *param, *m, *v;
    double sum_squares, ce_sum;
} thread_run;

/* Sizes above the kernels' parallel thresholds (LM_CPU_PARALLEL_MIN), so
 * that the two runs really split the work differently. */
enum { TN = 256, TIC = 96, TOC = 160, TB = 2, TT = 48, TC = 64, TNH = 4, TV = 1000, TP = 70001 };
enum { EB = 4, ET = 64, EC = 256 };

static void run_ops(thread_run *r, int threads) {
    lm_cpu_set_threads(threads);
    float *x = tk_floats(TN * TIC), *w = tk_floats(TIC * TOC), *bias = tk_floats(TOC), *dout = tk_floats(TN * TOC);
    tk_fill(x, TN * TIC, -1, 1, 1), tk_fill(w, TIC * TOC, -1, 1, 2), tk_fill(bias, TOC, -1, 1, 3);
    tk_fill(dout, TN * TOC, -1, 1, 4);
    r->mm_out = tk_floats(TN * TOC), r->mm_dx = tk_floats(TN * TIC), r->mm_dw = tk_floats(TIC * TOC);
    r->mm_db = tk_floats(TOC);
    lm_cpu_matmul_forward(r->mm_out, x, w, bias, TN, TIC, TOC, LM_W_IN_OUT);
    lm_cpu_matmul_backward(r->mm_dx, r->mm_dw, r->mm_db, dout, x, w, TN, TIC, TOC, LM_W_IN_OUT, LM_GRAD_WRITE,
                           LM_GRAD_ADD);
    lm_cpu_matmul_backward(r->mm_dx, r->mm_dw, r->mm_db, dout, x, w, TN, TIC, TOC, LM_W_OUT_IN, LM_GRAD_ADD,
                           LM_GRAD_ADD);

    size_t nin = (size_t)TB * TT * 3 * TC, natt = (size_t)TB * TNH * TT * TT, no = (size_t)TB * TT * TC;
    float *qkv = tk_floats(nin), *g = tk_floats(no), *scratch = tk_floats(natt);
    tk_fill(qkv, nin, -2, 2, 5), tk_fill(g, no, -1, 1, 6);
    r->att_out = tk_floats(no), r->att_p = tk_floats(natt), r->att_a = tk_floats(natt), r->att_d = tk_floats(nin);
    lm_cpu_attention_forward(r->att_out, r->att_p, r->att_a, qkv, qkv + TC, qkv + 2 * TC, 3 * TC, NULL, 1, TB, TT, TC,
                             TNH, 0.1f, 3, 4);
    lm_cpu_attention_backward(r->att_d, r->att_d + TC, r->att_d + 2 * TC, scratch, g, r->att_p, r->att_a, qkv,
                              qkv + TC, qkv + 2 * TC, 3 * TC, TB, TT, TC, TNH, 0.1f, 3, 4);

    r->ln_out = tk_floats(TN * TOC), r->ln_dx = tk_floats(TN * TOC), r->ln_dw = tk_floats(TOC);
    r->ln_db = tk_floats(TOC);
    float *mean = tk_floats(TN), *rstd = tk_floats(TN);
    lm_cpu_layernorm_forward(r->ln_out, mean, rstd, r->mm_out, bias, bias, TN, TOC, 1e-5f);
    lm_cpu_layernorm_backward(r->ln_dx, r->ln_dw, r->ln_db, dout, r->mm_out, bias, mean, rstd, TN, TOC, LM_GRAD_ADD,
                              LM_GRAD_ADD);

    int32_t *labels = tk_ints(TN);
    for (int n = 0; n < TN; n++) labels[n] = n % 7 == 0 ? -100 : (n * 37) % TV;
    float *logits = tk_floats((size_t)TN * TV);
    tk_fill(logits, (size_t)TN * TV, -5, 5, 7);
    r->ce_loss = tk_floats(TN);
    r->ce_sum = lm_cpu_crossentropy_forward(r->ce_loss, logits, labels, TN, TV, TV);
    lm_cpu_crossentropy_backward(logits, logits, labels, 0.01f, TN, TV, TV);
    r->ce_d = logits;

    r->emb_dte = tk_floats(TV * EC);
    float *wpe_grad = tk_floats(ET * EC), *emb_g = tk_floats(EB * ET * EC);
    tk_fill(emb_g, EB * ET * EC, -1, 1, 10);
    int32_t *ids = tk_ints(EB * ET);
    for (int i = 0; i < EB * ET; i++) ids[i] = (i * 13) % 20; /* repeated tokens: colliding scatters */
    lm_cpu_embedding_backward(r->emb_dte, wpe_grad, NULL, emb_g, ids, NULL, EB, ET, EC);
    free(ids), free(emb_g);

    r->gelu_out = tk_floats(TP), r->gelu_dx = tk_floats(TP), r->drop_out = tk_floats(TP);
    float *big = tk_floats(TP), *big_g = tk_floats(TP);
    tk_fill(big, TP, -4, 4, 8), tk_fill(big_g, TP, -1, 1, 9);
    lm_cpu_gelu_forward(r->gelu_out, big, TP, 1);
    lm_cpu_gelu_backward(r->gelu_dx, big, big_g, TP, 0);
    lm_cpu_dropout_forward(r->drop_out, big, TP, 0.1f, 5, 6);
    r->sum_squares = lm_cpu_sum_squares(big, TP);
    r->param = tk_copy(big, TP), r->m = tk_floats(TP), r->v = tk_floats(TP);
    /* AdamW (the adamw plugin's CPU loop, on a device of as many threads). */
    tk_adamw(r->param, big_g, r->m, r->v, TP, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.5f, 1, threads);
    free(x), free(w), free(bias), free(dout), free(qkv), free(g), free(scratch), free(mean), free(rstd), free(labels);
    free(wpe_grad), free(big), free(big_g);
}

static void free_run(thread_run *r) {
    float **fields[] = {&r->mm_out, &r->mm_dx, &r->mm_dw, &r->mm_db, &r->att_out, &r->att_p, &r->att_a,
                        &r->att_d, &r->ln_out, &r->ln_dx, &r->ln_dw, &r->ln_db, &r->ce_loss, &r->ce_d,
                        &r->emb_dte, &r->gelu_out, &r->gelu_dx, &r->drop_out, &r->param, &r->m, &r->v};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) free(*fields[i]);
}

#define SAME(field, n) ck_assert_msg(memcmp(one.field, two.field, (size_t)(n) * sizeof(float)) == 0, \
                                     #field " differs between 1 and 2 threads")

START_TEST(test_results_identical_on_one_and_two_threads) {
    thread_run one, two;
    run_ops(&one, 1);
    run_ops(&two, 2);
    SAME(mm_out, TN * TOC), SAME(mm_dx, TN * TIC), SAME(mm_dw, TIC * TOC), SAME(mm_db, TOC);
    SAME(att_out, TB * TT * TC), SAME(att_p, TB * TNH * TT * TT), SAME(att_a, TB * TNH * TT * TT);
    SAME(att_d, TB * TT * 3 * TC);
    SAME(ln_out, TN * TOC), SAME(ln_dx, TN * TOC), SAME(ln_dw, TOC), SAME(ln_db, TOC);
    SAME(ce_loss, TN), SAME(ce_d, TN * TV), SAME(emb_dte, TV * EC);
    SAME(gelu_out, TP), SAME(gelu_dx, TP), SAME(drop_out, TP), SAME(param, TP), SAME(m, TP), SAME(v, TP);
    ck_assert(one.sum_squares == two.sum_squares);
    ck_assert(one.ce_sum == two.ce_sum);
    free_run(&one);
    free_run(&two);
}
END_TEST

/* ---- backend ---- */

START_TEST(test_cpu_backend_forwards_ops) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_cpu_create(&be, 2), LM_OK);
    ck_assert_str_eq(be->ops->describe(be), "cpu (2 threads)");
    ck_assert_int_eq(be->precision, LM_PRECISION_FP32);
    float *dev = NULL;
    ck_assert_int_eq(be->ops->alloc(be, (void **)&dev, 1000 * sizeof(float), "test buffer"), LM_OK);
    ck_assert_uint_eq((uintptr_t)dev % 64, 0);
    for (int i = 0; i < 1000; i++) ck_assert_float_eq(dev[i], 0.0f);
    float host[1000], back[1000];
    tk_fill(host, 1000, -1, 1, 91);
    ck_assert_int_eq(be->ops->upload(be, dev, host, sizeof host), LM_OK);
    ck_assert_int_eq(be->ops->download(be, back, dev, sizeof back), LM_OK);
    ck_assert_mem_eq(host, back, sizeof host);
    double sum = 0.0, want = 0.0;
    for (int i = 0; i < 1000; i++) want += host[i];
    ck_assert_int_eq(be->ops->sum_to_host(be, dev, 1000, &sum), LM_OK);
    ck_assert_double_eq_tol(sum, want, 1e-9);
    ck_assert_int_eq(be->ops->sum_squares_to_host(be, dev, 1000, &sum), LM_OK);
    ck_assert(sum == lm_cpu_sum_squares(host, 1000));
    /* An op through the table gives what the direct call gives. */
    float via_table[1000], direct[1000];
    be->ops->gelu_forward(be, via_table, dev, 1000, 1);
    lm_cpu_gelu_forward(direct, host, 1000, 1);
    ck_assert_mem_eq(via_table, direct, sizeof direct);
    be->ops->zero(be, dev, 1000 * sizeof(float));
    ck_assert_float_eq(dev[999], 0.0f);
    ck_assert_int_eq(be->ops->sync(be), LM_OK);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    /* Every op slot is filled; the optional graph members, which close the
     * table, are NULL on the CPU (it cannot capture). */
    typedef void (*any_fn)(void);
    ck_assert(!be->ops->graph_begin && !be->ops->graph_end && !be->ops->graph_launch && !be->ops->graph_destroy);
    for (size_t offset = 0; offset + sizeof(any_fn) <= offsetof(lm_backend_ops, graph_begin);
         offset += sizeof(any_fn)) {
        any_fn slot;
        memcpy(&slot, (const char *)be->ops + offset, sizeof slot);
        ck_assert_msg(slot != NULL, "lm_backend_ops slot %zu is NULL", offset / sizeof(any_fn));
    }
    be->ops->free(be, dev);
    lm_backend_release(be);
    ck_assert_int_eq(lm_backend_cpu_create(&be, -1), LM_ERR_INVALID);
    ck_assert_ptr_null(be);
}
END_TEST

START_TEST(test_backend_device_strings) {
    lm_backend *be = NULL;
    ck_assert_int_eq(lm_backend_create(&be, "cpu", LM_PRECISION_FP32, 1), LM_OK);
    ck_assert_str_eq(be->ops->describe(be), "cpu (1 thread)");
    lm_backend_release(be);
    ck_assert_int_eq(lm_backend_create(&be, "tpu", LM_PRECISION_FP32, 1), LM_ERR_INVALID);
    ck_assert_ptr_null(be);
    ck_assert_msg(strstr(lm_error_message(), "'tpu'") != NULL, "message: %s", lm_error_message());
    ck_assert_int_eq(lm_backend_create(&be, "cuda:x", LM_PRECISION_FP32, 1), LM_ERR_INVALID);
    ck_assert_int_eq(lm_backend_create(&be, "cuda:", LM_PRECISION_FP32, 1), LM_ERR_INVALID);
    /* auto always ends with a working backend. */
    ck_assert_int_eq(lm_backend_create(&be, "auto", LM_PRECISION_FP32, 1), LM_OK);
    ck_assert_ptr_nonnull(be);
    lm_backend_release(be);
#ifndef LM_HAVE_CUDA
    ck_assert_int_eq(lm_backend_create(&be, "cuda", LM_PRECISION_FP32, 1), LM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(lm_error_message(), "built without CUDA") != NULL, "message: %s", lm_error_message());
    ck_assert_int_eq(lm_backend_create(&be, "cuda:1", LM_PRECISION_FP32, 1), LM_ERR_UNSUPPORTED);
    ck_assert_int_eq(lm_backend_create(&be, "auto", LM_PRECISION_BF16, 2), LM_OK);
    ck_assert_str_eq(be->ops->describe(be), "cpu (2 threads)");
    lm_backend_release(be);
#endif
}
END_TEST

Suite *kernels_misc_suite(void) {
    Suite *s = suite_create("kernels_properties");
    TCase *tc = tcase_create("properties");
    tcase_add_test(tc, test_vectorised_exp_is_within_one_ulp);
    tcase_add_test(tc, test_exact_gelu_matches_double_reference);
    tcase_add_test(tc, test_dropout_integer_threshold_equals_uniform_comparison);
    tcase_add_test(tc, test_dropout_mask_is_a_function_of_seed_stream_index);
    tcase_add_test(tc, test_attention_matches_double_reference);
    tcase_add_test(tc, test_crossentropy_matches_double_reference);
    tcase_add_test(tc, test_residual_and_sum_squares);
    tcase_add_test(tc, test_nan_inputs_give_nan_outputs);
    tcase_add_test(tc, test_results_identical_on_one_and_two_threads);
    tcase_add_test(tc, test_cpu_backend_forwards_ops);
    tcase_add_test(tc, test_backend_device_strings);
    suite_add_tcase(s, tc);
    return s;
}

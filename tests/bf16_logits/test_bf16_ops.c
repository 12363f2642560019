/* The bf16 classifier's ops (backend_ops.def, "the classifier in bf16")
 * through the backend table, against references that do not share their
 * code:
 *
 *   convert_to_bf16      torch's rounding, bit for bit, from a committed
 *                        fixture (gen_bf16_rounding_fixture.py): ties to
 *                        even, overflow to inf, ±inf, NaN -> 0x7FC0,
 *                        subnormals;
 *   matmul_forward_bf16  Σ in double over the bf16 inputs (+ the fp32 bias),
 *                        then one rounding: the op is within BOUND_FORWARD of
 *                        the exact sum: half a bf16 ulp (its one rounding)
 *                        plus the fp32 accumulation bound γ_K·Σ|terms|,
 *                        γ_K = (K + 2)·2^-24 (any summation order meets
 *                        it, the GPU's too), which is less than one bf16 ulp
 *                        wherever the sum does not cancel;
 *   matmul_backward_bf16 dinp, dweight and dbias (fp32) within γ_K·Σ|terms|
 *                        of the double sums, written and added;
 *   the loss ops         on the CPU, bit for bit the fp32 ops on the widened
 *                        logits with the gradients rounded (the same fp32
 *                        arithmetic: what they promise); on the GPU, the
 *                        CPU twin within TOL_GPU_* (another summation order).
 *
 * The same source builds test_bf16_ops_cuda (label gpu), the ops then on
 * the CUDA backend; it exits 77 without a GPU. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bf16.h"
#include "bf16_rounding_fixture.h"
#include "bf16_op_check.h"
#include "cuda_probe.h"
#include "kernels.h"
#include "lmcore/lmcore.h"
#include "test_main.h"

#ifndef BF16_TEST_DEVICE
#define BF16_TEST_DEVICE "cpu"
#endif
/* The GPU's loss kernels against their CPU twin: losses relative to the
 * largest, dlogits within one bf16 ulp of the twin's (a gradient's fp32
 * value may sit on the other side of a rounding boundary) plus a floor for
 * values near 0. */
#define TOL_GPU_LOSS 1e-5
#define TOL_GPU_DLOGITS_FLOOR 1e-7

/* ---- helpers ---- */


/* ---- convert_to_bf16 ---- */

START_TEST(convert_to_bf16_is_torch_rounding) {
    enum { COUNT = sizeof bf16_rounding_fixture / sizeof *bf16_rounding_fixture };
    float values[COUNT];
    uint16_t got[COUNT];
    for (int i = 0; i < COUNT; i++) memcpy(&values[i], &bf16_rounding_fixture[i].bits, sizeof values[i]);
    lm_backend *be = lm_test_make_backend(BF16_TEST_DEVICE);
    float *d_in = lm_test_dev_copy(be, values, sizeof values);
    uint16_t *d_out = lm_test_dev_copy(be, NULL, sizeof got);
    be->ops->convert_to_bf16(be, d_out, d_in, COUNT);
    lm_test_download(be, got, d_out, sizeof got);
    for (int i = 0; i < COUNT; i++) {
        ck_assert_msg(got[i] == bf16_rounding_fixture[i].torch_bf16, "0x%08x: op 0x%04x, torch 0x%04x",
                      bf16_rounding_fixture[i].bits, got[i], bf16_rounding_fixture[i].torch_bf16);
        ck_assert_msg(lm_bf16_rne(bf16_rounding_fixture[i].bits) == bf16_rounding_fixture[i].torch_bf16,
                      "lm_bf16_rne(0x%08x)", bf16_rounding_fixture[i].bits);
        /* Widening is exact: a bf16 value converts back to itself. */
        ck_assert_uint_eq(lm_bf16_from_float(lm_test_widen(got[i])), got[i]);
    }
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    be->ops->free(be, d_in);
    be->ops->free(be, d_out);
    lm_backend_release(be);
}
END_TEST

/* ---- the GEMMs ---- */

enum { MM_N = 37, MM_IC = 48, MM_OC = 70 };

static void check_forward(lm_weight_layout layout, int with_bias) {
    static uint16_t inp[MM_N * MM_IC], weight[MM_IC * MM_OC], got[MM_N * MM_OC];
    float bias[MM_OC];
    lm_test_lcg_state = 11u + (uint64_t)layout * 2u + (uint64_t)with_bias;
    lm_test_random_bf16(inp, MM_N * MM_IC, 2.0f);
    lm_test_random_bf16(weight, MM_IC * MM_OC, 0.5f);
    for (int o = 0; o < MM_OC; o++) bias[o] = lm_test_uniform(-1.0f, 1.0f); /* fp32: not rounded before the add */
    lm_backend *be = lm_test_make_backend(BF16_TEST_DEVICE);
    uint16_t *d_inp = lm_test_dev_copy(be, inp, sizeof inp), *d_w = lm_test_dev_copy(be, weight, sizeof weight);
    float *d_bias = with_bias ? lm_test_dev_copy(be, bias, sizeof bias) : NULL;
    uint16_t *d_out = lm_test_dev_copy(be, NULL, sizeof got);
    be->ops->matmul_forward_bf16(be, d_out, d_inp, d_w, d_bias, MM_N, MM_IC, MM_OC, layout);
    lm_test_download(be, got, d_out, sizeof got);
    double worst = 0.0; /* in units of the bound */
    for (int n = 0; n < MM_N; n++) {
        for (int o = 0; o < MM_OC; o++) {
            double magnitude;
            const double sum = lm_test_exact_dot(&inp[n * MM_IC], weight, o, MM_IC, MM_OC, layout,
                                                 with_bias ? (double)bias[o] : 0.0, &magnitude);
            const double value = lm_test_widen(got[n * MM_OC + o]);
            const double accumulation = lm_test_gamma_k(MM_IC + 1) * magnitude;
            const double bound = 0.5 * lm_test_bf16_ulp(fmax(fabs(value), fabs(sum) + accumulation)) + accumulation;
            const double err = fabs(value - sum);
            ck_assert_msg(err <= bound, "layout %d bias %d: out[%d,%d] = %.9g, exact %.9g (bound %.3g)", layout,
                          with_bias, n, o, value, sum, bound);
            /* and within one bf16 ulp of the exact value, where nothing cancels */
            if (magnitude < 4.0 * fabs(sum))
                ck_assert_msg(err <= lm_test_bf16_ulp(sum), "out[%d,%d] more than one bf16 ulp off", n, o);
            if (err / bound > worst) worst = err / bound;
        }
    }
#ifndef BF16_TEST_CUDA
    /* The CPU twin is, by construction, the fp32 op on the widened inputs
     * rounded once: bit for bit. */
    static float inp32[MM_N * MM_IC], w32[MM_IC * MM_OC], out32[MM_N * MM_OC];
    lm_cpu_widen_bf16(inp32, inp, MM_N * MM_IC);
    lm_cpu_widen_bf16(w32, weight, MM_IC * MM_OC);
    lm_cpu_matmul_forward(out32, inp32, w32, with_bias ? bias : NULL, MM_N, MM_IC, MM_OC, layout);
    for (int e = 0; e < MM_N * MM_OC; e++) ck_assert_uint_eq(got[e], lm_bf16_from_float(out32[e]));
#endif
    printf("matmul_forward_bf16 layout %d bias %d: worst error %.3f of the bound\n", layout, with_bias, worst);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    be->ops->free(be, d_inp);
    be->ops->free(be, d_w);
    if (d_bias) be->ops->free(be, d_bias);
    be->ops->free(be, d_out);
    lm_backend_release(be);
}

START_TEST(matmul_forward_bf16_rounds_the_exact_sum) {
    for (int layout = 0; layout < 2; layout++)
        for (int bias = 0; bias < 2; bias++) check_forward((lm_weight_layout)layout, bias);
}
END_TEST

static void check_backward(lm_weight_layout layout, lm_grad_store store) {
    static uint16_t dout[MM_N * MM_OC], inp[MM_N * MM_IC], weight[MM_IC * MM_OC];
    static float dinp[MM_N * MM_IC], dweight[MM_IC * MM_OC], dbias[MM_OC];
    static float dinp0[MM_N * MM_IC], dweight0[MM_IC * MM_OC], dbias0[MM_OC];
    lm_test_lcg_state = 101u + (uint64_t)layout * 2u + (uint64_t)store;
    lm_test_random_bf16(dout, MM_N * MM_OC, 0.01f);
    lm_test_random_bf16(inp, MM_N * MM_IC, 2.0f);
    lm_test_random_bf16(weight, MM_IC * MM_OC, 0.5f);
    /* What the outputs held: added to (LM_GRAD_ADD), or never read (WRITE: NaN). */
    for (size_t e = 0; e < MM_N * MM_IC; e++) dinp0[e] = store == LM_GRAD_ADD ? lm_test_uniform(-0.1f, 0.1f) : NAN;
    for (size_t e = 0; e < MM_IC * MM_OC; e++) dweight0[e] = store == LM_GRAD_ADD ? lm_test_uniform(-0.1f, 0.1f) : NAN;
    for (size_t e = 0; e < MM_OC; e++) dbias0[e] = store == LM_GRAD_ADD ? lm_test_uniform(-0.1f, 0.1f) : NAN;
    lm_backend *be = lm_test_make_backend(BF16_TEST_DEVICE);
    uint16_t *d_dout = lm_test_dev_copy(be, dout, sizeof dout), *d_inp = lm_test_dev_copy(be, inp, sizeof inp);
    uint16_t *d_w = lm_test_dev_copy(be, weight, sizeof weight);
    float *d_dinp = lm_test_dev_copy(be, dinp0, sizeof dinp0), *d_dw = lm_test_dev_copy(be, dweight0, sizeof dweight0);
    float *d_db = lm_test_dev_copy(be, dbias0, sizeof dbias0);
    be->ops->matmul_backward_bf16(be, d_dinp, d_dw, d_db, d_dout, d_inp, d_w, MM_N, MM_IC, MM_OC, layout, store, store);
    lm_test_download(be, dinp, d_dinp, sizeof dinp);
    lm_test_download(be, dweight, d_dw, sizeof dweight);
    lm_test_download(be, dbias, d_db, sizeof dbias);
    const int add = store == LM_GRAD_ADD;
    for (int n = 0; n < MM_N; n++) {
        for (int i = 0; i < MM_IC; i++) {
            double sum = add ? (double)dinp0[n * MM_IC + i] : 0.0, magnitude = fabs(sum);
            for (int o = 0; o < MM_OC; o++) {
                const double term = (double)lm_test_widen(dout[n * MM_OC + o]) *
                                    (double)lm_test_weight_at(weight, i, o, MM_IC, MM_OC, layout);
                sum += term;
                magnitude += fabs(term);
            }
            ck_assert_msg(fabs(dinp[n * MM_IC + i] - sum) <= lm_test_gamma_k(MM_OC + 1) * magnitude,
                          "layout %d store %d: dinp[%d,%d] = %.9g, exact %.9g", layout, store, n, i,
                          (double)dinp[n * MM_IC + i], sum);
        }
    }
    for (int i = 0; i < MM_IC; i++) {
        for (int o = 0; o < MM_OC; o++) {
            const size_t at = layout == LM_W_IN_OUT ? (size_t)i * MM_OC + o : (size_t)o * MM_IC + i;
            double sum = add ? (double)dweight0[at] : 0.0, magnitude = fabs(sum);
            for (int n = 0; n < MM_N; n++) {
                const double term =
                    (double)lm_test_widen(inp[n * MM_IC + i]) * (double)lm_test_widen(dout[n * MM_OC + o]);
                sum += term;
                magnitude += fabs(term);
            }
            ck_assert_msg(fabs(dweight[at] - sum) <= lm_test_gamma_k(MM_N + 1) * magnitude,
                          "layout %d store %d: dweight(%d,%d) = %.9g, exact %.9g", layout, store, i, o,
                          (double)dweight[at], sum);
        }
    }
    for (int o = 0; o < MM_OC; o++) {
        double sum = add ? (double)dbias0[o] : 0.0, magnitude = fabs(sum);
        for (int n = 0; n < MM_N; n++) {
            sum += lm_test_widen(dout[n * MM_OC + o]);
            magnitude += fabs(lm_test_widen(dout[n * MM_OC + o]));
        }
        ck_assert_msg(fabs(dbias[o] - sum) <= lm_test_gamma_k(MM_N + 1) * magnitude, "dbias[%d] = %.9g, exact %.9g", o,
                      (double)dbias[o], sum);
    }
    /* dinp and dweight may be NULL: dinp alone leaves the weight gradient untouched. */
    float sentinel = 3.0f;
    ck_assert_int_eq(be->ops->upload(be, d_dw, &sentinel, sizeof sentinel), LM_OK);
    be->ops->matmul_backward_bf16(be, d_dinp, NULL, NULL, d_dout, d_inp, d_w, MM_N, MM_IC, MM_OC, layout,
                                  LM_GRAD_WRITE, LM_GRAD_WRITE);
    float first = 0.0f;
    lm_test_download(be, &first, d_dw, sizeof first);
    ck_assert_float_eq(first, 3.0f);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    be->ops->free(be, d_dout);
    be->ops->free(be, d_inp);
    be->ops->free(be, d_w);
    be->ops->free(be, d_dinp);
    be->ops->free(be, d_dw);
    be->ops->free(be, d_db);
    lm_backend_release(be);
}

START_TEST(matmul_backward_bf16_sums_in_fp32) {
    for (int layout = 0; layout < 2; layout++) {
        check_backward((lm_weight_layout)layout, LM_GRAD_WRITE);
        check_backward((lm_weight_layout)layout, LM_GRAD_ADD);
    }
}
END_TEST

/* ---- the loss ops ---- */

/* logits [n, stride] bf16, labels with ignored rows; the padding columns
 * hold 7 (never read, written 0 in place). */
typedef struct loss_case {
    int n, v, stride;
    uint16_t *logits;
    int32_t *labels;
    int64_t scored;
} loss_case;

static loss_case make_loss_case(int n, int v, int stride, uint64_t seed) {
    loss_case c = {n, v, stride, malloc((size_t)n * stride * sizeof(uint16_t)), malloc((size_t)n * sizeof(int32_t)),
                   0};
    ck_assert_ptr_nonnull(c.logits);
    ck_assert_ptr_nonnull(c.labels);
    lm_test_lcg_state = seed;
    for (int r = 0; r < n; r++) {
        for (int j = 0; j < stride; j++)
            c.logits[(size_t)r * stride + j] = lm_bf16_from_float(j < v ? lm_test_uniform(-4.0f, 4.0f) : 7.0f);
        c.labels[r] = r % 5 == 3 ? LM_IGNORE_INDEX : (int32_t)((r * 7919) % v);
        c.scored += c.labels[r] != LM_IGNORE_INDEX;
    }
    return c;
}

static void free_loss_case(loss_case *c) {
    free(c->logits);
    free(c->labels);
}

/* got (bf16 gradients from the op) against want (the fp32 reference's
 * gradients): on the CPU, want rounded bit for bit; on the GPU within one
 * bf16 ulp.  In place the padding columns must be +0. */
static void assert_dlogits(const uint16_t *got, const float *want, const loss_case *c, int padding_written,
                           const char *what) {
    for (int r = 0; r < c->n; r++) {
        for (int j = 0; j < c->stride; j++) {
            const size_t at = (size_t)r * c->stride + j;
            if (j >= c->v) {
                if (padding_written) ck_assert_msg(got[at] == 0, "%s: row %d padding[%d] = 0x%04x", what, r, j, got[at]);
                continue;
            }
#ifdef BF16_TEST_CUDA
            const double err = fabs((double)lm_test_widen(got[at]) - (double)want[at]);
            ck_assert_msg(err <= lm_test_bf16_ulp(want[at]) + TOL_GPU_DLOGITS_FLOOR, "%s: [%d,%d] = %.9g, twin %.9g",
                          what, r, j, (double)lm_test_widen(got[at]), (double)want[at]);
#else
            ck_assert_msg(got[at] == lm_bf16_from_float(want[at]), "%s: [%d,%d] = 0x%04x, fp32 op rounded 0x%04x",
                          what, r, j, got[at], lm_bf16_from_float(want[at]));
#endif
        }
    }
}

static void assert_losses(const float *got, const float *want, int n, const char *what) {
#ifdef BF16_TEST_CUDA
    double largest = 0.0;
    for (int r = 0; r < n; r++) largest = fmax(largest, fabs(want[r]));
    for (int r = 0; r < n; r++)
        ck_assert_msg(fabs(got[r] - want[r]) <= TOL_GPU_LOSS * largest, "%s: loss[%d] = %.9g, twin %.9g", what, r,
                      (double)got[r], (double)want[r]);
#else
    for (int r = 0; r < n; r++)
        ck_assert_msg(memcmp(&got[r], &want[r], sizeof got[r]) == 0, "%s: loss[%d] = %.9g, fp32 op %.9g", what, r,
                      (double)got[r], (double)want[r]);
#endif
}

static void check_loss_ops(int n, int v, int stride) {
    loss_case c = make_loss_case(n, v, stride, 7u + (uint64_t)v);
    const size_t count = (size_t)n * stride;
    const float loss_scale = 0.75f, dloss = loss_scale / (float)c.scored;
    float *widened = malloc(count * sizeof *widened), *want = malloc(count * sizeof *want);
    float *want_losses = malloc((size_t)n * sizeof *want_losses), *got_losses = malloc((size_t)n * sizeof *got_losses);
    uint16_t *got = malloc(count * sizeof *got), *prior = malloc(count * sizeof *prior);
    ck_assert(widened && want && want_losses && got_losses && got && prior);
    lm_cpu_widen_bf16(widened, c.logits, count);
    lm_backend *be = lm_test_make_backend(BF16_TEST_DEVICE);
    uint16_t *d_logits = lm_test_dev_copy(be, c.logits, count * sizeof(uint16_t));
    uint16_t *d_dlogits = lm_test_dev_copy(be, NULL, count * sizeof(uint16_t));
    float *d_losses = lm_test_dev_copy(be, NULL, (size_t)n * sizeof(float));
    int32_t *d_labels = lm_test_dev_copy(be, c.labels, (size_t)n * sizeof(int32_t));
    int64_t *d_count = lm_test_dev_copy(be, &c.scored, sizeof c.scored);

    /* forward: the fp32 op's losses on the widened logits */
    (void)lm_cpu_crossentropy_forward(want_losses, widened, c.labels, n, v, stride);
    be->ops->crossentropy_forward_bf16(be, d_losses, d_logits, d_labels, n, v, stride);
    lm_test_download(be, got_losses, d_losses, (size_t)n * sizeof(float));
    assert_losses(got_losses, want_losses, n, "forward");

    /* in-place backward */
    memcpy(want, widened, count * sizeof *want);
    lm_cpu_crossentropy_backward(want, want, c.labels, dloss, n, v, stride);
    be->ops->crossentropy_backward_bf16(be, d_logits, d_logits, d_labels, loss_scale, d_count, n, v, stride);
    lm_test_download(be, got, d_logits, count * sizeof *got);
    assert_dlogits(got, want, &c, 1, "in-place backward");

    /* out-of-place backward: added to what dlogits held (widened, added, rounded) */
    lm_test_random_bf16(prior, count, 0.01f);
    lm_cpu_widen_bf16(want, prior, count);
    lm_cpu_crossentropy_backward(want, widened, c.labels, dloss, n, v, stride);
    ck_assert_int_eq(be->ops->upload(be, d_logits, c.logits, count * sizeof(uint16_t)), LM_OK);
    ck_assert_int_eq(be->ops->upload(be, d_dlogits, prior, count * sizeof(uint16_t)), LM_OK);
    be->ops->crossentropy_backward_bf16(be, d_dlogits, d_logits, d_labels, loss_scale, d_count, n, v, stride);
    lm_test_download(be, got, d_dlogits, count * sizeof *got);
    assert_dlogits(got, want, &c, 0, "out-of-place backward");
    for (size_t e = 0; e < count; e++) /* unscored rows and padding columns: untouched */
        if ((int)(e % (size_t)stride) >= v || c.labels[e / (size_t)stride] == LM_IGNORE_INDEX)
            ck_assert_uint_eq(got[e], prior[e]);

    /* the fused classifier */
    memcpy(want, widened, count * sizeof *want);
    lm_cpu_crossentropy_forward_backward(want_losses, want, c.labels, dloss, n, v, stride);
    be->ops->crossentropy_forward_backward_bf16(be, d_losses, d_logits, d_labels, loss_scale, d_count, n, v, stride);
    lm_test_download(be, got, d_logits, count * sizeof *got);
    lm_test_download(be, got_losses, d_losses, (size_t)n * sizeof(float));
    assert_dlogits(got, want, &c, 1, "fused");
    assert_losses(got_losses, want_losses, n, "fused");
    ck_assert_int_eq(be->ops->check(be), LM_OK);

    be->ops->free(be, d_logits);
    be->ops->free(be, d_dlogits);
    be->ops->free(be, d_losses);
    be->ops->free(be, d_labels);
    be->ops->free(be, d_count);
    lm_backend_release(be);
    free(prior);
    free(got);
    free(got_losses);
    free(want_losses);
    free(want);
    free(widened);
    free_loss_case(&c);
}

START_TEST(loss_ops_are_the_fp32_ops_on_widened_logits) {
    check_loss_ops(24, 300, 300); /* unpadded */
    check_loss_ops(24, 300, 384); /* padded: the first V columns scored, the rest written 0 in place */
    /* GPT-2's vocabulary: 24 rows of 50304 are two blocks of the CPU twin (20 rows, 4 MiB of fp32, then 4) */
    check_loss_ops(24, 50257, 50304);
}
END_TEST

static Suite *bf16_ops_suite(void) {
    Suite *s = suite_create("bf16_ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, convert_to_bf16_is_torch_rounding);
    tcase_add_test(tc, matmul_forward_bf16_rounds_the_exact_sum);
    tcase_add_test(tc, matmul_backward_bf16_sums_in_fp32);
    tcase_add_test(tc, loss_ops_are_the_fp32_ops_on_widened_logits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_main_for_device(BF16_TEST_DEVICE, bf16_ops_suite); }

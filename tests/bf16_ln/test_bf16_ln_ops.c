/* The LayerNorms that write their output in bf16 (backend_ops.def, "the
 * LayerNorms' bf16 outputs": layernorm_forward_bf16,
 * residual_layernorm_forward_bf16) through the backend table:
 *
 *   - bit for bit the device's own fp32 op followed by convert_to_bf16 (what
 *     the models run today), out (fp32, when given), mean, rstd and the
 *     residual the fp32 op's bits: with and without the fp32 output, with
 *     mean/rstd NULL, dropout p = 0, 0.1, 1, rows wider than the CPU twin's
 *     stack chunk (4096 channels: its scratch path), several tasks of the
 *     thread pool;
 *   - against a LayerNorm in double (a reference that shares no code):
 *     out_bf16 within half a bf16 ulp of it plus the fp32 op's own error
 *     (FP32_SLACK), the fp32 out within FP32_SLACK;
 *   - dropout without the step state: a failure kept that names the op,
 *     nothing written.
 *
 * The same source builds test_bf16_ln_ops_cuda (label gpu; 77 without a
 * GPU), which also compares the CUDA ops with the CPU twins
 * (kernels/cpu/layernorm_bf16.c): the fp32 values within the fp32
 * LayerNorm's GPU tolerance (tests/gpu/test_cuda_fusions.c's TOL_REDUCE,
 * its rows summed in another order), out_bf16 within that plus one bf16
 * step (a value near a rounding boundary may round the other way). */
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
#include "kernels.h"
#include "lmcore/lmcore.h"
#include "test_main.h"

#ifndef BF16_LN_TEST_DEVICE
#define BF16_LN_TEST_DEVICE "cpu"
#endif
#define EPS 1e-5f
/* The fp32 LayerNorm's error against the exact one, absolute, per value:
 * FP32_SLACK·(|x̂·w| + |b| + 1).  The worst fraction of it used is printed:
 * 0.038 in Release, 0.17 in the sanitizer build (whose row sums add one
 * float at a time). */
#define FP32_SLACK 1e-5
#ifdef BF16_LN_TEST_CUDA
#define TOL_REDUCE 2e-5 /* tests/gpu/test_cuda_fusions.c: the fp32 LayerNorm, GPU against CPU */
#endif

/* ---- buffers ---- */

/* A device buffer of `bytes`, every bit set (a NaN float, 0xFFFF bf16): an
 * element the op does not write shows. */
static void *dev_unset(lm_backend *be, size_t bytes) {
    unsigned char *ones = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(ones);
    memset(ones, 0xff, bytes);
    void *d = lm_test_dev_copy(be, ones, bytes);
    free(ones);
    return d;
}

/* A device buffer's bytes in a new host block. */
static void *host_copy(lm_backend *be, const void *d, size_t bytes) {
    void *h = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(h);
    lm_test_download(be, h, d, bytes);
    return h;
}

static float *random_floats(size_t n, float lo, float hi) {
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++) x[i] = lm_test_uniform(lo, hi);
    return x;
}

/* One case's inputs: the LayerNorm's input (the residual op's branch), a
 * (the residual op's other term), weight and bias, on the host and device. */
typedef struct ln_inputs {
    int N, C;
    float *inp, *a, *weight, *bias;
    float *d_inp, *d_a, *d_w, *d_b;
} ln_inputs;

static ln_inputs inputs_make(lm_backend *be, int N, int C, uint64_t seed) {
    const size_t n = (size_t)N * C;
    ln_inputs in = {N, C, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    lm_test_lcg_state = seed;
    in.inp = random_floats(n, -2.0f, 2.0f);
    for (size_t i = 0; i < n; i++) in.inp[i] += (float)(i / (size_t)C % 5) - 2.0f; /* rows with other means */
    in.a = random_floats(n, -1.0f, 1.0f);
    in.weight = random_floats((size_t)C, 0.5f, 1.5f);
    in.bias = random_floats((size_t)C, -0.5f, 0.5f);
    in.d_inp = lm_test_dev_copy(be, in.inp, n * 4);
    in.d_a = lm_test_dev_copy(be, in.a, n * 4);
    in.d_w = lm_test_dev_copy(be, in.weight, (size_t)C * 4);
    in.d_b = lm_test_dev_copy(be, in.bias, (size_t)C * 4);
    return in;
}

static void inputs_free(lm_backend *be, ln_inputs *in) {
    be->ops->free(be, in->d_inp), be->ops->free(be, in->d_a), be->ops->free(be, in->d_w), be->ops->free(be, in->d_b);
    free(in->inp), free(in->a), free(in->weight), free(in->bias);
}

/* The fp32 op's outputs then convert_to_bf16 of out, on the host. */
typedef struct fp32_reference {
    float *residual, *out, *mean, *rstd;
    uint16_t *rounded;
} fp32_reference;

static void reference_free(fp32_reference *r) {
    free(r->residual), free(r->out), free(r->mean), free(r->rstd), free(r->rounded);
}

/* How a case calls the bf16 op. */
typedef struct variant {
    int with_out, with_stats;
    const char *name;
} variant;
static const variant variants[] = {
    {1, 1, "bf16 + fp32 out"},
    {0, 1, "bf16 only"},
    {0, 0, "bf16 only, mean/rstd NULL"},
    {1, 0, "bf16 + fp32 out, mean/rstd NULL"},
};
#define N_VARIANTS (int)(sizeof variants / sizeof variants[0])

/* One bf16 call's outputs on the host (NULL where the variant passed none). */
typedef struct bf16_outputs {
    float *residual, *out, *mean, *rstd;
    uint16_t *out_bf16;
} bf16_outputs;

static void outputs_free(bf16_outputs *o) {
    free(o->residual), free(o->out), free(o->mean), free(o->rstd), free(o->out_bf16);
}

/* The call's outputs against the fp32 op's, bit for bit. */
static void assert_fp32_op_rounded(const char *op, const variant *v, const bf16_outputs *got,
                                   const fp32_reference *want, int N, int C) {
    const size_t n = (size_t)N * C;
    size_t i = 0;
    while (i < n && got->out_bf16[i] == want->rounded[i]) i++; /* one assertion: Check's each cost a message */
    ck_assert_msg(i == n, "%s N=%d C=%d %s: out_bf16[%zu] = 0x%04x, convert_to_bf16 of the fp32 op's out 0x%04x", op,
                  N, C, v->name, i, i < n ? got->out_bf16[i] : 0, i < n ? want->rounded[i] : 0);
    if (got->out)
        ck_assert_msg(memcmp(got->out, want->out, n * 4) == 0, "%s N=%d C=%d %s: out differs from the fp32 op's", op, N,
                      C, v->name);
    if (got->mean) {
        ck_assert_msg(memcmp(got->mean, want->mean, (size_t)N * 4) == 0, "%s N=%d C=%d %s: mean differs", op, N, C,
                      v->name);
        ck_assert_msg(memcmp(got->rstd, want->rstd, (size_t)N * 4) == 0, "%s N=%d C=%d %s: rstd differs", op, N, C,
                      v->name);
    }
    if (got->residual)
        ck_assert_msg(memcmp(got->residual, want->residual, n * 4) == 0, "%s N=%d C=%d %s: the residual differs", op,
                      N, C, v->name);
}

/* Against the LayerNorm in double of `x` (the op's input, or the residual
 * it computed): out_bf16 within half a bf16 ulp plus the fp32 slack, the
 * fp32 out within the slack; returns the worst fraction of the slack the
 * fp32 out used. */
static double assert_near_exact(const char *op, const float *x, const ln_inputs *in, const uint16_t *out_bf16,
                                const float *out) {
    const int N = in->N, C = in->C;
    double worst = 0.0;
    for (int r = 0; r < N; r++) {
        const float *row = x + (size_t)r * C;
        double sum = 0.0, sq = 0.0;
        for (int c = 0; c < C; c++) sum += row[c];
        const double m = sum / C;
        for (int c = 0; c < C; c++) sq += (row[c] - m) * (row[c] - m);
        const double s = 1.0 / sqrt(sq / C + (double)EPS);
        for (int c = 0; c < C; c++) {
            const double xw = (row[c] - m) * s * in->weight[c];
            const double exact = xw + in->bias[c];
            const double slack = FP32_SLACK * (fabs(xw) + fabs(in->bias[c]) + 1.0);
            const size_t i = (size_t)r * C + c;
            const double v = lm_test_widen(out_bf16[i]);
            const double bound = 0.5 * lm_test_bf16_ulp(fmax(fabs(v), fabs(exact) + slack)) + slack;
            if (!(fabs(v - exact) <= bound))
                ck_abort_msg("%s N=%d C=%d: out_bf16[%d,%d] = %.9g, exact %.9g (bound %.3g)", op, N, C, r, c, v, exact,
                             bound);
            if (out) {
                if (!(fabs(out[i] - exact) <= slack))
                    ck_abort_msg("%s N=%d C=%d: out[%d,%d] = %.9g, exact %.9g (slack %.3g)", op, N, C, r, c,
                                 (double)out[i], exact, slack);
                worst = fmax(worst, fabs(out[i] - exact) / slack);
            }
        }
    }
    return worst;
}

#ifdef BF16_LN_TEST_CUDA
/* The CUDA op's values against the CPU twin's: fp32 values within
 * gt_compare's allowance of TOL_REDUCE (10·tol·(|cpu| + rms)), out_bf16
 * within that plus one bf16 step at the CPU's fp32 value; the worst
 * fraction of the bound used. */
static double against_cpu(const char *what, const float *gpu32, const uint16_t *gpu16, const float *cpu32,
                          const uint16_t *cpu16, size_t n) {
    double sq = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) sq += (double)cpu32[i] * cpu32[i];
    const double rms = n ? sqrt(sq / (double)n) : 0.0;
    for (size_t i = 0; i < n; i++) {
        const double allowance = 10.0 * TOL_REDUCE * (fabs(cpu32[i]) + rms);
        const double got = gpu16 ? lm_test_widen(gpu16[i]) : gpu32[i];
        const double want = gpu16 ? lm_test_widen(cpu16[i]) : cpu32[i];
        const double bound = allowance + (gpu16 ? lm_test_bf16_ulp(cpu32[i]) : 0.0);
        if (!(fabs(got - want) <= bound))
            ck_abort_msg("%s[%zu]: GPU %.9g, CPU twin %.9g (bound %.3g)", what, i, got, want, bound);
        worst = fmax(worst, fabs(got - want) / bound);
    }
    return worst;
}
#endif

/* ---- layernorm_forward_bf16 ---- */

static void check_layernorm(int N, int C) {
    const size_t n = (size_t)N * C;
    lm_backend *be = lm_test_make_backend(BF16_LN_TEST_DEVICE);
    ln_inputs in = inputs_make(be, N, C, 1000u + (uint64_t)N * 7u + (uint64_t)C);
    /* the fp32 op, then convert_to_bf16: what a model runs today */
    float *d_out = dev_unset(be, n * 4), *d_mean = dev_unset(be, (size_t)N * 4), *d_rstd = dev_unset(be, (size_t)N * 4);
    uint16_t *d_rounded = dev_unset(be, n * 2);
    be->ops->layernorm_forward(be, d_out, d_mean, d_rstd, in.d_inp, in.d_w, in.d_b, N, C, EPS);
    be->ops->convert_to_bf16(be, d_rounded, d_out, n);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    fp32_reference want = {NULL, host_copy(be, d_out, n * 4), host_copy(be, d_mean, (size_t)N * 4),
                           host_copy(be, d_rstd, (size_t)N * 4), host_copy(be, d_rounded, n * 2)};
    double worst_exact = 0.0;
    for (int k = 0; k < N_VARIANTS; k++) {
        const variant *v = &variants[k];
        uint16_t *d_b16 = dev_unset(be, n * 2);
        float *d_o = dev_unset(be, n * 4), *d_m = dev_unset(be, (size_t)N * 4), *d_r = dev_unset(be, (size_t)N * 4);
        be->ops->layernorm_forward_bf16(be, d_b16, v->with_out ? d_o : NULL, v->with_stats ? d_m : NULL,
                                        v->with_stats ? d_r : NULL, in.d_inp, in.d_w, in.d_b, N, C, EPS);
        ck_assert_msg(be->ops->check(be) == LM_OK, "%s", lm_error_message());
        bf16_outputs got = {NULL, v->with_out ? host_copy(be, d_o, n * 4) : NULL,
                            v->with_stats ? host_copy(be, d_m, (size_t)N * 4) : NULL,
                            v->with_stats ? host_copy(be, d_r, (size_t)N * 4) : NULL, host_copy(be, d_b16, n * 2)};
        assert_fp32_op_rounded("layernorm_forward_bf16", v, &got, &want, N, C);
        const double exact = assert_near_exact("layernorm_forward_bf16", in.inp, &in, got.out_bf16, got.out);
        worst_exact = fmax(worst_exact, exact);
        outputs_free(&got);
        be->ops->free(be, d_b16), be->ops->free(be, d_o), be->ops->free(be, d_m), be->ops->free(be, d_r);
    }
    printf("layernorm_forward_bf16 N=%d C=%d: the fp32 op + convert_to_bf16's bits in %d variants; fp32 out within "
           "%.3f of the exact LayerNorm's slack",
           N, C, N_VARIANTS, worst_exact);
#ifdef BF16_LN_TEST_CUDA
    {
        uint16_t *cpu16 = malloc(n * 2);
        float *cpu32 = malloc(n * 4), *cpu_mean = malloc((size_t)N * 4), *cpu_rstd = malloc((size_t)N * 4);
        ck_assert(cpu16 && cpu32 && cpu_mean && cpu_rstd);
        ck_assert_int_eq(lm_cpu_layernorm_forward_bf16(cpu16, cpu32, cpu_mean, cpu_rstd, in.inp, in.weight, in.bias,
                                                       N, C, EPS),
                         0);
        const double w16 = against_cpu("out_bf16", NULL, want.rounded, cpu32, cpu16, n);
        const double w32 = against_cpu("out", want.out, NULL, cpu32, NULL, n);
        const double wm = fmax(against_cpu("mean", want.mean, NULL, cpu_mean, NULL, (size_t)N),
                               against_cpu("rstd", want.rstd, NULL, cpu_rstd, NULL, (size_t)N));
        printf("; against the CPU twin: out_bf16 %.3f, out %.3f, mean/rstd %.3f of the bounds", w16, w32, wm);
        free(cpu16), free(cpu32), free(cpu_mean), free(cpu_rstd);
    }
#endif
    printf("\n");
    reference_free(&want);
    be->ops->free(be, d_out), be->ops->free(be, d_mean), be->ops->free(be, d_rstd), be->ops->free(be, d_rounded);
    inputs_free(be, &in);
    lm_backend_release(be);
}

START_TEST(layernorm_forward_bf16_is_the_fp32_op_rounded) {
    check_layernorm(1, 1);
    check_layernorm(7, 45);   /* C not a multiple of 32, 8 or 4 */
    check_layernorm(37, 768); /* GPT-2's width */
    check_layernorm(300, 96); /* several tasks of the CPU's pool, rows not a multiple of its chunks */
    check_layernorm(3, 4100); /* wider than the CPU twin's stack chunk: its scratch without out */
}
END_TEST

/* ---- residual_layernorm_forward_bf16 ---- */

static void check_residual_layernorm(int N, int C, float p) {
    const size_t n = (size_t)N * C;
    const int site = 3;
    lm_backend *be = lm_test_make_backend(BF16_LN_TEST_DEVICE);
    ln_inputs in = inputs_make(be, N, C, 2000u + (uint64_t)N * 7u + (uint64_t)C);
    lm_step_state key_host;
    memset(&key_host, 0, sizeof key_host);
    key_host.seed = 4242;
    key_host.micro_batch = 5;
    lm_step_state *key = lm_test_dev_copy(be, &key_host, sizeof key_host);
    float *d_res = dev_unset(be, n * 4), *d_out = dev_unset(be, n * 4);
    float *d_mean = dev_unset(be, (size_t)N * 4), *d_rstd = dev_unset(be, (size_t)N * 4);
    uint16_t *d_rounded = dev_unset(be, n * 2);
    be->ops->residual_layernorm_forward(be, d_res, d_out, d_mean, d_rstd, in.d_a, in.d_inp, in.d_w, in.d_b, N, C, EPS,
                                        p, key, site);
    be->ops->convert_to_bf16(be, d_rounded, d_out, n);
    ck_assert_int_eq(be->ops->check(be), LM_OK);
    fp32_reference want = {host_copy(be, d_res, n * 4), host_copy(be, d_out, n * 4),
                           host_copy(be, d_mean, (size_t)N * 4), host_copy(be, d_rstd, (size_t)N * 4),
                           host_copy(be, d_rounded, n * 2)};
    double worst_exact = 0.0;
    for (int k = 0; k < N_VARIANTS; k++) {
        const variant *v = &variants[k];
        uint16_t *d_b16 = dev_unset(be, n * 2);
        float *d_r = dev_unset(be, n * 4), *d_o = dev_unset(be, n * 4);
        float *d_m = dev_unset(be, (size_t)N * 4), *d_s = dev_unset(be, (size_t)N * 4);
        be->ops->residual_layernorm_forward_bf16(be, d_r, d_b16, v->with_out ? d_o : NULL, v->with_stats ? d_m : NULL,
                                                 v->with_stats ? d_s : NULL, in.d_a, in.d_inp, in.d_w, in.d_b, N, C,
                                                 EPS, p, key, site);
        ck_assert_msg(be->ops->check(be) == LM_OK, "%s", lm_error_message());
        bf16_outputs got = {host_copy(be, d_r, n * 4), v->with_out ? host_copy(be, d_o, n * 4) : NULL,
                            v->with_stats ? host_copy(be, d_m, (size_t)N * 4) : NULL,
                            v->with_stats ? host_copy(be, d_s, (size_t)N * 4) : NULL, host_copy(be, d_b16, n * 2)};
        assert_fp32_op_rounded("residual_layernorm_forward_bf16", v, &got, &want, N, C);
        const double exact =
            assert_near_exact("residual_layernorm_forward_bf16", got.residual, &in, got.out_bf16, got.out);
        worst_exact = fmax(worst_exact, exact);
        outputs_free(&got);
        be->ops->free(be, d_b16), be->ops->free(be, d_r), be->ops->free(be, d_o);
        be->ops->free(be, d_m), be->ops->free(be, d_s);
    }
    printf("residual_layernorm_forward_bf16 N=%d C=%d p=%g: the fp32 op + convert_to_bf16's bits in %d variants; fp32 "
           "out within %.3f of the exact LayerNorm's slack",
           N, C, (double)p, N_VARIANTS, worst_exact);
#ifdef BF16_LN_TEST_CUDA
    {
        uint16_t *cpu16 = malloc(n * 2);
        float *cpu_res = malloc(n * 4), *cpu32 = malloc(n * 4);
        ck_assert(cpu16 && cpu_res && cpu32);
        ck_assert_int_eq(lm_cpu_residual_layernorm_forward_bf16(cpu_res, cpu16, cpu32, NULL, NULL, in.a, in.inp,
                                                                in.weight, in.bias, N, C, EPS, p, key_host.seed,
                                                                lm_dropout_stream(key_host.micro_batch, site)),
                         0);
        /* the residual: one product and one add per element, the same masks */
        ck_assert_msg(memcmp(want.residual, cpu_res, n * 4) == 0, "the residual differs from the CPU twin's");
        const double w16 = against_cpu("out_bf16", NULL, want.rounded, cpu32, cpu16, n);
        const double w32 = against_cpu("out", want.out, NULL, cpu32, NULL, n);
        printf("; against the CPU twin: residual bit for bit, out_bf16 %.3f, out %.3f of the bounds", w16, w32);
        free(cpu16), free(cpu_res), free(cpu32);
    }
#endif
    printf("\n");
    reference_free(&want);
    be->ops->free(be, d_res), be->ops->free(be, d_out), be->ops->free(be, d_mean), be->ops->free(be, d_rstd);
    be->ops->free(be, d_rounded), be->ops->free(be, key);
    inputs_free(be, &in);
    lm_backend_release(be);
}

START_TEST(residual_layernorm_forward_bf16_is_the_fp32_op_rounded) {
    check_residual_layernorm(5, 96, 0.0f);
    check_residual_layernorm(37, 768, 0.1f);
    check_residual_layernorm(300, 96, 0.1f);
    check_residual_layernorm(13, 45, 1.0f);
    check_residual_layernorm(3, 4100, 0.1f);
}
END_TEST

/* Dropout without the step state: a failure kept that names the op, and
 * nothing written (as residual_layernorm_forward); p = 0 needs no key. */
START_TEST(residual_layernorm_forward_bf16_needs_the_key) {
    const int N = 4, C = 40;
    const size_t n = (size_t)N * C;
    lm_backend *be = lm_test_make_backend(BF16_LN_TEST_DEVICE);
    ln_inputs in = inputs_make(be, N, C, 77u);
    float *d_res = dev_unset(be, n * 4);
    uint16_t *d_b16 = dev_unset(be, n * 2);
    be->ops->residual_layernorm_forward_bf16(be, d_res, d_b16, NULL, NULL, NULL, in.d_a, in.d_inp, in.d_w, in.d_b, N,
                                             C, EPS, 0.3f, NULL, 0);
    ck_assert_int_eq(be->ops->sync(be), LM_ERR_DEVICE);
    printf("kept: %s\n", lm_error_message());
    ck_assert_msg(strstr(lm_error_message(), "residual_layernorm_forward_bf16") != NULL, "%s", lm_error_message());
    uint16_t *b16 = host_copy(be, d_b16, n * 2);
    uint32_t *res = host_copy(be, d_res, n * 4);
    size_t written = 0;
    for (size_t i = 0; i < n; i++) written += b16[i] != 0xffffu || res[i] != 0xffffffffu;
    ck_assert_msg(written == 0, "%zu elements written by a failed call", written);
    be->ops->residual_layernorm_forward_bf16(be, d_res, d_b16, NULL, NULL, NULL, in.d_a, in.d_inp, in.d_w, in.d_b, N,
                                             C, EPS, 0.0f, NULL, 0);
    ck_assert_int_eq(be->ops->sync(be), LM_OK);
    free(b16), free(res);
    be->ops->free(be, d_res), be->ops->free(be, d_b16);
    inputs_free(be, &in);
    lm_backend_release(be);
}
END_TEST

static Suite *bf16_ln_suite(void) {
    Suite *s = suite_create("bf16_ln_ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, layernorm_forward_bf16_is_the_fp32_op_rounded);
    tcase_add_test(tc, residual_layernorm_forward_bf16_is_the_fp32_op_rounded);
    tcase_add_test(tc, residual_layernorm_forward_bf16_needs_the_key);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lm_test_main_for_device(BF16_LN_TEST_DEVICE, bf16_ln_suite); }

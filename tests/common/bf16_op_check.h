/* Checking a bf16 op against an exact reference, for the op suites that do
 * (tests/bf16_logits/test_bf16_ops.c, tests/bf16_ffn/test_bf16_ffn_ops.c):
 * a backend and its buffers, deterministic bf16 inputs, one bf16 ulp, the
 * fp32 sum's error bound and the double-sum reference of one output of a
 * GEMM.  Header-only, like the rest of tests/common. */
#ifndef LMCORE_TESTS_BF16_OP_CHECK_H
#define LMCORE_TESTS_BF16_OP_CHECK_H

#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "bf16.h"
#include "lmcore/lmcore.h"

/* A backend on `device` ("cpu" or "cuda"), precision fp32. */
static inline lm_backend *lm_test_make_backend(const char *device) {
    lm_backend *be = NULL;
    ck_assert_msg(lm_backend_create(&be, device, LM_PRECISION_FP32, 0) == LM_OK, "%s", lm_error_message());
    return be;
}

/* A device buffer of `bytes`, holding `host`'s bytes unless host is NULL. */
static inline void *lm_test_dev_copy(lm_backend *be, const void *host, size_t bytes) {
    void *d = NULL;
    ck_assert_int_eq(be->ops->alloc(be, &d, bytes, "test buffer"), LM_OK);
    if (host) ck_assert_int_eq(be->ops->upload(be, d, host, bytes), LM_OK);
    return d;
}

static inline void lm_test_download(lm_backend *be, void *host, const void *d, size_t bytes) {
    ck_assert_int_eq(be->ops->download(be, host, d, bytes), LM_OK);
}

/* The inputs' generator: a 64-bit LCG, so that every platform draws the
 * same numbers.  Each test sets the state (its own per source file: static)
 * before drawing. */
static uint64_t lm_test_lcg_state;
static inline float lm_test_uniform(float lo, float hi) {
    lm_test_lcg_state = lm_test_lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((double)(lm_test_lcg_state >> 40) / (double)(1ull << 24));
}

/* n bf16 values drawn uniformly from [-scale, scale] and rounded. */
static inline void lm_test_random_bf16(uint16_t *out, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) out[i] = lm_bf16_from_float(lm_test_uniform(-scale, scale));
}

static inline float lm_test_widen(uint16_t h) { return lm_bf16_to_float(h); }

/* One bf16 ulp at |x|: 2^(e - 7) for x in [2^e, 2^(e+1)). */
static inline double lm_test_bf16_ulp(double x) {
    x = fabs(x);
    if (x < 1e-30) return ldexp(1.0, -133);
    return ldexp(1.0, ilogb(x) - 7);
}

/* The error bound of an fp32 sum of k terms, relative to the sum of their
 * magnitudes: (k + 2) u with u = 2^-24 (one more rounding for good measure). */
static inline double lm_test_gamma_k(int k) { return (double)(k + 2) * ldexp(1.0, -24); }

/* W element (i, o) of the math y = x·W (IC x OC) in either layout, widened. */
static inline float lm_test_weight_at(const uint16_t *w, int i, int o, int IC, int OC, lm_weight_layout layout) {
    return lm_test_widen(layout == LM_W_IN_OUT ? w[(size_t)i * OC + o] : w[(size_t)o * IC + i]);
}

/* Output o of one row of y = x·W + start, summed in double over the row
 * `inp` (IC bf16 values) in order; *magnitude gets |start| plus every
 * term's magnitude, for lm_test_gamma_k's bound. */
static inline double lm_test_exact_dot(const uint16_t *inp, const uint16_t *weight, int o, int IC, int OC,
                                       lm_weight_layout layout, double start, double *magnitude) {
    double sum = start, total = fabs(start);
    for (int i = 0; i < IC; i++) {
        const double term = (double)lm_test_widen(inp[i]) * (double)lm_test_weight_at(weight, i, o, IC, OC, layout);
        sum += term;
        total += fabs(term);
    }
    *magnitude = total;
    return sum;
}

#endif

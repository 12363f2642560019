/* Helpers of the CUDA-vs-CPU kernel suite (see gpu_test_util.h). */
#include "gpu_test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/status.h"

lm_backend *gt_be = NULL;
lm_backend *gt_be_tf32 = NULL;
lm_backend *gt_be_bf16 = NULL;

static uint64_t seed_state = 0;
static int seed_ready = 0;

uint64_t gt_next_seed(void) {
    if (!seed_ready) {
        const char *env = getenv("LMCORE_TEST_SEED");
        seed_state = env && *env ? strtoull(env, NULL, 0) : 20240611ull;
        seed_ready = 1;
        printf("gpu kernels: LMCORE_TEST_SEED=%llu\n", (unsigned long long)seed_state);
    }
    seed_state += 0x9E3779B97F4A7C15ull;
    return seed_state;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float *gt_host(size_t n) {
    float *x = calloc(n > 0 ? n : 1, sizeof *x);
    ck_assert_msg(x != NULL, "out of host memory (%zu floats)", n);
    return x;
}

int32_t *gt_host_ints(size_t n) {
    int32_t *x = calloc(n > 0 ? n : 1, sizeof *x);
    ck_assert_msg(x != NULL, "out of host memory (%zu ints)", n);
    return x;
}

float *gt_host_copy(const float *src, size_t n) {
    float *x = gt_host(n);
    memcpy(x, src, n * sizeof *x);
    return x;
}

void gt_fill_random(float *x, size_t n, float lo, float hi) {
    uint64_t state = gt_next_seed();
    for (size_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(&state) >> 11) * (1.0 / 9007199254740992.0);
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

float *gt_random(size_t n, float lo, float hi) {
    float *x = gt_host(n);
    gt_fill_random(x, n, lo, hi);
    return x;
}

void gt_fill_nan(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

int32_t *gt_random_ints(size_t n, int lo, int hi_exclusive) {
    int32_t *x = gt_host_ints(n);
    uint64_t state = gt_next_seed();
    for (size_t i = 0; i < n; i++) x[i] = lo + (int32_t)(splitmix64(&state) % (uint64_t)(hi_exclusive - lo));
    return x;
}

static void *dev_alloc(lm_backend *be, size_t bytes) {
    void *p = NULL;
    lm_status status = be->ops->alloc(be, &p, bytes, "test buffer");
    ck_assert_msg(status == LM_OK, "device alloc of %zu bytes failed: %s", bytes, lm_error_message());
    return p;
}

float *gt_dev_upload(lm_backend *be, const float *host, size_t n) {
    float *d = dev_alloc(be, n * sizeof *d);
    lm_status status = be->ops->upload(be, d, host, n * sizeof *d);
    ck_assert_msg(status == LM_OK, "upload failed: %s", lm_error_message());
    return d;
}

int32_t *gt_dev_upload_ints(lm_backend *be, const int32_t *host, size_t n) {
    int32_t *d = dev_alloc(be, n * sizeof *d);
    lm_status status = be->ops->upload(be, d, host, n * sizeof *d);
    ck_assert_msg(status == LM_OK, "upload failed: %s", lm_error_message());
    return d;
}

int64_t *gt_dev_count(lm_backend *be, int64_t count) {
    int64_t *d = dev_alloc(be, sizeof *d);
    lm_status status = be->ops->upload(be, d, &count, sizeof count);
    ck_assert_msg(status == LM_OK, "upload failed: %s", lm_error_message());
    return d;
}

void gt_dev_poison(lm_backend *be, float *dev, size_t n) {
    float *h = gt_host(n);
    gt_fill_nan(h, n);
    lm_status status = be->ops->upload(be, dev, h, n * sizeof *h);
    free(h);
    ck_assert_msg(status == LM_OK, "poisoning a device buffer failed: %s", lm_error_message());
}

float *gt_dev_nan(lm_backend *be, size_t n) {
    float *d = dev_alloc(be, n * sizeof *d);
    gt_dev_poison(be, d, n);
    return d;
}

void gt_dev_download(lm_backend *be, float *host, const float *dev, size_t n) {
    lm_status status = be->ops->download(be, host, dev, n * sizeof *host);
    ck_assert_msg(status == LM_OK, "download failed: %s", lm_error_message());
}

void gt_dev_free(lm_backend *be, void *dev) {
    be->ops->free(be, dev);
}

void gt_sync(lm_backend *be, const char *after_what) {
    lm_status status = be->ops->sync(be);
    ck_assert_msg(status == LM_OK, "after %s: %s", after_what, lm_error_message());
}

lm_step_state *gt_dev_step_state(lm_backend *be, const lm_step_state *host) {
    lm_step_state *d = dev_alloc(be, sizeof *d);
    lm_status status = be->ops->upload(be, d, host, sizeof *host);
    ck_assert_msg(status == LM_OK, "upload of a step state failed: %s", lm_error_message());
    return d;
}

void gt_dev_step_state_download(lm_backend *be, lm_step_state *host, const lm_step_state *dev) {
    lm_status status = be->ops->download(be, host, dev, sizeof *host);
    ck_assert_msg(status == LM_OK, "download of a step state failed: %s", lm_error_message());
}

lm_step_state *gt_dev_key(lm_backend *be, uint64_t seed, uint64_t micro_batch) {
    lm_step_state key;
    memset(&key, 0, sizeof key);
    key.seed = seed;
    key.micro_batch = micro_batch;
    return gt_dev_step_state(be, &key);
}

void gt_compare(const char *what, const float *got, const float *want, size_t n, double tol) {
    double diff_sq = 0.0, want_sq = 0.0, max_abs = 0.0, max_rel = 0.0;
    size_t bad_nan = 0, first_nan = 0;
    for (size_t i = 0; i < n; i++) {
        double w = want[i], g = got[i];
        if (!isfinite(w) || !isfinite(g)) { /* must be the same NaN/Inf on both sides */
            if (!((isnan(w) && isnan(g)) || g == w)) {
                if (bad_nan++ == 0) first_nan = i;
            }
            continue;
        }
        double d = fabs(g - w);
        diff_sq += d * d;
        want_sq += w * w;
        if (d > max_abs) max_abs = d;
        double rel = d / (fabs(w) > 1e-30 ? fabs(w) : 1e-30);
        if (d > 0 && rel > max_rel) max_rel = rel;
    }
    double rms = n > 0 ? sqrt(want_sq / (double)n) : 0.0;
    double norm_rel = want_sq > 0 ? sqrt(diff_sq / want_sq) : sqrt(diff_sq);
    /* the element that exceeds its allowance the most */
    size_t worst = 0;
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(want[i]) || !isfinite(got[i])) continue;
        double d = fabs((double)got[i] - (double)want[i]);
        double excess = d - 10.0 * tol * (fabs((double)want[i]) + rms);
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    int ok = bad_nan == 0 && norm_rel <= tol && (n == 0 || worst_excess <= 0.0);
    printf("  %-44s n=%-9zu max_abs=%.3e max_rel=%.3e norm_rel=%.3e (tol %.1e) %s\n", what, n, max_abs, max_rel,
           norm_rel, tol, ok ? "ok" : "FAIL");
    fflush(stdout);
    ck_assert_msg(bad_nan == 0, "%s: %zu elements NaN/Inf on one side only, first at %zu (gpu %.9g, cpu %.9g)", what,
                  bad_nan, first_nan, (double)got[first_nan], (double)want[first_nan]);
    ck_assert_msg(norm_rel <= tol, "%s: norm-relative error %.3e > %.1e", what, norm_rel, tol);
    ck_assert_msg(n == 0 || worst_excess <= 0.0, "%s: element %zu is %.9g on the GPU, %.9g on the CPU", what, worst,
                  (double)got[worst], (double)want[worst]);
}

void gt_compare_exact(const char *what, const float *got, const float *want, size_t n) {
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], sizeof got[i]) != 0 && !(isnan(got[i]) && isnan(want[i]))) {
            if (mismatches++ == 0) first = i;
        }
    }
    printf("  %-44s n=%-9zu bitwise mismatches=%zu %s\n", what, n, mismatches, mismatches ? "FAIL" : "ok");
    fflush(stdout);
    ck_assert_msg(mismatches == 0, "%s: %zu elements differ, first %zu (gpu %.9g, cpu %.9g)", what, mismatches, first,
                  (double)got[first], (double)want[first]);
}

void gt_compare_zero_pattern(const char *what, const float *got, const float *want, const float *reference,
                             size_t n) {
    size_t mismatches = 0, first = 0, dropped = 0, considered = 0;
    for (size_t i = 0; i < n; i++) {
        if (reference[i] == 0.0f) continue;
        considered++;
        dropped += want[i] == 0.0f;
        if ((got[i] == 0.0f) != (want[i] == 0.0f)) {
            if (mismatches++ == 0) first = i;
        }
    }
    printf("  %-44s considered=%zu dropped=%zu (%.3f) mask mismatches=%zu %s\n", what, considered, dropped,
           considered ? (double)dropped / (double)considered : 0.0, mismatches, mismatches ? "FAIL" : "ok");
    fflush(stdout);
    ck_assert_msg(mismatches == 0, "%s: dropout masks differ at %zu elements, first %zu (gpu %.9g, cpu %.9g)", what,
                  mismatches, first, (double)got[first], (double)want[first]);
}

void gt_assert_bitwise(const char *what, const float *a, const float *b, size_t n) {
    size_t mismatches = 0;
    for (size_t i = 0; i < n; i++) mismatches += memcmp(&a[i], &b[i], sizeof a[i]) != 0;
    printf("  %-44s n=%-9zu run-to-run mismatches=%zu %s\n", what, n, mismatches, mismatches ? "FAIL" : "ok");
    fflush(stdout);
    ck_assert_msg(mismatches == 0, "%s: two runs on the same inputs differ at %zu elements (not deterministic)",
                  what, mismatches);
}

void gt_compare_ulp(const char *what, const float *got, const float *want, size_t n, int64_t max_ulp) {
    int64_t worst = 0;
    size_t worst_index = 0, nans = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(want[i])) {
            nans++;
            continue;
        }
        int32_t a, b;
        memcpy(&a, &got[i], sizeof a);
        memcpy(&b, &want[i], sizeof b);
        /* a monotonic integer line on which -0 and +0 are neighbours */
        int64_t la = a < 0 ? (int64_t)INT32_MIN - a : a, lb = b < 0 ? (int64_t)INT32_MIN - b : b;
        int64_t d = la > lb ? la - lb : lb - la;
        if (d > worst) {
            worst = d;
            worst_index = i;
        }
    }
    int ok = nans == 0 && worst <= max_ulp;
    printf("  %-44s n=%-9zu max_ulp=%lld (allowed %lld) nan=%zu %s\n", what, n, (long long)worst, (long long)max_ulp,
           nans, ok ? "ok" : "FAIL");
    fflush(stdout);
    ck_assert_msg(nans == 0, "%s: %zu NaN elements", what, nans);
    ck_assert_msg(worst <= max_ulp, "%s: element %zu is %.9g on the GPU, %.9g on the CPU (%lld ulp)", what, worst_index,
                  (double)got[worst_index], (double)want[worst_index], (long long)worst);
}

void gt_compare_accumulated(const char *what, const float *got, const float *want, const float *init, size_t n,
                            double tol) {
    double diff_sq = 0.0, delta_sq = 0.0, floor_sq = 0.0, max_abs = 0.0;
    size_t bad = 0, first_bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) {
            if (!(isnan(got[i]) && isnan(want[i])) && got[i] != want[i] && bad++ == 0) first_bad = i;
            continue;
        }
        double dg = (double)got[i] - (double)init[i], dw = (double)want[i] - (double)init[i];
        double d = fabs(dg - dw), rounding = 2.0 * (nextafterf(fabsf(want[i]), INFINITY) - fabsf(want[i]));
        diff_sq += d * d;
        delta_sq += dw * dw;
        floor_sq += rounding * rounding;
        if (d > max_abs) max_abs = d;
    }
    double rms = n > 0 ? sqrt(delta_sq / (double)n) : 0.0;
    double norm_rel = delta_sq > 0 ? sqrt(diff_sq / delta_sq) : sqrt(diff_sq);
    double allowed = tol + (delta_sq > 0 ? sqrt(floor_sq / delta_sq) : sqrt(floor_sq));
    size_t worst = 0;
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) continue;
        double dg = (double)got[i] - (double)init[i], dw = (double)want[i] - (double)init[i];
        double rounding = 2.0 * (nextafterf(fabsf(want[i]), INFINITY) - fabsf(want[i]));
        double excess = fabs(dg - dw) - (10.0 * tol * (fabs(dw) + rms) + rounding);
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    int ok = bad == 0 && norm_rel <= allowed && (n == 0 || worst_excess <= 0.0);
    printf("  %-44s n=%-9zu max_abs=%.3e rms_delta=%.3e norm_rel=%.3e (allowed %.1e) %s\n", what, n, max_abs, rms,
           norm_rel, allowed, ok ? "ok" : "FAIL");
    fflush(stdout);
    ck_assert_msg(bad == 0, "%s: %zu elements NaN/Inf on one side only, first at %zu (gpu %.9g, cpu %.9g)", what, bad,
                  first_bad, (double)got[first_bad], (double)want[first_bad]);
    ck_assert_msg(norm_rel <= allowed, "%s: norm-relative error of the increments %.3e > %.2e", what, norm_rel, allowed);
    ck_assert_msg(n == 0 || worst_excess <= 0.0, "%s: element %zu is %.9g on the GPU, %.9g on the CPU (start %.9g)",
                  what, worst, (double)got[worst], (double)want[worst], (double)init[worst]);
}

int gt_main(const char *what, gt_backends backends, Suite *first, ...) {
    const char *require = getenv("LMCORE_REQUIRE_GPU");
    const int required = require && strcmp(require, "1") == 0;
    if (lm_backend_cuda_create(&gt_be, 0, LM_PRECISION_FP32) != LM_OK) {
        if (required) {
            printf("FAILED: LMCORE_REQUIRE_GPU=1 but the CUDA backend could not start: %s\n", lm_error_message());
            return EXIT_FAILURE;
        }
        printf("SKIPPED: %s\n", lm_error_message());
        return 77; /* CTest SKIP_RETURN_CODE */
    }
    if (backends == GT_ALL_PRECISIONS && (lm_backend_cuda_create(&gt_be_tf32, 0, LM_PRECISION_TF32) != LM_OK ||
                                          lm_backend_cuda_create(&gt_be_bf16, 0, LM_PRECISION_BF16) != LM_OK)) {
        printf("FAILED: a TF32/BF16 backend could not be created: %s\n", lm_error_message());
        if (gt_be_tf32) gt_be_tf32->ops->destroy(gt_be_tf32);
        gt_be->ops->destroy(gt_be);
        return EXIT_FAILURE;
    }
    printf("testing %s %s\n", gt_be->ops->describe(gt_be), what);
    SRunner *runner = srunner_create(first);
    va_list more;
    va_start(more, first);
    for (Suite *s = va_arg(more, Suite *); s != NULL; s = va_arg(more, Suite *)) srunner_add_suite(runner, s);
    va_end(more);
    srunner_set_fork_status(runner, CK_NOFORK);
    srunner_run_all(runner, CK_NORMAL);
    const int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    if (gt_be_bf16) gt_be_bf16->ops->destroy(gt_be_bf16);
    if (gt_be_tf32) gt_be_tf32->ops->destroy(gt_be_tf32);
    gt_be->ops->destroy(gt_be);
    gt_be = gt_be_tf32 = gt_be_bf16 = NULL;
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

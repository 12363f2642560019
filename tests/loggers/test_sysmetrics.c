/* System metrics: RSS follows memory the process touches (checked against
 * /proc/self/status), CPU use follows work, and GPU metrics come through a
 * dlopen'ed NVML -- here a fake one with known answers -- or are absent. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sysmetrics.h"
#include "test_main.h"

static double find(const lm_scalar *s, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0) return s[i].value;
    ck_abort_msg("no scalar '%s' in the sample", name);
    return 0;
}

static int present(const lm_scalar *s, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0) return 1;
    return 0;
}

static size_t sample(lm_sysmetrics *m, lm_scalar *out) {
    size_t n = 99;
    lm_status s = lm_sysmetrics_sample(m, out, LM_SYSMETRICS_MAX, &n);
    ck_assert_msg(s == LM_OK, "sample failed: %s", lm_error_message());
    ck_assert_uint_le(n, LM_SYSMETRICS_MAX);
    return n;
}

/* VmRSS of /proc/self/status, in MiB: another view of the same number. */
static double status_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    double kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lf kB", &kb) == 1) break;
    fclose(f);
    ck_assert(kb > 0);
    return kb / 1024.0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

START_TEST(rss_grows_with_touched_memory) {
    lm_sysmetrics *m;
    ck_assert_int_eq(lm_sysmetrics_create(&m, "libnvidia-ml-absent.so", 0), LM_OK);
    lm_scalar s[LM_SYSMETRICS_MAX];
    size_t n = sample(m, s);
    double before = find(s, n, LM_SYSMETRIC_RSS_MB);
    ck_assert_double_eq_tol(before, status_rss_mb(), 2.0);
    size_t bytes = (size_t)200 << 20;
    char *block = malloc(bytes);
    ck_assert_ptr_nonnull(block);
    volatile char *touch = block;                                /* volatile: the compiler may not skip the writes */
    for (size_t i = 0; i < bytes; i += 4096) touch[i] = (char)i; /* every page becomes resident */
    n = sample(m, s);
    double after = find(s, n, LM_SYSMETRIC_RSS_MB);
    ck_assert_msg(after - before >= 195 && after - before < 260, "RSS went from %.1f to %.1f MiB", before, after);
    ck_assert_double_eq_tol(after, status_rss_mb(), 2.0);
    free(block);
    lm_sysmetrics_destroy(m);
}
END_TEST

static double process_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The sampler's figure equals CPU time over wall time as the kernel's
 * per-process CPU clock measures them: a check that holds however loaded
 * the machine is (a fixed "busy = ~100 %" would not on a shared CI box). */
START_TEST(cpu_percent_follows_work) {
    lm_sysmetrics *m;
    ck_assert_int_eq(lm_sysmetrics_create(&m, "libnvidia-ml-absent.so", 0), LM_OK);
    lm_scalar s[LM_SYSMETRICS_MAX];
    sample(m, s);
    double wall0 = now(), cpu0 = process_cpu_seconds();
    volatile double x = 0;
    while (now() - wall0 < 0.4) x += 1.0; /* busy */
    double wall1 = now(), cpu1 = process_cpu_seconds();
    size_t n = sample(m, s);
    double busy = find(s, n, LM_SYSMETRIC_CPU_PERCENT), expected = 100.0 * (cpu1 - cpu0) / (wall1 - wall0);
    ck_assert_msg(fabs(busy - expected) < 3 + 0.05 * expected,
                  "busy loop measured at %.1f %%, the CPU clock says %.1f %%", busy, expected);
    ck_assert_msg(busy > 1, "a busy loop cannot use no CPU (%.1f %%)", busy);
    usleep(300 * 1000); /* idle: no CPU time whatever the load */
    n = sample(m, s);
    double idle = find(s, n, LM_SYSMETRIC_CPU_PERCENT);
    ck_assert_msg(idle < 10, "sleep measured at %.1f %%", idle);
    lm_sysmetrics_destroy(m);
}
END_TEST

START_TEST(without_nvml_only_process_metrics) {
    lm_sysmetrics *m;
    ck_assert_int_eq(lm_sysmetrics_create(&m, "libnvidia-ml-absent.so", 0), LM_OK);
    ck_assert_int_eq(lm_sysmetrics_has_gpu(m), 0);
    lm_scalar s[LM_SYSMETRICS_MAX];
    size_t n = sample(m, s);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(s[0].name, "rss_mb");
    ck_assert_str_eq(s[1].name, "cpu_percent");
    lm_sysmetrics_destroy(m);
}
END_TEST

START_TEST(gpu_metrics_through_nvml) {
    setenv("FAKE_NVML_MODE", "ok", 1);
    lm_sysmetrics *m;
    ck_assert_int_eq(lm_sysmetrics_create(&m, FAKE_NVML_PATH, 0), LM_OK);
    ck_assert_int_eq(lm_sysmetrics_has_gpu(m), 1);
    lm_scalar s[LM_SYSMETRICS_MAX];
    size_t n = sample(m, s);
    ck_assert_uint_eq(n, 6);
    ck_assert_double_eq(find(s, n, "gpu_utilization"), 87);
    ck_assert_double_eq(find(s, n, "gpu_memory_mb"), 3072);
    ck_assert_double_eq(find(s, n, "gpu_power_w"), 250.5);
    ck_assert_double_eq(find(s, n, "gpu_sm_clock_mhz"), 1755);
    lm_sysmetrics_destroy(m);

    setenv("FAKE_NVML_MODE", "no_power", 1); /* an unsupported query leaves only that metric out */
    ck_assert_int_eq(lm_sysmetrics_create(&m, FAKE_NVML_PATH, 0), LM_OK);
    n = sample(m, s);
    ck_assert_uint_eq(n, 5);
    ck_assert(!present(s, n, "gpu_power_w"));
    ck_assert(present(s, n, "gpu_sm_clock_mhz"));
    lm_sysmetrics_destroy(m);

    const char *modes[] = {"init_fails", "no_device"};
    for (int i = 0; i < 2; i++) {
        setenv("FAKE_NVML_MODE", modes[i], 1);
        ck_assert_int_eq(lm_sysmetrics_create(&m, FAKE_NVML_PATH, 0), LM_OK);
        ck_assert_int_eq(lm_sysmetrics_has_gpu(m), 0);
        ck_assert_uint_eq(sample(m, s), 2);
        lm_sysmetrics_destroy(m);
    }
    setenv("FAKE_NVML_MODE", "ok", 1);
    ck_assert_int_eq(lm_sysmetrics_create(&m, FAKE_NVML_PATH, 3), LM_OK); /* no such GPU index */
    ck_assert_int_eq(lm_sysmetrics_has_gpu(m), 0);
    lm_sysmetrics_destroy(m);
    unsetenv("FAKE_NVML_MODE");
}
END_TEST

START_TEST(small_output_array_is_refused) {
    lm_sysmetrics *m;
    ck_assert_int_eq(lm_sysmetrics_create(&m, "libnvidia-ml-absent.so", 0), LM_OK);
    lm_scalar s[2];
    size_t n = 7;
    ck_assert_int_eq(lm_sysmetrics_sample(m, s, 2, &n), LM_ERR_INVALID);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "holds 2 scalars"));
    lm_sysmetrics_destroy(m);
    lm_sysmetrics_destroy(NULL);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("sysmetrics");
    TCase *tc = tcase_create("sysmetrics");
    tcase_add_test(tc, rss_grows_with_touched_memory);
    tcase_add_test(tc, cpu_percent_follows_work);
    tcase_add_test(tc, without_nvml_only_process_metrics);
    tcase_add_test(tc, gpu_metrics_through_nvml);
    tcase_add_test(tc, small_output_array_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return lm_test_run_suites(suite(), NULL);
}

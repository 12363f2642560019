/* System metrics on a machine with an NVIDIA GPU (label gpu): the real
 * libnvidia-ml.so.1 loads and reports plausible values for GPU 0. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysmetrics.h"
#include "test_main.h"

START_TEST(real_nvml_reports_gpu0) {
    lm_sysmetrics *m;
    ck_assert_int_eq(lm_sysmetrics_create(&m, NULL, 0), LM_OK);
    ck_assert_msg(lm_sysmetrics_has_gpu(m), "libnvidia-ml.so.1 did not load or has no GPU 0");
    lm_scalar s[LM_SYSMETRICS_MAX];
    size_t n;
    ck_assert_int_eq(lm_sysmetrics_sample(m, s, LM_SYSMETRICS_MAX, &n), LM_OK);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        printf("%s = %.1f\n", s[i].name, s[i].value);
        if (strcmp(s[i].name, "gpu_utilization") == 0) ck_assert(s[i].value >= 0 && s[i].value <= 100), seen++;
        if (strcmp(s[i].name, "gpu_memory_mb") == 0) ck_assert(s[i].value > 0 && s[i].value < 1e6), seen++;
        if (strcmp(s[i].name, "gpu_power_w") == 0) ck_assert(s[i].value > 5 && s[i].value < 2000), seen++;
        if (strcmp(s[i].name, "gpu_sm_clock_mhz") == 0) ck_assert(s[i].value > 50 && s[i].value < 5000), seen++;
    }
    ck_assert_int_ge(seen, 3); /* power may be unsupported on some boards */
    lm_sysmetrics_destroy(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("sysmetrics_gpu");
    TCase *tc = tcase_create("nvml");
    tcase_add_test(tc, real_nvml_reports_gpu0);
    suite_add_tcase(s, tc);
    return lm_test_run_suites(s, NULL);
}

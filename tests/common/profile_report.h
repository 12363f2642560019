/* Reading the op profiler's report (kernels/backend_profile.c) in tests of
 * the CPU and CUDA backends.  Header-only, like the rest of tests/common. */
#ifndef LMCORE_TESTS_PROFILE_REPORT_H
#define LMCORE_TESTS_PROFILE_REPORT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The call count of the row whose op label is exactly `key`; -1 without
 * such a row. */
static inline long lm_test_profile_calls(const char *report, const char *key) {
    char needle[128];
    snprintf(needle, sizeof needle, "\n  %s ", key);
    const char *row = strstr(report, needle);
    if (!row) return -1;
    return strtol(row + strlen(needle), NULL, 10);
}

/* The header's busy and elapsed milliseconds; 0 when the header has none. */
static inline int lm_test_profile_busy(const char *report, double *busy, double *elapsed) {
    const char *numbers = strstr(report, "busy ");
    return numbers && sscanf(numbers, "busy %lf ms of %lf ms elapsed", busy, elapsed) == 2;
}

#endif

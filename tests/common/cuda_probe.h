/* The main() of tests that live beside their CPU twin (one source, two
 * executables): whether a GPU is usable, probed once, then the suites.
 * The probe creates a CUDA context in this process, so the suites must then
 * run without fork (lm_test_run_suites_nofork).  tests/gpu's own suites use
 * gt_main (gpu_test_util.h), which does the same and starts their backends. */
#ifndef LMCORE_TESTS_CUDA_PROBE_H
#define LMCORE_TESTS_CUDA_PROBE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "lmcore/status.h"
#include "test_main.h"

/* 0 when the CUDA backend starts; else main()'s exit status: 77 (CTest's
 * skip), or a failure when LMCORE_REQUIRE_GPU=1 (tests/gpu/run.sh sets it,
 * so that a broken GPU is never a silent skip). */
static inline int lm_test_cuda_unusable(void) {
    lm_backend *probe = NULL;
    if (lm_backend_cuda_create(&probe, 0, LM_PRECISION_FP32) == LM_OK) {
        lm_backend_release(probe);
        return 0;
    }
    const char *require = getenv("LMCORE_REQUIRE_GPU");
    if (require && strcmp(require, "1") == 0) {
        printf("FAILED: LMCORE_REQUIRE_GPU=1 but the CUDA backend could not start: %s\n", lm_error_message());
        return EXIT_FAILURE;
    }
    printf("SKIPPED: no usable GPU (%s)\n", lm_error_message());
    return 77;
}

/* The whole main() of a test built for the CPU and for CUDA from one
 * source, whose build names the device ("cpu" or "cuda"):
 *
 *     int main(void) { return lm_test_main_for_device(X_TEST_DEVICE, x_suite); }
 *
 * On "cuda", the GPU probed first (its skip or failure returned before the
 * suite is made) and the suite run without fork; elsewhere, in Check's
 * default fork mode. */
static inline int lm_test_main_for_device(const char *device, Suite *(*make_suite)(void)) {
    if (strcmp(device, "cuda") != 0) return lm_test_run_suites(make_suite(), NULL);
    const int unusable = lm_test_cuda_unusable();
    return unusable ? unusable : lm_test_run_suites_nofork(make_suite(), NULL);
}

#endif

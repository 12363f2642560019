/* The kernel op library's Check suites: finite-difference gradients
 * (test_kernels_grad.c), PyTorch / Hugging Face parity
 * (test_kernels_torch.c), properties such as determinism and dropout
 * masks (test_kernels_misc.c) and the op profiler (test_backend_profile.c).
 *
 * The parent process never runs a kernel: OpenMP's thread pool does not
 * survive fork(), and Check forks a child per test. */
#include <stdlib.h>

#include "kernel_test_util.h"

int main(void) {
    SRunner *runner = srunner_create(kernels_grad_suite());
    srunner_add_suite(runner, kernels_torch_suite());
    srunner_add_suite(runner, kernels_misc_suite());
    srunner_add_suite(runner, kernels_profile_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The kernel op library's Check suites: finite-difference gradients
 * (test_kernels_grad.c), PyTorch / Hugging Face parity
 * (test_kernels_torch.c), properties such as determinism and dropout
 * masks (test_kernels_misc.c) and the op profiler (test_backend_profile.c).
 *
 * The parent process never runs a kernel: OpenMP's thread pool does not
 * survive fork(), and Check forks a child per test. */
#include <stdlib.h>

#include "kernel_test_util.h"
#include "test_main.h"

int main(void) {
    return lm_test_run_suites(kernels_grad_suite(), kernels_torch_suite(), kernels_misc_suite(),
                              kernels_profile_suite(), NULL);
}

/* Helpers shared by the kernel test suites: deterministic random fills,
 * tolerance checks that name the worst element, and a central-difference
 * gradient checker. */
#ifndef LM_KERNEL_TEST_UTIL_H
#define LM_KERNEL_TEST_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Zeroed floats/ints; the test fails if the allocation does. */
float *tk_floats(size_t n);
int32_t *tk_ints(size_t n);
float *tk_copy(const float *src, size_t n);

/* Uniform values in [lo, hi) from a fixed seed (splitmix64). */
void tk_fill(float *x, size_t n, float lo, float hi, uint64_t seed);

/* Fails (naming `what`, the worst index and both values) unless every
 * |got - want| <= atol + rtol * |want|.  Returns the worst |got - want|. */
double tk_assert_close(const char *what, const float *got, const float *want, size_t n, double atol, double rtol);

/* The worst difference in units in the last place (float). */
int64_t tk_max_ulp(const float *got, const float *want, size_t n);

/* Recomputes the outputs of the op under test from the current inputs. */
typedef void (*tk_forward_fn)(void *ctx);

/* Central differences of L = Σ weights[i]·out[i] (accumulated in double)
 * with respect to every element of x, compared with `analytic`:
 * |analytic - fd| <= atol + rtol·max(|analytic|, |fd|).  The step actually
 * taken is (float)(x ± h) - x, so rounding of the perturbed input is exact.
 * Returns the worst absolute error. */
double tk_check_gradient(const char *what, tk_forward_fn forward, void *ctx, float *x, size_t n, const float *out,
                         const float *weights, size_t n_out, const float *analytic, double h, double atol,
                         double rtol);

/* after - before, elementwise: what a backward pass accumulated. */
float *tk_delta(const float *after, const float *before, size_t n);

/* torch.optim.AdamW on n parameters of one weight-decayed tensor, through
 * the adamw optimizer plugin (where lmcore 1.x's lm_cpu_adamw moved) on a
 * CPU device of `threads` threads: lm_cpu_adamw's arguments, the moments m
 * and v carried in and out, the step state's lr = lr, clip_scale =
 * grad_scale and step = t - 1. */
void tk_adamw(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1, float beta2,
              float eps, float weight_decay, float grad_scale, int64_t t, int threads);

/* Path of a fixture file under tests/kernels/fixtures. */
const char *tk_fixture_path(const char *name);

Suite *kernels_grad_suite(void);
Suite *kernels_torch_suite(void);
Suite *kernels_misc_suite(void);
Suite *kernels_profile_suite(void);

#endif

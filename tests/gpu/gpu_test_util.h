/* Helpers of the CUDA-vs-CPU kernel suite: the shared CUDA backend, device
 * buffers that fail the test on any error, random host data, and
 * comparisons that print max abs / max rel / norm-relative errors and name
 * the worst element. */
#ifndef LM_GPU_TEST_UTIL_H
#define LM_GPU_TEST_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* The FP32 CUDA backend every test uses (created by main before the run). */
extern lm_backend *gt_be;
/* A TF32 backend for the tolerance check of tensor-core GEMMs. */
extern lm_backend *gt_be_tf32;
/* A BF16 backend: fp32 storage, bf16 tensor-core math in the GEMMs. */
extern lm_backend *gt_be_bf16;

/* Which CUDA backends gt_main starts. */
typedef enum gt_backends {
    GT_FP32_ONLY = 0,     /* gt_be */
    GT_ALL_PRECISIONS = 1 /* gt_be, gt_be_tf32 and gt_be_bf16 */
} gt_backends;

/* A CUDA test's main(): starts the backends, runs the NULL-terminated suites
 * in this process (a CUDA context does not survive a fork), destroys the
 * backends, and returns main()'s exit status.  Without a usable GPU it
 * returns 77 (CTest's skip), or fails when LMCORE_REQUIRE_GPU=1 (the GPU
 * machine's run.sh sets it, so that a broken GPU is never a silent skip).
 * `what` ends the line "testing <backend> <what>". */
int gt_main(const char *what, gt_backends backends, Suite *first, ...);

/* Fresh seeds for every input (base from LMCORE_TEST_SEED, printed). */
uint64_t gt_next_seed(void);

float *gt_host(size_t n); /* zeroed, test fails on OOM */
int32_t *gt_host_ints(size_t n);
float *gt_host_copy(const float *src, size_t n);
float *gt_random(size_t n, float lo, float hi);   /* uniform, fresh seed */
void gt_fill_random(float *x, size_t n, float lo, float hi);
void gt_fill_nan(float *x, size_t n);            /* poison */
int32_t *gt_random_ints(size_t n, int lo, int hi_exclusive);

/* Device buffers on gt_be (or `be`): upload on allocation, NaN poison. */
float *gt_dev_upload(lm_backend *be, const float *host, size_t n);
int32_t *gt_dev_upload_ints(lm_backend *be, const int32_t *host, size_t n);
/* One int64 on the device: the scored-label count the loss ops read there
 * (crossentropy_backward, crossentropy_forward_backward, loss_mean). */
int64_t *gt_dev_count(lm_backend *be, int64_t count);
float *gt_dev_nan(lm_backend *be, size_t n);
void gt_dev_poison(lm_backend *be, float *dev, size_t n); /* NaN over an existing buffer */
void gt_dev_download(lm_backend *be, float *host, const float *dev, size_t n);
void gt_dev_free(lm_backend *be, void *dev);
/* Waits for the queued ops; fails the test with the kept CUDA error. */
void gt_sync(lm_backend *be, const char *after_what);
/* A step state in device memory holding `host` (all of it, reserved words
 * included), and the way back. */
lm_step_state *gt_dev_step_state(lm_backend *be, const lm_step_state *host);
void gt_dev_step_state_download(lm_backend *be, lm_step_state *host, const lm_step_state *dev);
/* A device step state that holds only a dropout key (the rest zero): the
 * GPU draws the masks of lm_cpu_*(seed, lm_dropout_stream(micro_batch, site)). */
lm_step_state *gt_dev_key(lm_backend *be, uint64_t seed, uint64_t micro_batch);

/* Compares got (GPU) with want (CPU): prints one line and fails unless
 * ‖got−want‖/‖want‖ <= tol and every |got−want| <= 10·tol·(|want| + rms(want)),
 * and NaN appears only where want is NaN. */
void gt_compare(const char *what, const float *got, const float *want, size_t n, double tol);
/* What a backward op added: (got - init) against (want - init), with the
 * criteria of gt_compare plus, per element, the float rounding of the stored
 * sum (2 ulp of |want|), which no op can beat: keep init comparable in
 * magnitude to the increments so that this floor stays negligible. */
void gt_compare_accumulated(const char *what, const float *got, const float *want, const float *init, size_t n,
                            double tol);
/* Bit-for-bit equality (same ops on both sides). */
void gt_compare_exact(const char *what, const float *got, const float *want, size_t n);
/* At most `max_ulp` units in the last place apart (NaN never passes). */
void gt_compare_ulp(const char *what, const float *got, const float *want, size_t n, int64_t max_ulp);
/* Dropout masks: (got == 0) and (want == 0) agree wherever `reference` != 0. */
void gt_compare_zero_pattern(const char *what, const float *got, const float *want, const float *reference,
                             size_t n);
/* Run-to-run determinism: bitwise equal device results of two runs. */
void gt_assert_bitwise(const char *what, const float *a, const float *b, size_t n);

Suite *gpu_ops_suite(void);
Suite *gpu_backend_suite(void);
Suite *gpu_step_suite(void);
Suite *gpu_graph_suite(void); /* test_cuda_graph.c */

#endif

/* Comparing a model with bf16 storage (logits_dtype, activation_dtype)
 * against the same model in fp32, for the suites that do
 * (tests/bf16_logits, tests/bf16_ffn): relative errors, every parameter
 * tensor within a tolerance of the largest, and the BF16 params_copy equal
 * to the parameters rounded.  Header-only, like the rest of tests/common. */
#ifndef LMCORE_TESTS_BF16_COMPARE_H
#define LMCORE_TESTS_BF16_COMPARE_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "bf16.h"
#include "lmcore/lmcore.h"
#include "model_steps.h"
#include "small_models.h"

static inline double lm_test_relative(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

/* Every tensor of a (the bf16 model's) against b (the fp32 model's):
 * within tol of the largest |b| over all tensors (their shapes, not the
 * padding rows).  Returns the worst. */
static inline double lm_test_compare_tensors(const lm_param_set *set, const float *a, const float *b, double tol,
                                             const char *what) {
    double largest = 0.0, worst = 0.0;
    for (size_t i = 0; i < set->n_descs; i++)
        for (size_t j = 0; j < lm_test_desc_numel(&set->descs[i]); j++)
            largest = fmax(largest, fabs((double)b[set->descs[i].offset + j]));
    ck_assert_msg(largest > 0.0, "%s: all zero", what);
    for (size_t i = 0; i < set->n_descs; i++) {
        const lm_param_desc *d = &set->descs[i];
        for (size_t j = 0; j < lm_test_desc_numel(d); j++) {
            const double e = fabs((double)a[d->offset + j] - (double)b[d->offset + j]) / largest;
            ck_assert_msg(e <= tol, "%s: %s[%zu] = %.9g, fp32 %.9g (%.3g of the largest, tolerance %g)", what,
                          d->name, j, (double)a[d->offset + j], (double)b[d->offset + j], e, tol);
            if (e > worst) worst = e;
        }
    }
    return worst;
}

/* The model's params_copy is its parameters rounded, every element (the
 * padding and gaps too: the copy is of the whole flat buffer). */
static inline void lm_test_assert_copy_is_rounded(const lm_architecture_vtable *vt, void *model, const char *what) {
    lm_param_set set = lm_test_params(vt, model);
    ck_assert_ptr_nonnull(set.params_copy);
    ck_assert_int_eq(set.copy_dtype, LM_BF16);
    float *params = lm_test_read_params(vt, model);
    uint16_t *copy = malloc(set.n_params * sizeof *copy);
    ck_assert_ptr_nonnull(copy);
    ck_assert_int_eq(set.device->ops->download(set.device, copy, set.params_copy, set.n_params * sizeof *copy), LM_OK);
    for (size_t j = 0; j < set.n_params; j++)
        ck_assert_msg(copy[j] == lm_bf16_from_float(params[j]), "%s: copy[%zu] = 0x%04x, params %.9g rounds to 0x%04x",
                      what, j, copy[j], (double)params[j], lm_bf16_from_float(params[j]));
    free(copy);
    lm_free(params);
}

#endif

/* lmkernels — inverted dropout with counter-based masks (see dropout_mask.h):
 * the mask of element i is a pure function of (seed, stream, i), so the
 * backward pass redraws it instead of storing it. */
#include <string.h>

#include "cpu_internal.h"
#include "dropout_mask.h"
#include "kernels.h"

void lm_cpu_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed, uint64_t stream) {
    long count = (long)n;
    if (p <= 0.0f) {
        if (out != inp) memcpy(out, inp, n * sizeof *out);
        return;
    }
    if (p >= 1.0f) { /* torch: everything dropped, no 0·inf */
        memset(out, 0, n * sizeof *out);
        return;
    }
    lm_dropout_mask mask = lm_dropout_mask_make(p);
#pragma omp parallel for simd schedule(static) if (count >= LM_CPU_PARALLEL_MIN)
    for (long i = 0; i < count; i++) out[i] = inp[i] * lm_dropout_multiplier(mask, seed, stream, (uint64_t)i);
}

void lm_cpu_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed, uint64_t stream) {
    long count = (long)n;
    if (p <= 0.0f) {
        lm_cpu_accumulate(dinp, dout, n);
        return;
    }
    if (p >= 1.0f) return;
    lm_dropout_mask mask = lm_dropout_mask_make(p);
#pragma omp parallel for simd schedule(static) if (count >= LM_CPU_PARALLEL_MIN)
    for (long i = 0; i < count; i++) dinp[i] += dout[i] * lm_dropout_multiplier(mask, seed, stream, (uint64_t)i);
}

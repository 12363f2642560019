/* lmkernels — inverted dropout with counter-based masks (see dropout_mask.h):
 * the mask of element i is a pure function of (seed, stream, i), so the
 * backward pass redraws it instead of storing it. */
#include <string.h>

#include "cpu_internal.h"
#include "dropout_mask.h"
#include "kernels.h"

typedef struct dropout_job {
    float *out;
    const float *inp;
    lm_dropout_mask mask;
    uint64_t seed, stream;
} dropout_job;

LM_CPU_WIDE_CLONES static void dropout_forward_task(void *ctx, long begin, long end) {
    const dropout_job *j = ctx;
    float *out = j->out;
    const float *inp = j->inp;
    const lm_dropout_mask mask = j->mask;
    const uint64_t seed = j->seed, stream = j->stream;
#pragma omp simd
    for (long i = begin; i < end; i++) out[i] = inp[i] * lm_dropout_multiplier(mask, seed, stream, (uint64_t)i);
}

LM_CPU_WIDE_CLONES static void dropout_backward_task(void *ctx, long begin, long end) {
    const dropout_job *j = ctx;
    float *dinp = j->out;
    const float *dout = j->inp;
    const lm_dropout_mask mask = j->mask;
    const uint64_t seed = j->seed, stream = j->stream;
#pragma omp simd
    for (long i = begin; i < end; i++) dinp[i] += dout[i] * lm_dropout_multiplier(mask, seed, stream, (uint64_t)i);
}

void lm_cpu_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed, uint64_t stream) {
    if (p <= 0.0f) {
        if (out != inp) memcpy(out, inp, n * sizeof *out);
        return;
    }
    if (p >= 1.0f) { /* torch: everything dropped, no 0·inf */
        memset(out, 0, n * sizeof *out);
        return;
    }
    dropout_job j = {out, inp, lm_dropout_mask_make(p), seed, stream};
    /* Drawing the mask costs far more than the multiply: smaller tasks pay. */
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN / 4, dropout_forward_task, &j);
}

void lm_cpu_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed, uint64_t stream) {
    if (p <= 0.0f) {
        lm_cpu_accumulate(dinp, dout, n);
        return;
    }
    if (p >= 1.0f) return;
    dropout_job j = {dinp, dout, lm_dropout_mask_make(p), seed, stream};
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN / 4, dropout_backward_task, &j);
}

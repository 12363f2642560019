/* lmkernels — inverted dropout with counter-based masks (see dropout_mask.h):
 * the mask of element i is a pure function of (seed, stream, i), so the
 * backward pass redraws it instead of storing it. */
#include <string.h>

#include "cpu_internal.h"
#include "dropout_mask.h"
#include "kernels.h"

typedef struct dropout_job {
    float *out;       /* backward: dinp */
    const float *inp; /* backward: dout */
    lm_dropout_mask mask;
    uint64_t seed, stream;
} dropout_job;

/* Forward: out[i] = inp[i] · multiplier.  Backward: dinp[i] = dout[i] ·
 * multiplier, the same mask drawn again, written as added onto a 0 that is
 * not read (0 + x, where x alone could be -0): the bits of the zeroing and
 * adding the callers did before, so the CPU's gradients keep them.  One
 * loop for both, inlined into each task with `backward` a constant. */
static inline __attribute__((always_inline)) void dropout_range(const dropout_job *j, long begin, long end,
                                                                int backward) {
    float *out = j->out;
    const float *inp = j->inp;
    const lm_dropout_mask mask = j->mask;
    const uint64_t seed = j->seed, stream = j->stream;
#pragma omp simd
    for (long i = begin; i < end; i++) {
        const float kept = inp[i] * lm_dropout_multiplier(mask, seed, stream, (uint64_t)i);
        out[i] = backward ? 0.0f + kept : kept;
    }
}

LM_CPU_WIDE_CLONES static void dropout_forward_task(void *ctx, long begin, long end) {
    dropout_range(ctx, begin, end, 0);
}

LM_CPU_WIDE_CLONES static void dropout_backward_task(void *ctx, long begin, long end) {
    dropout_range(ctx, begin, end, 1);
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
    if (p <= 0.0f || p >= 1.0f) { /* a copy, or everything dropped: forward's */
        lm_cpu_dropout_forward(dinp, dout, n, p, seed, stream);
        return;
    }
    dropout_job j = {dinp, dout, lm_dropout_mask_make(p), seed, stream};
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN / 4, dropout_backward_task, &j);
}

/* lmkernels — fp32 <-> bf16 conversions of whole buffers (kernels/bf16.h's
 * rounding), the building blocks of the bf16 ops' CPU twins and the
 * convert_to_bf16 op. */
#include <stdlib.h>

#include "bf16.h"
#include "cpu_internal.h"
#include "kernels.h"

typedef struct convert_job {
    void *out;
    const void *in;
} convert_job;

static void round_task(void *ctx, long begin, long end) {
    const convert_job *j = ctx;
    uint16_t *out = j->out;
    const float *in = j->in;
    for (long i = begin; i < end; i++) out[i] = lm_bf16_from_float(in[i]);
}

static void widen_task(void *ctx, long begin, long end) {
    const convert_job *j = ctx;
    float *out = j->out;
    const uint16_t *in = j->in;
    for (long i = begin; i < end; i++) out[i] = lm_bf16_to_float(in[i]);
}

void lm_cpu_convert_to_bf16(uint16_t *out, const float *in, size_t n) {
    convert_job j = {out, in};
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN, round_task, &j);
}

void lm_cpu_widen_bf16(float *out, const uint16_t *in, size_t n) {
    convert_job j = {out, in};
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN, widen_task, &j);
}

float *lm_cpu_widened_bf16(const uint16_t *in, size_t n) {
    float *out = malloc((n ? n : 1) * sizeof *out);
    if (out) lm_cpu_widen_bf16(out, in, n);
    return out;
}

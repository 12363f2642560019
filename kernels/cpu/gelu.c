/* lmkernels — GELU, both flavours of Hugging Face:
 *   approx_tanh = 1: "gelu_new" (GPT-2)  0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
 *   approx_tanh = 0: "gelu"     (BERT)   0.5·x·(1 + erf(x/√2))
 * The tanh form is evaluated as x·σ(2u), an identity (0.5·(1 + tanh u) =
 * σ(2u)) that needs one exp, vectorises (vec_math.h) and does not cancel
 * for large negative x. */
#include <math.h>

#include "cpu_internal.h"
#include "kernels.h"
#include "vec_math.h"

#define LM_SQRT_2_OVER_PI 0.7978845608028654f
#define LM_GELU_CUBIC 0.044715f
#define LM_INV_SQRT_2 0.70710678118654752f
#define LM_INV_SQRT_2PI 0.39894228040143268f

typedef struct gelu_job {
    float *out;
    const float *inp, *dout;
} gelu_job;

LM_CPU_WIDE_CLONES static void gelu_tanh_forward_task(void *ctx, long begin, long end) {
    const gelu_job *j = ctx;
    float *out = j->out;
    const float *inp = j->inp;
#pragma omp simd
    for (long i = begin; i < end; i++) {
        float x = inp[i];
        float u = LM_SQRT_2_OVER_PI * (x + LM_GELU_CUBIC * x * x * x);
        out[i] = x / (1.0f + lm_vexpf(-2.0f * u));
    }
}

static void gelu_erf_forward_task(void *ctx, long begin, long end) {
    const gelu_job *j = ctx;
    float *out = j->out;
    const float *inp = j->inp;
    for (long i = begin; i < end; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erff(x * LM_INV_SQRT_2));
    }
}

/* d/dx = g + 2·x·g·(1-g)·u',  g = σ(2u) = 0.5·(1 + tanh u), because
 * 1 - tanh²u = 4·g·(1-g). */
LM_CPU_WIDE_CLONES static void gelu_tanh_backward_task(void *ctx, long begin, long end) {
    const gelu_job *j = ctx;
    float *dinp = j->out;
    const float *inp = j->inp, *dout = j->dout;
#pragma omp simd
    for (long i = begin; i < end; i++) {
        float x = inp[i];
        float x2 = x * x;
        float u = LM_SQRT_2_OVER_PI * (x + LM_GELU_CUBIC * x2 * x);
        float du = LM_SQRT_2_OVER_PI * (1.0f + 3.0f * LM_GELU_CUBIC * x2);
        float g = 1.0f / (1.0f + lm_vexpf(-2.0f * u));
        dinp[i] += dout[i] * (g + 2.0f * x * g * (1.0f - g) * du);
    }
}

/* d/dx = Φ(x) + x·φ(x) */
static void gelu_erf_backward_task(void *ctx, long begin, long end) {
    const gelu_job *j = ctx;
    float *dinp = j->out;
    const float *inp = j->inp, *dout = j->dout;
    for (long i = begin; i < end; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * LM_INV_SQRT_2));
        float pdf = LM_INV_SQRT_2PI * lm_vexpf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

void lm_cpu_gelu_forward(float *out, const float *inp, size_t n, int approx_tanh) {
    gelu_job j = {out, inp, NULL};
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN, approx_tanh ? gelu_tanh_forward_task : gelu_erf_forward_task,
                        &j);
}

void lm_cpu_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n, int approx_tanh) {
    gelu_job j = {dinp, inp, dout};
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN, approx_tanh ? gelu_tanh_backward_task : gelu_erf_backward_task,
                        &j);
}

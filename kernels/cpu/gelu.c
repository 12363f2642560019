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

/* The exact GELU needs erf, which GCC only vectorises under -ffast-math;
 * scalar erff was 16 % of a BERT training step.  glibc (2.35 and later)
 * ships an AVX2 erff in libmvec (<= 2 ulp from the correctly rounded
 * result, measured over [-10, 10]; scalar erff is <= 1 ulp): the build
 * links it when present (LM_HAVE_LIBMVEC), else the scalar loop runs. */
#if defined(LM_HAVE_LIBMVEC) && defined(__AVX2__)
#include <immintrin.h>
#define LM_GELU_VECTOR_ERF 1
__m256 _ZGVdN8v_erff(__m256 x); /* libmvec's 8-wide AVX2 erff */
#else
#define LM_GELU_VECTOR_ERF 0
#endif

/* Elements per erf batch: the erf values of a batch go through a small
 * stack buffer so that the rest of the formula stays one simd loop. */
#define LM_GELU_CHUNK 256

/* e[k] = erf(x[k] / √2) for k < n <= LM_GELU_CHUNK. */
static void erf_of_scaled(float *e, const float *x, long n) {
    long k = 0;
#if LM_GELU_VECTOR_ERF
    const __m256 inv_sqrt2 = _mm256_set1_ps(LM_INV_SQRT_2);
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(e + k, _ZGVdN8v_erff(_mm256_mul_ps(_mm256_loadu_ps(x + k), inv_sqrt2)));
#endif
    for (; k < n; k++) e[k] = erff(x[k] * LM_INV_SQRT_2);
}

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
    float e[LM_GELU_CHUNK];
    for (long c = begin; c < end; c += LM_GELU_CHUNK) {
        const long n = end - c < LM_GELU_CHUNK ? end - c : LM_GELU_CHUNK;
        const float *inp = j->inp + c;
        float *out = j->out + c;
        erf_of_scaled(e, inp, n);
#pragma omp simd
        for (long k = 0; k < n; k++) out[k] = 0.5f * inp[k] * (1.0f + e[k]);
    }
}

/* The backward tasks write dinp (backend_ops.def: its callers fill a
 * scratch with it), reading dout[i] before writing dinp[i]: in place works.
 *
 * d/dx = g + 2·x·g·(1-g)·u',  g = σ(2u) = 0.5·(1 + tanh u), because
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
        dinp[i] = dout[i] * (g + 2.0f * x * g * (1.0f - g) * du);
    }
}

/* d/dx = Φ(x) + x·φ(x) */
static void gelu_erf_backward_task(void *ctx, long begin, long end) {
    const gelu_job *j = ctx;
    float e[LM_GELU_CHUNK];
    for (long c = begin; c < end; c += LM_GELU_CHUNK) {
        const long n = end - c < LM_GELU_CHUNK ? end - c : LM_GELU_CHUNK;
        const float *inp = j->inp + c, *dout = j->dout + c;
        float *dinp = j->out + c;
        erf_of_scaled(e, inp, n);
#pragma omp simd
        for (long k = 0; k < n; k++) {
            float x = inp[k];
            float cdf = 0.5f * (1.0f + e[k]);
            float pdf = LM_INV_SQRT_2PI * lm_vexpf(-0.5f * x * x);
            dinp[k] = dout[k] * (cdf + x * pdf);
        }
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

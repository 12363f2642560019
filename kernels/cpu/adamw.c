/* lmkernels — torch.optim.AdamW (single-tensor path, amsgrad off, maximize
 * off) and the sum of squares used for the global gradient norm.
 *
 * The arithmetic follows torch operation by operation, with the scalars
 * computed in double as Python does and rounded to float where torch hands
 * them to a float tensor op, so that the float results agree to ~1 ulp:
 *   param.mul_(1 - lr·wd)                         (skipped when wd = 0)
 *   exp_avg.lerp_(grad, 1 - β1)                   m + w·(g - m), one FMA
 *   exp_avg_sq.mul_(β2).addcmul_(g, g, 1 - β2)    v·β2 + ((1-β2)·g)·g
 *   step_size = lr / (1 - β1^t)
 *   denom = sqrt(v) / (1 - β2^t)^0.5 + eps
 *   param.addcdiv_(exp_avg, denom, -step_size)    p + (-step_size·m)/denom */
#include <math.h>

#include "cpu_internal.h"
#include "kernels.h"

typedef struct adamw_scalars {
    float decay, lerp_weight, beta2, one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps, grad_scale;
    int apply_decay, scale_grad;
} adamw_scalars;

LM_CPU_WIDE_CLONES static void adamw_range(float *param, const float *grad, float *m, float *v, long begin, long end,
                        const adamw_scalars *s) {
    const float decay = s->decay, lerp_weight = s->lerp_weight, beta2 = s->beta2;
    const float one_minus_beta2 = s->one_minus_beta2, neg_step_size = s->neg_step_size;
    const float bias_correction2_sqrt = s->bias_correction2_sqrt, eps = s->eps, grad_scale = s->grad_scale;
    const int apply_decay = s->apply_decay, scale_grad = s->scale_grad;
#pragma omp simd
    for (long i = begin; i < end; i++) {
        float g = scale_grad ? grad[i] * grad_scale : grad[i];
        float p = apply_decay ? param[i] * decay : param[i];
        /* torch's lerp for weights < 0.5: fma(weight, end - self, self) */
        float mi = fmaf(lerp_weight, g - m[i], m[i]);
        float vi = v[i] * beta2 + one_minus_beta2 * g * g;
        float denom = sqrtf(vi) / bias_correction2_sqrt + eps;
        param[i] = p + neg_step_size * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

typedef struct adamw_job {
    float *param, *m, *v;
    const float *grad;
    adamw_scalars scalars;
} adamw_job;

static void adamw_task(void *ctx, long begin, long end) {
    adamw_job *j = ctx;
    adamw_range(j->param, j->grad, j->m, j->v, begin, end, &j->scalars);
}

void lm_cpu_adamw(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, float grad_scale, int64_t t) {
    double step = (double)t;
    double bias_correction1 = 1.0 - pow((double)beta1, step);
    double bias_correction2 = 1.0 - pow((double)beta2, step);
    adamw_job j = {param, m, v, grad, {
        .decay = (float)(1.0 - (double)lr * (double)weight_decay),
        .lerp_weight = (float)(1.0 - (double)beta1),
        .beta2 = beta2,
        .one_minus_beta2 = (float)(1.0 - (double)beta2),
        .neg_step_size = (float)-((double)lr / bias_correction1),
        .bias_correction2_sqrt = (float)pow(bias_correction2, 0.5),
        .eps = eps,
        .grad_scale = grad_scale,
        .apply_decay = weight_decay != 0.0f,
        .scale_grad = grad_scale != 1.0f,
    }};
    lm_cpu_parallel_for((long)n, LM_CPU_PARALLEL_MIN, adamw_task, &j);
}

/* Fixed-size chunks summed in order: the result does not depend on how many
 * threads share the chunks. */
#define LM_SUM_CHUNK 16384
/* Chunk sums go through a small stack buffer, a window at a time. */
#define LM_SUM_WINDOW 256

typedef struct sum_squares_job {
    const float *x;
    size_t n, first_chunk;
    double partial[LM_SUM_WINDOW];
} sum_squares_job;

static void sum_squares_task(void *ctx, long begin, long end) {
    sum_squares_job *j = ctx;
    for (long c = begin; c < end; c++) {
        size_t first = (j->first_chunk + (size_t)c) * LM_SUM_CHUNK;
        size_t last = first + LM_SUM_CHUNK < j->n ? first + LM_SUM_CHUNK : j->n;
        const float *x = j->x;
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (size_t i = first; i < last; i++) sum += (double)x[i] * (double)x[i];
        j->partial[c] = sum;
    }
}

double lm_cpu_sum_squares(const float *x, size_t n) {
    long chunks = (long)((n + LM_SUM_CHUNK - 1) / LM_SUM_CHUNK);
    double total = 0.0;
    sum_squares_job j;
    j.x = x;
    j.n = n;
    for (long first = 0; first < chunks; first += LM_SUM_WINDOW) {
        long count = chunks - first < LM_SUM_WINDOW ? chunks - first : LM_SUM_WINDOW;
        j.first_chunk = (size_t)first;
        /* Two chunks per task: 32768 elements, the usual task size. */
        lm_cpu_parallel_for(count, LM_CPU_PARALLEL_MIN / LM_SUM_CHUNK, sum_squares_task, &j);
        for (long c = 0; c < count; c++) total += j.partial[c];
    }
    return total;
}

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

static void adamw_range(float *param, const float *grad, float *m, float *v, long begin, long end,
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

#define LM_ADAMW_BLOCK 8192

void lm_cpu_adamw(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, float grad_scale, int64_t t) {
    double step = (double)t;
    double bias_correction1 = 1.0 - pow((double)beta1, step);
    double bias_correction2 = 1.0 - pow((double)beta2, step);
    adamw_scalars s = {
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
    };
    long blocks = (long)((n + LM_ADAMW_BLOCK - 1) / LM_ADAMW_BLOCK);
#pragma omp parallel for schedule(static) if ((long)n >= LM_CPU_PARALLEL_MIN)
    for (long block = 0; block < blocks; block++) {
        long begin = block * LM_ADAMW_BLOCK;
        long end = begin + LM_ADAMW_BLOCK < (long)n ? begin + LM_ADAMW_BLOCK : (long)n;
        adamw_range(param, grad, m, v, begin, end, &s);
    }
}

/* Fixed-size chunks summed in order: the result does not depend on how many
 * threads share the chunks. */
#define LM_SUM_CHUNK 16384

double lm_cpu_sum_squares(const float *x, size_t n) {
    long chunks = (long)((n + LM_SUM_CHUNK - 1) / LM_SUM_CHUNK);
    double total = 0.0;
    /* Chunk sums go through a small stack buffer, a window at a time. */
    enum { WINDOW = 256 };
    double partial[WINDOW];
    for (long first = 0; first < chunks; first += WINDOW) {
        long count = chunks - first < WINDOW ? chunks - first : WINDOW;
#pragma omp parallel for schedule(static) if (count > 1 && (long)n >= LM_CPU_PARALLEL_MIN)
        for (long c = 0; c < count; c++) {
            size_t begin = (size_t)(first + c) * LM_SUM_CHUNK;
            size_t end = begin + LM_SUM_CHUNK < n ? begin + LM_SUM_CHUNK : n;
            double sum = 0.0;
#pragma omp simd reduction(+ : sum)
            for (size_t i = begin; i < end; i++) sum += (double)x[i] * (double)x[i];
            partial[c] = sum;
        }
        for (long c = 0; c < count; c++) total += partial[c];
    }
    return total;
}

/* lmcore 1.x's lm_cpu_adamw, copied from kernels/cpu/adamw.c as it was
 * before ABI 2 (git show <1.x>:kernels/cpu/adamw.c), without the thread
 * pool: every element is independent, so cutting the loop into tasks
 * changes nothing.  Compiled with the kernels' flags (CMakeLists.txt:
 * -ffp-contract=off -fno-math-errno) so that it rounds as the old library
 * did; do not "improve" it. */
#include "adamw_reference.h"

#include <math.h>

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

void adamw_reference(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1,
                     float beta2, float eps, float weight_decay, float grad_scale, int64_t t) {
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
    adamw_range(param, grad, m, v, 0, (long)n, &s);
}

/* torch.optim.AdamW on the CPU (single-tensor path, amsgrad off, maximize
 * off): lmcore 1.x's lm_cpu_adamw (kernels/cpu/adamw.c before ABI 2),
 * moved here unchanged so that updates stay bit for bit the same.
 *
 * The arithmetic follows torch operation by operation, with the scalars
 * computed in double as Python does and rounded to float where torch hands
 * them to a float tensor op:
 *   param.mul_(1 - lr·wd)                         (skipped when wd = 0)
 *   exp_avg.lerp_(grad, 1 - β1)                   m + w·(g - m), one FMA
 *   exp_avg_sq.mul_(β2).addcmul_(g, g, 1 - β2)    v·β2 + ((1-β2)·g)·g
 *   step_size = lr / (1 - β1^t)
 *   denom = sqrt(v) / (1 - β2^t)^0.5 + eps
 *   param.addcdiv_(exp_avg, denom, -step_size)    p + (-step_size·m)/denom
 *
 * Built with the kernels' flags (plugins/optimizer_adamw/CMakeLists.txt):
 * -O3 -ffp-contract=off (no a·b + c fused where torch rounds twice)
 * -fno-math-errno (so GCC vectorises the loop with sqrtf) and the build's
 * -march, and the loop gets the kernels' AVX-512 clone: every element goes
 * through the same IEEE operations whatever the vector width. */
#include <math.h>

#include "adamw.h"

/* The kernels' LM_CPU_WIDE_CLONES: a header alone (a macro), so the plugin
 * still links nothing of the kernels. */
#include "wide_clones.h" /* kernels/cpu: LM_CPU_WIDE_CLONES */

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

/* lm_cpu_adamw's scalars for one call, from the same float arguments. */
static adamw_scalars adamw_scalars_for(float lr, float beta1, float beta2, float eps, float weight_decay,
                                       float grad_scale, int64_t t) {
    const double step = (double)t;
    const double bias_correction1 = 1.0 - pow((double)beta1, step);
    const double bias_correction2 = 1.0 - pow((double)beta2, step);
    return (adamw_scalars){
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
}

typedef struct adamw_job {
    float *param, *m, *v;
    const float *grad;
    adamw_scalars with_decay, without_decay;
} adamw_job;

static void adamw_task(void *ctx, const lm_opt_range *range, long begin, long end) {
    const adamw_job *j = ctx;
    adamw_range(j->param, j->grad, j->m, j->v, begin, end, range->decay ? &j->with_decay : &j->without_decay);
}

void adamw_cpu_step(lm_opt_params *p, float *exp_avg, float *exp_avg_sq, const adamw_hparams *h,
                    const lm_step_state *state) {
    if (state->bad_step != 0) return; /* the run diverged: change nothing */
    /* The call lmcore 1.x made: lr rounded to float first, t = step + 1. */
    const float lr = (float)state->lr;
    const int64_t t = state->step + 1;
    adamw_job job = {p->set.params, exp_avg, exp_avg_sq, p->set.grads,
                     adamw_scalars_for(lr, h->beta1, h->beta2, h->eps, h->weight_decay, state->clip_scale, t),
                     adamw_scalars_for(lr, h->beta1, h->beta2, h->eps, 0.0f, state->clip_scale, t)};
    lm_opt_cpu_for_ranges(p, adamw_task, &job);
}

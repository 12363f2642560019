/* Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")
 * on the CPU, operation by operation as lion_pytorch 0.2 (lion_pytorch.Lion,
 * update_fn) runs it on float tensors:
 *   grad = grad · clip_scale                     (clip_grad_norm_'s mul_)
 *   p.mul_(1 - lr·wd)                             (skipped when wd = 0: p·1 = p)
 *   update = exp_avg.clone().mul_(β1).add(grad, alpha=1-β1).sgn_()
 *                                                 sign(fma(g, 1-β1, m·β1))
 *   p.add_(update, alpha=-lr)                     fma(sign, -lr, p)
 *   exp_avg.mul_(β2).add_(grad, alpha=1-β2)       fma(g, 1-β2, m·β2)
 * torch's vectorised add with alpha is an FMA (vec::fmadd), so these are
 * explicit fmaf; everything else rounds once per operation
 * (-ffp-contract=off, plugins/optimizer_adamw/CMakeLists.txt). */
#include <math.h>

#include "lion.h"

typedef struct lion_job {
    float *param, *m;
    const float *grad;
    float grad_scale, neg_lr, decay;
    lion_hparams h;
} lion_job;

static void lion_task(void *ctx, const lm_opt_range *range, long begin, long end) {
    const lion_job *j = ctx;
    float *param = j->param, *m = j->m;
    const float *grad = j->grad;
    const float grad_scale = j->grad_scale, neg_lr = j->neg_lr;
    const float beta1 = j->h.beta1, one_minus_beta1 = j->h.one_minus_beta1;
    const float beta2 = j->h.beta2, one_minus_beta2 = j->h.one_minus_beta2;
    const int apply_decay = range->decay && j->h.weight_decay != 0.0;
    const float decay = j->decay;
#pragma omp simd
    for (long i = begin; i < end; i++) {
        const float g = grad[i] * grad_scale;
        float p = apply_decay ? param[i] * decay : param[i];
        const float c = fmaf(g, one_minus_beta1, m[i] * beta1);
        const float sign = (float)((c > 0.0f) - (c < 0.0f));
        param[i] = fmaf(sign, neg_lr, p);
        m[i] = fmaf(g, one_minus_beta2, m[i] * beta2);
    }
}

void lion_cpu_step(lm_opt_params *p, float *exp_avg, const lion_hparams *h, const lm_step_state *state) {
    if (state->bad_step != 0) return; /* the run diverged: change nothing */
    lion_job job = {
        .param = p->set.params,
        .m = exp_avg,
        .grad = p->set.grads,
        .grad_scale = state->clip_scale,
        .neg_lr = (float)-state->lr,
        .decay = (float)(1.0 - state->lr * h->weight_decay),
        .h = *h,
    };
    lm_opt_cpu_for_ranges(p, lion_task, &job);
}

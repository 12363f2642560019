/* torch.optim.SGD on the CPU (single-tensor path, maximize off), operation
 * by operation as torch runs it on float tensors:
 *   d_p = grad · clip_scale                      (clip_grad_norm_'s mul_)
 *   d_p = d_p.add(param, alpha=wd)               fma(param, wd, d_p)
 *   buf = d_p                                     first update of a run
 *   buf.mul_(momentum).add_(d_p, alpha=1-damp)    fma(d_p, 1-damp, buf·momentum)
 *   d_p = d_p.add(buf, alpha=momentum)            nesterov: fma(buf, momentum, d_p)
 *       or d_p = buf
 *   param.add_(d_p, alpha=-lr)                    fma(d_p, -lr, param)
 * torch's vectorised add with alpha is an FMA (vec::fmadd), so these are
 * explicit fmaf; everything else rounds once per operation
 * (-ffp-contract=off, plugins/optimizer_adamw/CMakeLists.txt). */
#include <math.h>

#include "sgd.h"

typedef struct sgd_job {
    float *param, *buf;
    const float *grad;
    float grad_scale, neg_lr, momentum, one_minus_dampening, weight_decay;
    int nesterov, first;
} sgd_job;

static void sgd_task(void *ctx, const lm_opt_range *range, long begin, long end) {
    const sgd_job *j = ctx;
    float *param = j->param, *buf = j->buf;
    const float *grad = j->grad;
    const float grad_scale = j->grad_scale, neg_lr = j->neg_lr, momentum = j->momentum;
    const float one_minus_dampening = j->one_minus_dampening;
    const float weight_decay = range->decay ? j->weight_decay : 0.0f;
    const int nesterov = j->nesterov, first = j->first;
    if (!buf) {
#pragma omp simd
        for (long i = begin; i < end; i++) {
            float d = grad[i] * grad_scale;
            if (weight_decay != 0.0f) d = fmaf(param[i], weight_decay, d);
            param[i] = fmaf(d, neg_lr, param[i]);
        }
        return;
    }
#pragma omp simd
    for (long i = begin; i < end; i++) {
        float d = grad[i] * grad_scale;
        if (weight_decay != 0.0f) d = fmaf(param[i], weight_decay, d);
        const float b = first ? d : fmaf(d, one_minus_dampening, buf[i] * momentum);
        buf[i] = b;
        d = nesterov ? fmaf(b, momentum, d) : b;
        param[i] = fmaf(d, neg_lr, param[i]);
    }
}

void sgd_cpu_step(lm_opt_params *p, float *momentum_buffer, const sgd_hparams *h, const lm_step_state *state) {
    if (state->bad_step != 0) return; /* the run diverged: change nothing */
    sgd_job job = {
        .param = p->set.params,
        .buf = momentum_buffer,
        .grad = p->set.grads,
        .grad_scale = state->clip_scale,
        .neg_lr = (float)-state->lr,
        .momentum = h->momentum,
        .one_minus_dampening = h->one_minus_dampening,
        .weight_decay = h->weight_decay,
        .nesterov = h->nesterov,
        /* torch creates the buffer from the gradient when it has none: at
         * the first update of a run (a resumed run loads it instead). */
        .first = state->step == 0,
    };
    lm_opt_cpu_for_ranges(p, sgd_task, &job);
}

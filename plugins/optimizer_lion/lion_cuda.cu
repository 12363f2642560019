/* Lion on the GPU: lion_cpu.c's operations in the same order, with explicit
 * round-to-nearest intrinsics where the CPU rounds each operation (nvcc
 * would fuse a·b + c otherwise) and FMAs where torch uses one, so that the
 * two devices agree bit for bit.  The kernel reads lr, clip_scale and
 * bad_step from the step state in device memory. */
#include <cuda_runtime.h>

#include "lion.h"

__global__ void lion_kernel(float *param, const float *grad, float *m, size_t begin, size_t end, lion_hparams h,
                            int decay, const lm_step_state *state) {
    if (state->bad_step != 0) return; /* the run diverged: change nothing */
    const float grad_scale = state->clip_scale;
    const float neg_lr = (float)-state->lr;
    const int apply_decay = decay && h.weight_decay != 0.0;
    /* 1 - lr·wd in double, rounded once (no FMA), as on the host. */
    const float decay_factor = (float)__dsub_rn(1.0, __dmul_rn(state->lr, h.weight_decay));
    for (size_t i = begin + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < end;
         i += (size_t)gridDim.x * blockDim.x) {
        const float g = __fmul_rn(grad[i], grad_scale);
        const float p = apply_decay ? __fmul_rn(param[i], decay_factor) : param[i];
        const float c = __fmaf_rn(g, h.one_minus_beta1, __fmul_rn(m[i], h.beta1));
        const float sign = (float)((c > 0.0f) - (c < 0.0f));
        param[i] = __fmaf_rn(sign, neg_lr, p);
        m[i] = __fmaf_rn(g, h.one_minus_beta2, __fmul_rn(m[i], h.beta2));
    }
}

extern "C" void lion_cuda_step(lm_opt_params *p, float *exp_avg, const lion_hparams *h, const lm_step_state *state) {
    lm_opt_cuda_use(p->dev);
    cudaStream_t stream = (cudaStream_t)p->dev->stream;
    for (size_t r = 0; r < p->n_ranges; r++) {
        const lm_opt_range *range = &p->ranges[r];
        lion_kernel<<<lm_opt_cuda_grid(range->end - range->begin), LM_OPT_CUDA_BLOCK, 0, stream>>>(
            p->set.params, (const float *)p->set.grads, exp_avg, range->begin, range->end, *h, range->decay, state);
    }
    lm_opt_cuda_check_launch(p->dev, "optimizer 'lion' (the update)");
}

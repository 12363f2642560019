/* torch.optim.SGD on the GPU: sgd_cpu.c's operations in the same order,
 * with explicit round-to-nearest intrinsics where the CPU rounds each
 * operation (nvcc would fuse a·b + c otherwise) and FMAs where torch uses
 * one, so that the two devices agree bit for bit.  The kernel reads lr,
 * step, clip_scale and bad_step from the step state in device memory. */
#include <cuda_runtime.h>

#include "sgd.h"

__global__ void sgd_kernel(float *param, const float *grad, float *buf, size_t begin, size_t end, sgd_hparams h,
                           int decay, const lm_step_state *state) {
    if (state->bad_step != 0) return; /* the run diverged: change nothing */
    const float grad_scale = state->clip_scale;
    const float neg_lr = (float)-state->lr;
    const float weight_decay = decay ? h.weight_decay : 0.0f;
    const int first = state->step == 0;
    for (size_t i = begin + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < end;
         i += (size_t)gridDim.x * blockDim.x) {
        float d = __fmul_rn(grad[i], grad_scale);
        if (weight_decay != 0.0f) d = __fmaf_rn(param[i], weight_decay, d);
        if (buf) {
            const float b = first ? d : __fmaf_rn(d, h.one_minus_dampening, __fmul_rn(buf[i], h.momentum));
            buf[i] = b;
            d = h.nesterov ? __fmaf_rn(b, h.momentum, d) : b;
        }
        param[i] = __fmaf_rn(d, neg_lr, param[i]);
    }
}

extern "C" void sgd_cuda_step(lm_opt_params *p, float *momentum_buffer, const sgd_hparams *h,
                              const lm_step_state *state) {
    lm_opt_cuda_use(p->dev);
    cudaStream_t stream = (cudaStream_t)p->dev->stream;
    float *buf = momentum_buffer;
    for (size_t r = 0; r < p->n_ranges; r++) {
        const lm_opt_range *range = &p->ranges[r];
        sgd_kernel<<<lm_opt_cuda_grid(range->end - range->begin), LM_OPT_CUDA_BLOCK, 0, stream>>>(
            p->set.params, (const float *)p->set.grads, buf, range->begin, range->end, *h, range->decay, state);
    }
    lm_opt_cuda_check_launch(p->dev, "optimizer 'sgd' (the update)");
}

/* torch.optim.AdamW on the GPU: the CPU kernel's operation order
 * (adamw_cpu.c), one grid-stride kernel per weight-decay range, each one
 * pass over its parameters with float4 loads and stores.
 *
 * The kernel reads lr, step, clip_scale and bad_step from the step state in
 * device memory, so the host queues it without knowing them (a captured
 * CUDA graph replays it with each step's values).  Thread 0 of each block
 * computes the scalars in double, as the CPU does on the host, with
 * explicit round-to-nearest intrinsics (nvcc would otherwise fuse
 * 1 - lr·wd into one FMA); the bias corrections use the device's pow, which
 * can differ from glibc's in the last bit of a double: rounded to float,
 * the scalars agree except in the rarest cases.  In the element loop,
 * explicit intrinsics keep nvcc from fusing a·b + c where the CPU (built
 * with -ffp-contract=off) rounds twice, so the two agree bit for bit; the
 * lerp is an FMA on both, as in torch. */
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "adamw.h"

struct adamw_scalars {
    float decay, lerp_weight, beta2, one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps, grad_scale;
    int apply_decay, scale_grad, skip;
};

/* adamw_scalars_for (adamw_cpu.c) with the step's values read on the device. */
__device__ static adamw_scalars adamw_scalars_from_state(const lm_step_state *state, adamw_hparams h, int decay) {
    adamw_scalars s;
    const float lr = (float)state->lr;
    const float weight_decay = decay ? h.weight_decay : 0.0f;
    const double step = (double)(state->step + 1);
    const double bias_correction1 = __dsub_rn(1.0, pow((double)h.beta1, step));
    const double bias_correction2 = __dsub_rn(1.0, pow((double)h.beta2, step));
    s.decay = (float)__dsub_rn(1.0, __dmul_rn((double)lr, (double)weight_decay));
    s.lerp_weight = (float)__dsub_rn(1.0, (double)h.beta1);
    s.beta2 = h.beta2;
    s.one_minus_beta2 = (float)__dsub_rn(1.0, (double)h.beta2);
    s.neg_step_size = (float)-__ddiv_rn((double)lr, bias_correction1);
    s.bias_correction2_sqrt = (float)pow(bias_correction2, 0.5);
    s.eps = h.eps;
    s.grad_scale = state->clip_scale;
    s.apply_decay = weight_decay != 0.0f;
    s.scale_grad = state->clip_scale != 1.0f;
    s.skip = state->bad_step != 0;
    return s;
}

/* One element's update (the CPU's order of operations). */
__device__ __forceinline__ void adamw_element(float &param, float grad, float &m, float &v, const adamw_scalars &s) {
    const float g = s.scale_grad ? __fmul_rn(grad, s.grad_scale) : grad;
    const float p = s.apply_decay ? __fmul_rn(param, s.decay) : param;
    const float mi = fmaf(s.lerp_weight, __fsub_rn(g, m), m);
    const float vi = __fadd_rn(__fmul_rn(v, s.beta2), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bias_correction2_sqrt), s.eps);
    param = __fadd_rn(p, __fdiv_rn(__fmul_rn(s.neg_step_size, mi), denom));
    m = mi;
    v = vi;
}

/* One pass over [begin, end): float4 loads and stores over the aligned
 * middle when `vectorised` (the four buffers 16-byte aligned: element i is
 * then aligned in all of them alike), the at most 3 + 3 elements before and
 * after it one by one; every element scalar otherwise.  The same
 * arithmetic per element either way. */
__global__ void adamw_kernel(float *param, const float *grad, float *m, float *v, size_t begin, size_t end,
                             adamw_hparams h, int decay, const lm_step_state *state, bool vectorised) {
    __shared__ adamw_scalars shared;
    if (threadIdx.x == 0) shared = adamw_scalars_from_state(state, h, decay);
    __syncthreads();
    const adamw_scalars s = shared;
    if (s.skip) return; /* the run diverged: change nothing */
    const size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    size_t body_begin = end, body_end = end;
    if (vectorised) {
        body_begin = begin + 3 < end ? (begin + 3) & ~(size_t)3 : end;
        body_end = body_begin + (end - body_begin) / 4 * 4;
        for (size_t q = body_begin / 4 + tid; q < body_end / 4; q += stride) {
            float4 p4 = ((float4 *)param)[q], m4 = ((float4 *)m)[q], v4 = ((float4 *)v)[q];
            const float4 g4 = ((const float4 *)grad)[q];
            adamw_element(p4.x, g4.x, m4.x, v4.x, s);
            adamw_element(p4.y, g4.y, m4.y, v4.y, s);
            adamw_element(p4.z, g4.z, m4.z, v4.z, s);
            adamw_element(p4.w, g4.w, m4.w, v4.w, s);
            ((float4 *)param)[q] = p4;
            ((float4 *)m)[q] = m4;
            ((float4 *)v)[q] = v4;
        }
    }
    /* The head [begin, body_begin) and the tail [body_end, end). */
    const size_t head = body_begin - begin, scalar = head + (end - body_end);
    for (size_t j = tid; j < scalar; j += stride) {
        const size_t i = j < head ? begin + j : body_end + (j - head);
        adamw_element(param[i], grad[i], m[i], v[i], s);
    }
}

static bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

extern "C" void adamw_cuda_step(lm_opt_params *p, float *exp_avg, float *exp_avg_sq, const adamw_hparams *h,
                                const lm_step_state *state) {
    lm_opt_cuda_use(p->dev);
    cudaStream_t stream = (cudaStream_t)p->dev->stream;
    const bool vectorised =
        aligned16(p->set.params) && aligned16(p->set.grads) && aligned16(exp_avg) && aligned16(exp_avg_sq);
    for (size_t r = 0; r < p->n_ranges; r++) {
        const lm_opt_range *range = &p->ranges[r];
        const size_t n = range->end - range->begin;
        adamw_kernel<<<lm_opt_cuda_grid(vectorised ? n / 4 + 6 : n), LM_OPT_CUDA_BLOCK, 0, stream>>>(
            p->set.params, (const float *)p->set.grads, exp_avg, exp_avg_sq, range->begin, range->end, *h,
            range->decay, state, vectorised);
    }
    lm_opt_cuda_check_launch(p->dev, "optimizer 'adamw' (the update)");
}

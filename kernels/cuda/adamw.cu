/* torch.optim.AdamW (single-tensor path), one kernel over the flat
 * parameter range, with the CPU twin's operation order (kernels/cpu/adamw.c)
 * and scalars computed in double on the host as Python does.  Explicit
 * round-to-nearest intrinsics keep nvcc from fusing a·b + c into one FMA
 * where the CPU (built with -ffp-contract=off) rounds twice, so the two
 * agree bit for bit; the lerp is an FMA on both, as in torch. */
#include <math.h>

#include "cuda_common.cuh"

struct lm_adamw_scalars {
    float decay, lerp_weight, beta2, one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps, grad_scale;
    int apply_decay, scale_grad;
};

__global__ void lm_adamw_kernel(float *param, const float *grad, float *m, float *v, size_t n, lm_adamw_scalars s) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float g = s.scale_grad ? __fmul_rn(grad[i], s.grad_scale) : grad[i];
        const float p = s.apply_decay ? __fmul_rn(param[i], s.decay) : param[i];
        const float mi = fmaf(s.lerp_weight, __fsub_rn(g, m[i]), m[i]);
        const float vi = __fadd_rn(__fmul_rn(v[i], s.beta2), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
        const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bias_correction2_sqrt), s.eps);
        param[i] = __fadd_rn(p, __fdiv_rn(__fmul_rn(s.neg_step_size, mi), denom));
        m[i] = mi;
        v[i] = vi;
    }
}

extern "C" void lm_cuda_adamw(lm_cuda_ctx *ctx, float *param, const float *grad, float *m, float *v, size_t n,
                              float lr, float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                              int64_t t) {
    if (n == 0) return;
    const double step = (double)t;
    const double bias_correction1 = 1.0 - pow((double)beta1, step);
    const double bias_correction2 = 1.0 - pow((double)beta2, step);
    lm_adamw_scalars s;
    s.decay = (float)(1.0 - (double)lr * (double)weight_decay);
    s.lerp_weight = (float)(1.0 - (double)beta1);
    s.beta2 = beta2;
    s.one_minus_beta2 = (float)(1.0 - (double)beta2);
    s.neg_step_size = (float)-((double)lr / bias_correction1);
    s.bias_correction2_sqrt = (float)pow(bias_correction2, 0.5);
    s.eps = eps;
    s.grad_scale = grad_scale;
    s.apply_decay = weight_decay != 0.0f;
    s.scale_grad = grad_scale != 1.0f;
    lm_adamw_kernel<<<lm_cuda_grid_for(n, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(param, grad, m, v, n, s);
    lm_cuda_check_launch(ctx, "adamw");
}

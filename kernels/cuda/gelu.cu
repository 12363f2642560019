/* GELU, both Hugging Face flavours, with the CPU twin's formulas
 * (kernels/cpu/gelu.c):
 *   approx_tanh = 1 ("gelu_new", GPT-2): x·σ(2u), u = √(2/π)(x + 0.044715x³)
 *     (= 0.5·x·(1 + tanh u), one exp, no cancellation for large negative x)
 *   approx_tanh = 0 ("gelu", BERT): 0.5·x·(1 + erf(x/√2)). */
#include "cuda_common.cuh"

#define LM_SQRT_2_OVER_PI 0.7978845608028654f
#define LM_GELU_CUBIC 0.044715f
#define LM_INV_SQRT_2 0.70710678118654752f
#define LM_INV_SQRT_2PI 0.39894228040143268f

__global__ void lm_gelu_forward_kernel(float *out, const float *inp, size_t n, int approx_tanh) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float x = inp[i];
        if (approx_tanh) {
            const float u = LM_SQRT_2_OVER_PI * (x + LM_GELU_CUBIC * x * x * x);
            out[i] = x / (1.0f + expf(-2.0f * u));
        } else {
            out[i] = 0.5f * x * (1.0f + erff(x * LM_INV_SQRT_2));
        }
    }
}

__global__ void lm_gelu_backward_kernel(float *dinp, const float *inp, const float *dout, size_t n, int approx_tanh) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float x = inp[i];
        float grad;
        if (approx_tanh) {
            /* g + 2·x·g·(1-g)·u' with g = σ(2u), since 1 - tanh²u = 4·g·(1-g) */
            const float x2 = x * x;
            const float u = LM_SQRT_2_OVER_PI * (x + LM_GELU_CUBIC * x2 * x);
            const float du = LM_SQRT_2_OVER_PI * (1.0f + 3.0f * LM_GELU_CUBIC * x2);
            const float g = 1.0f / (1.0f + expf(-2.0f * u));
            grad = g + 2.0f * x * g * (1.0f - g) * du;
        } else {
            /* Φ(x) + x·φ(x) */
            const float cdf = 0.5f * (1.0f + erff(x * LM_INV_SQRT_2));
            const float pdf = LM_INV_SQRT_2PI * expf(-0.5f * x * x);
            grad = cdf + x * pdf;
        }
        dinp[i] += dout[i] * grad;
    }
}

extern "C" void lm_cuda_gelu_forward(lm_cuda_ctx *ctx, float *out, const float *inp, size_t n, int approx_tanh) {
    if (n == 0) return;
    lm_gelu_forward_kernel<<<lm_cuda_grid_for(n, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(out, inp, n,
                                                                                                 approx_tanh);
    lm_cuda_check_launch(ctx, "gelu_forward");
}

extern "C" void lm_cuda_gelu_backward(lm_cuda_ctx *ctx, float *dinp, const float *inp, const float *dout, size_t n,
                                      int approx_tanh) {
    if (n == 0) return;
    lm_gelu_backward_kernel<<<lm_cuda_grid_for(n, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(dinp, inp, dout, n,
                                                                                                  approx_tanh);
    lm_cuda_check_launch(ctx, "gelu_backward");
}

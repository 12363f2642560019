/* Internal to kernels/cuda: GELU and its derivative per element, both
 * Hugging Face flavours, with the CPU twin's formulas (kernels/cpu/gelu.c):
 *   approx_tanh = 1 ("gelu_new", GPT-2): x·σ(2u), u = √(2/π)(x + 0.044715x³)
 *     (= 0.5·x·(1 + tanh u), one exp, no cancellation for large negative x)
 *   approx_tanh = 0 ("gelu", BERT): 0.5·x·(1 + erf(x/√2)).
 * One copy for the fp32 ops (gelu.cu) and the bf16-storage ops
 * (gelu_bf16.cu), so that the bf16 ops' values are the fp32 kernels' on the
 * widened inputs, rounded once (backend_ops.def). */
#ifndef LM_CUDA_GELU_MATH_CUH
#define LM_CUDA_GELU_MATH_CUH

#define LM_SQRT_2_OVER_PI 0.7978845608028654f
#define LM_GELU_CUBIC 0.044715f
#define LM_INV_SQRT_2 0.70710678118654752f
#define LM_INV_SQRT_2PI 0.39894228040143268f

__device__ __forceinline__ float lm_gelu(float x, int approx_tanh) {
    if (approx_tanh) {
        const float u = LM_SQRT_2_OVER_PI * (x + LM_GELU_CUBIC * x * x * x);
        return x / (1.0f + expf(-2.0f * u));
    }
    return 0.5f * x * (1.0f + erff(x * LM_INV_SQRT_2));
}

__device__ __forceinline__ float lm_gelu_grad(float x, int approx_tanh) {
    if (approx_tanh) {
        /* g + 2·x·g·(1-g)·u' with g = σ(2u), since 1 - tanh²u = 4·g·(1-g) */
        const float x2 = x * x;
        const float u = LM_SQRT_2_OVER_PI * (x + LM_GELU_CUBIC * x2 * x);
        const float du = LM_SQRT_2_OVER_PI * (1.0f + 3.0f * LM_GELU_CUBIC * x2);
        const float g = 1.0f / (1.0f + expf(-2.0f * u));
        return g + 2.0f * x * g * (1.0f - g) * du;
    }
    /* Φ(x) + x·φ(x) */
    const float cdf = 0.5f * (1.0f + erff(x * LM_INV_SQRT_2));
    const float pdf = LM_INV_SQRT_2PI * expf(-0.5f * x * x);
    return cdf + x * pdf;
}

/* The pointwise maps' ops (pointwise_map.cuh), whatever the stored types. */
struct lm_gelu_forward_op {
    int approx_tanh;
    static const bool reads_out = false;
    __device__ float operator()(float x, float, float, size_t) const { return lm_gelu(x, approx_tanh); }
};

/* dinp = dout · gelu'(inp), written (backend_ops.def): x = inp, y = dout;
 * dinp is never read, so it may be dout itself (fp32). */
struct lm_gelu_backward_op {
    int approx_tanh;
    static const bool reads_out = false;
    __device__ float operator()(float x, float dout, float, size_t) const { return dout * lm_gelu_grad(x, approx_tanh); }
};

#endif

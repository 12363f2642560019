/* LayerNorm over the last dimension, one warp per row (rows of a few
 * thousand floats stay in L1 across the passes).  Backward: dinp per row;
 * dweight/dbias through the deterministic column reduction. */
#include "column_reduce.cuh"

#define LM_LN_ROWS_PER_BLOCK (LM_CUDA_BLOCK / 32)

__global__ void lm_layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp,
                                            const float *weight, const float *bias, int N, int C, float eps) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * LM_LN_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N) return;
    const float *x = inp + (size_t)row * C;
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) sum += x[c];
    const float m = lm_warp_sum(sum) / C;
    float sq = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float d = x[c] - m;
        sq += d * d;
    }
    const float s = 1.0f / sqrtf(lm_warp_sum(sq) / C + eps);
    float *o = out + (size_t)row * C;
    for (int c = lane; c < C; c += 32) {
        const float n = (x[c] - m) * s;
        o[c] = n * weight[c] + bias[c];
    }
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = s;
    }
}

/* dinp += (g - mean(g) - x̂·mean(g·x̂)) · rstd with g = dout·weight. */
__global__ void lm_layernorm_backward_input_kernel(float *dinp, const float *dout, const float *inp,
                                                   const float *weight, const float *mean, const float *rstd, int N,
                                                   int C) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * LM_LN_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N) return;
    const float *x = inp + (size_t)row * C;
    const float *dy = dout + (size_t)row * C;
    const float m = mean[row], s = rstd[row];
    float g_sum = 0.0f, gx_sum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float xhat = (x[c] - m) * s;
        const float g = weight[c] * dy[c];
        g_sum += g;
        gx_sum += g * xhat;
    }
    const float g_mean = lm_warp_sum(g_sum) / C;
    const float gx_mean = lm_warp_sum(gx_sum) / C;
    float *dx = dinp + (size_t)row * C;
    for (int c = lane; c < C; c += 32) {
        const float xhat = (x[c] - m) * s;
        const float g = weight[c] * dy[c];
        dx[c] += (g - g_mean - xhat * gx_mean) * s;
    }
}

/* Column values for dweight (dout·x̂) and dbias (dout). */
struct lm_layernorm_param_grads {
    const float *dout, *inp, *mean, *rstd;
    int C;
    __device__ void operator()(int r, int c, float (&v)[2]) const {
        const size_t i = (size_t)r * C + c;
        v[0] = dout[i] * ((inp[i] - mean[r]) * rstd[r]);
        v[1] = dout[i];
    }
};

extern "C" void lm_cuda_layernorm_forward(lm_cuda_ctx *ctx, float *out, float *mean, float *rstd, const float *inp,
                                          const float *weight, const float *bias, int N, int C, float eps) {
    if (N <= 0 || C <= 0) return;
    const int blocks = (N + LM_LN_ROWS_PER_BLOCK - 1) / LM_LN_ROWS_PER_BLOCK;
    lm_layernorm_forward_kernel<<<blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(out, mean, rstd, inp, weight, bias, N, C,
                                                                          eps);
    lm_cuda_check_launch(ctx, "layernorm_forward");
}

extern "C" void lm_cuda_layernorm_backward(lm_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                           const float *dout, const float *inp, const float *weight,
                                           const float *mean, const float *rstd, int N, int C) {
    if (N <= 0 || C <= 0) return;
    if (dinp) {
        const int blocks = (N + LM_LN_ROWS_PER_BLOCK - 1) / LM_LN_ROWS_PER_BLOCK;
        lm_layernorm_backward_input_kernel<<<blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(dinp, dout, inp, weight, mean,
                                                                                     rstd, N, C);
        lm_cuda_check_launch(ctx, "layernorm_backward");
    }
    lm_column_outputs<2> outs = {{dweight, dbias}};
    lm_layernorm_param_grads value = {dout, inp, mean, rstd, C};
    lm_column_reduce<2>(ctx, "layernorm_backward (parameter gradients)", outs, value, N, C);
}

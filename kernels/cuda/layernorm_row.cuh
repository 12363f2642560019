/* Internal to kernels/cuda: one LayerNorm row normalised by one warp, after
 * the lanes have summed their columns (c = lane, lane + 32, ...).  Shared by
 * layernorm_forward (layernorm.cu) and the fused residual + LayerNorm
 * (residual_layernorm.cu), so that both give the same bits: a step that
 * recomputes a LayerNorm with the plain op in backward (recompute=) gets
 * what the fused forward wrote. */
#ifndef LM_CUDA_LAYERNORM_ROW_CUH
#define LM_CUDA_LAYERNORM_ROW_CUH

#include "cuda_common.cuh"

/* x: the row (read again: it is in L1); lane_sum: this lane's Σ x[c] over
 * its columns in ascending c.  Writes o[0..C), and mean/rstd[row] when not
 * NULL.  Two passes (mean, then squared deviations), as the CPU. */
__device__ __forceinline__ void lm_layernorm_row(float *o, float *mean, float *rstd, const float *x,
                                                 const float *weight, const float *bias, int C, float eps,
                                                 float lane_sum, int lane, int row) {
    const float m = lm_warp_sum(lane_sum) / C;
    float sq = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float d = x[c] - m;
        sq += d * d;
    }
    const float s = 1.0f / sqrtf(lm_warp_sum(sq) / C + eps);
    for (int c = lane; c < C; c += 32) {
        const float n = (x[c] - m) * s;
        o[c] = n * weight[c] + bias[c];
    }
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = s;
    }
}

#endif

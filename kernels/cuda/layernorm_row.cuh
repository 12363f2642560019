/* Internal to kernels/cuda: one LayerNorm row normalised by one warp, after
 * the lanes have summed their columns (c = lane, lane + 32, ...).  Shared by
 * layernorm_forward (layernorm.cu) and the fused residual + LayerNorm
 * (residual_layernorm.cu), so that both give the same bits: a step that
 * recomputes a LayerNorm with the plain op in backward (recompute=) gets
 * what the fused forward wrote; and by their bf16-output twins
 * (layernorm_forward_bf16, residual_layernorm_forward_bf16), which store
 * the same values through another output type. */
#ifndef LM_CUDA_LAYERNORM_ROW_CUH
#define LM_CUDA_LAYERNORM_ROW_CUH

#include "act_storage.cuh"
#include "cuda_common.cuh"

/* Where a row's normalised values go, in the stored type(s) (kernels/
 * backend_ops.def: layernorm_forward_bf16): `row(base)` is the output of
 * the row starting at element base, `store(c, y)` writes its value c, each
 * through act_storage.cuh (a float: a plain store; a bf16: kernels/bf16.h's
 * rounding).  Every value is computed once in fp32 and each output written
 * from it, so a bf16 output is the fp32 one rounded once.  The float
 * output's row() and store() are the pointer arithmetic and the store that
 * the fp32 kernels had written out: their machine code is unchanged
 * (NOTES_bf16_storage.md, point 10). */
template <typename T> struct lm_ln_out {
    T *p;
    __device__ __forceinline__ lm_ln_out row(size_t base) const { return {p + base}; }
    __device__ __forceinline__ void store(int c, float y) const { lm_store_act(p + c, y); }
};
/* Both: the fp32 output (BERT's post-LN residual input) and its bf16 twin. */
struct lm_ln_out_fp32_bf16 {
    float *p;
    uint16_t *p_bf16;
    __device__ __forceinline__ lm_ln_out_fp32_bf16 row(size_t base) const { return {p + base, p_bf16 + base}; }
    __device__ __forceinline__ void store(int c, float y) const {
        lm_store_act(p + c, y);
        lm_store_act(p_bf16 + c, y);
    }
};

/* x: the row (read again: it is in L1); lane_sum: this lane's Σ x[c] over
 * its columns in ascending c.  Writes o's row (o.row(...) of the caller),
 * and mean/rstd[row] when not NULL.  Two passes (mean, then squared
 * deviations), as the CPU. */
template <typename Out>
__device__ __forceinline__ void lm_layernorm_row(Out o, float *mean, float *rstd, const float *x, const float *weight,
                                                 const float *bias, int C, float eps, float lane_sum, int lane,
                                                 int row) {
    const float m = lm_warp_sum(lane_sum) / C;
    float sq = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float d = x[c] - m;
        sq += d * d;
    }
    const float s = 1.0f / sqrtf(lm_warp_sum(sq) / C + eps);
    for (int c = lane; c < C; c += 32) {
        const float n = (x[c] - m) * s;
        o.store(c, n * weight[c] + bias[c]);
    }
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = s;
    }
}

#endif

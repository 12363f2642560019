/* residual = a + dropout(branch), then LayerNorm of it, one warp per row in
 * one kernel: the fused twin of dropout_forward + residual_forward +
 * layernorm_forward (kernels/cpu/residual_layernorm.c), which cost three
 * kernels and four more [N, C] passes through memory.
 *
 * Bits: the residual is the unfused ops' (the product branch·multiplier is
 * rounded before the add, __fmul_rn keeping nvcc from contracting it into
 * an FMA that the separate kernels could not form), and the LayerNorm part
 * is layernorm_forward's code (layernorm_row.cuh), with the lanes' sums
 * taken while the residual is written, in the same order.  The bf16 op
 * (residual_layernorm_forward_bf16) is the same row with the LayerNorm's
 * output stored in bf16 (and in fp32 when asked). */
#include <stdio.h>

#include "dropout_multiplier.cuh"
#include "layernorm_row.cuh"

#define LM_RLN_ROWS_PER_BLOCK (LM_CUDA_BLOCK / 32)

/* What happens to the branch: p <= 0, 0 < p < 1, p >= 1. */
enum { LM_RLN_KEEP_ALL = 0, LM_RLN_DRAW = 1, LM_RLN_ALL_DROPPED = 2 };

/* One warp's row, its LayerNorm into `out` of any stored type(s)
 * (layernorm_row.cuh's lm_ln_out). */
template <typename Out>
__device__ __forceinline__ void residual_layernorm_warp_row(float *residual, Out out, float *mean, float *rstd,
                                                            const float *a, const float *branch, const float *weight,
                                                            const float *bias, int N, int C, float eps, int drop,
                                                            float p, float scale, const lm_step_state *key,
                                                            int site) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * LM_RLN_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N) return;
    const size_t base = (size_t)row * C;
    float *r = residual + base;
    float sum = 0.0f;
    if (drop == LM_RLN_DRAW) {
        const lm_dropout_key k = lm_dropout_key_load(key, site);
        for (int c = lane; c < C; c += 32) {
            const float kept = __fmul_rn(branch[base + c], lm_dropout_multiplier(k.seed, k.stream, base + c, p, scale));
            const float v = __fadd_rn(a[base + c], kept);
            r[c] = v;
            sum += v;
        }
    } else {
        for (int c = lane; c < C; c += 32) {
            /* All dropped: a + the zeros dropout_forward would have written. */
            const float v = drop == LM_RLN_ALL_DROPPED ? a[base + c] + 0.0f : a[base + c] + branch[base + c];
            r[c] = v;
            sum += v;
        }
    }
    /* The lane reads back only what it wrote: no barrier needed. */
    lm_layernorm_row(out.row(base), mean, rstd, r, weight, bias, C, eps, sum, lane, row);
}

/* The fp32 op's kernel keeps its name and parameters (and its machine
 * code: NOTES_bf16_storage.md, point 10). */
__global__ void lm_residual_layernorm_forward_kernel(float *residual, float *out, float *mean, float *rstd,
                                                     const float *a, const float *branch, const float *weight,
                                                     const float *bias, int N, int C, float eps, int drop,
                                                     float p, float scale, const lm_step_state *key, int site) {
    residual_layernorm_warp_row(residual, lm_ln_out<float>{out}, mean, rstd, a, branch, weight, bias, N, C, eps, drop,
                                p, scale, key, site);
}

/* residual_layernorm_forward_bf16: Out is lm_ln_out<uint16_t> (bf16 only)
 * or lm_ln_out_fp32_bf16 (both). */
template <typename Out>
__global__ void lm_residual_layernorm_forward_bf16_kernel(float *residual, Out out, float *mean, float *rstd,
                                                          const float *a, const float *branch, const float *weight,
                                                          const float *bias, int N, int C, float eps, int drop,
                                                          float p, float scale, const lm_step_state *key, int site) {
    residual_layernorm_warp_row(residual, out, mean, rstd, a, branch, weight, bias, N, C, eps, drop, p, scale, key,
                                site);
}

/* What the host decides for both ops: the branch's fate, the scale, the
 * grid; false (a failure kept under `op`) for a draw without a key. */
struct residual_layernorm_launch {
    int drop, blocks;
    float scale;
};

static bool residual_layernorm_plan(lm_cuda_ctx *ctx, const char *op, int N, float p, const lm_step_state *key,
                                    residual_layernorm_launch *plan) {
    plan->drop = p <= 0.0f ? LM_RLN_KEEP_ALL : p >= 1.0f ? LM_RLN_ALL_DROPPED : LM_RLN_DRAW;
    if (plan->drop == LM_RLN_DRAW && !key) {
        char reason[160];
        snprintf(reason, sizeof reason, "dropout p=%g needs the step state (its key), and none was given", (double)p);
        lm_cuda_ctx_keep_error(ctx, op, reason);
        return false;
    }
    plan->scale = plan->drop == LM_RLN_DRAW ? 1.0f / (1.0f - p) : 0.0f;
    plan->blocks = (N + LM_RLN_ROWS_PER_BLOCK - 1) / LM_RLN_ROWS_PER_BLOCK;
    return true;
}

extern "C" void lm_cuda_residual_layernorm_forward(lm_cuda_ctx *ctx, float *residual, float *out, float *mean,
                                                   float *rstd, const float *a, const float *branch,
                                                   const float *weight, const float *bias, int N, int C, float eps,
                                                   float p, const lm_step_state *key, int site) {
    if (N <= 0 || C <= 0) return;
    residual_layernorm_launch plan;
    if (!residual_layernorm_plan(ctx, "residual_layernorm_forward", N, p, key, &plan)) return;
    lm_residual_layernorm_forward_kernel<<<plan.blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(
        residual, out, mean, rstd, a, branch, weight, bias, N, C, eps, plan.drop, p, plan.scale, key, site);
    lm_cuda_check_launch(ctx, "residual_layernorm_forward");
}

extern "C" void lm_cuda_residual_layernorm_forward_bf16(lm_cuda_ctx *ctx, float *residual, uint16_t *out_bf16,
                                                        float *out, float *mean, float *rstd, const float *a,
                                                        const float *branch, const float *weight, const float *bias,
                                                        int N, int C, float eps, float p, const lm_step_state *key,
                                                        int site) {
    if (N <= 0 || C <= 0) return;
    residual_layernorm_launch plan;
    if (!residual_layernorm_plan(ctx, "residual_layernorm_forward_bf16", N, p, key, &plan)) return;
    if (out)
        lm_residual_layernorm_forward_bf16_kernel<lm_ln_out_fp32_bf16><<<plan.blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(
            residual, lm_ln_out_fp32_bf16{out, out_bf16}, mean, rstd, a, branch, weight, bias, N, C, eps, plan.drop,
            p, plan.scale, key, site);
    else
        lm_residual_layernorm_forward_bf16_kernel<lm_ln_out<uint16_t>><<<plan.blocks, LM_CUDA_BLOCK, 0, ctx->stream>>>(
            residual, lm_ln_out<uint16_t>{out_bf16}, mean, rstd, a, branch, weight, bias, N, C, eps, plan.drop, p,
            plan.scale, key, site);
    lm_cuda_check_launch(ctx, "residual_layernorm_forward_bf16");
}

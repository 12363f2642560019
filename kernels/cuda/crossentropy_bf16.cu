/* The loss ops on bf16 logits (crossentropy_*_bf16; the CPU twins are
 * kernels/cpu/crossentropy_bf16.c): crossentropy.cu's kernels with every
 * logit widened as it is read and every gradient rounded once as it is
 * written (kernels/bf16.h).  One block per row; the max and the sum of
 * exps (in double) are two reductions, then the write pass: three reads of
 * a row of half the fp32 bytes.  Not tuned yet (no bf16x2 loads, no online
 * softmax as crossentropy_forward_backward.cu has): kernels/cuda/NOTES.md
 * says what the profile must show first.  Rows lie `stride` elements apart;
 * in place, the padding columns are written 0. */
#include <math.h>

#include "bf16.h"
#include "cuda_common.cuh"

#define LM_CE_BF16_BLOCK 512

/* Row max and Σ exp(x - max) over the block, x widened from bf16. */
__device__ void lm_softmax_row_stats_bf16(const uint16_t *x, int V, float *max_out, double *sum_out) {
    __shared__ float shared_max[32];
    __shared__ double shared_sum[32];
    float m = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, lm_bf16_to_float(x[j]));
    m = lm_block_max(m, shared_max);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) sum += expf(lm_bf16_to_float(x[j]) - m);
    *sum_out = lm_block_sum<double>((double)sum, shared_sum);
    *max_out = m;
}

__global__ void lm_crossentropy_forward_bf16_kernel(float *losses, const uint16_t *logits, const int32_t *labels,
                                                    int V, int stride) {
    const size_t row = blockIdx.x;
    const int32_t label = labels[row];
    if (label < 0 || label >= V) { /* uniform across the block */
        if (threadIdx.x == 0) losses[row] = 0.0f;
        return;
    }
    const uint16_t *x = logits + row * (size_t)stride;
    float m;
    double sum;
    lm_softmax_row_stats_bf16(x, V, &m, &sum);
    if (threadIdx.x == 0) losses[row] = (float)(log(sum) + (double)m - (double)lm_bf16_to_float(x[label]));
}

/* The backward, and with losses non-NULL the fused forward_backward (the
 * loss from the same stats; always in place then). */
__global__ void lm_crossentropy_backward_bf16_kernel(float *losses, uint16_t *dlogits, const uint16_t *logits,
                                                     const int32_t *labels, float loss_scale,
                                                     const int64_t *n_targets, int V, int stride, int in_place) {
    const float dloss = lm_loss_gradient_scale(loss_scale, n_targets);
    const size_t row = blockIdx.x;
    const int32_t label = labels[row];
    uint16_t *dx = dlogits + row * (size_t)stride;
    if (label < 0 || label >= V) {
        if (losses && threadIdx.x == 0) losses[row] = 0.0f;
        if (in_place)
            for (int j = threadIdx.x; j < stride; j += blockDim.x) dx[j] = 0;
        return;
    }
    const uint16_t *x = logits + row * (size_t)stride;
    if (in_place)
        for (int j = V + threadIdx.x; j < stride; j += blockDim.x) dx[j] = 0;
    /* Read before any thread overwrites the row (the stats synchronise). */
    const float label_logit = lm_bf16_to_float(x[label]);
    float m;
    double sum;
    lm_softmax_row_stats_bf16(x, V, &m, &sum);
    if (losses && threadIdx.x == 0) losses[row] = (float)(log(sum) + (double)m - (double)label_logit);
    const float inv_sum = (float)(1.0 / sum);
    const float label_prob = expf(label_logit - m) * inv_sum;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        const float g =
            j == label ? dloss * (label_prob - 1.0f) : dloss * (expf(lm_bf16_to_float(x[j]) - m) * inv_sum);
        dx[j] = lm_bf16_from_float(in_place ? g : lm_bf16_to_float(dx[j]) + g);
    }
}

extern "C" void lm_cuda_crossentropy_forward_bf16(lm_cuda_ctx *ctx, float *losses, const uint16_t *logits,
                                                  const int32_t *labels, int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_forward_bf16_kernel<<<N, LM_CE_BF16_BLOCK, 0, ctx->stream>>>(losses, logits, labels, V, stride);
    lm_cuda_check_launch(ctx, "crossentropy_forward_bf16");
}

extern "C" void lm_cuda_crossentropy_backward_bf16(lm_cuda_ctx *ctx, uint16_t *dlogits, const uint16_t *logits,
                                                   const int32_t *labels, float loss_scale, const int64_t *n_targets,
                                                   int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_backward_bf16_kernel<<<N, LM_CE_BF16_BLOCK, 0, ctx->stream>>>(
        NULL, dlogits, logits, labels, loss_scale, n_targets, V, stride, dlogits == logits);
    lm_cuda_check_launch(ctx, "crossentropy_backward_bf16");
}

extern "C" void lm_cuda_crossentropy_forward_backward_bf16(lm_cuda_ctx *ctx, float *losses, uint16_t *logits,
                                                           const int32_t *labels, float loss_scale,
                                                           const int64_t *n_targets, int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_backward_bf16_kernel<<<N, LM_CE_BF16_BLOCK, 0, ctx->stream>>>(
        losses, logits, logits, labels, loss_scale, n_targets, V, stride, 1);
    lm_cuda_check_launch(ctx, "crossentropy_forward_backward_bf16");
}

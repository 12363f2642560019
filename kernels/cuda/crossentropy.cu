/* Softmax cross-entropy over the vocabulary, one block per row, the CPU
 * twin's semantics (kernels/cpu/crossentropy.c): max-shifted log-sum-exp
 * with the sum of exps reduced in double; a label outside [0, V) (the
 * ignore index -100 in particular) scores nothing: loss 0, no gradient.
 * The backward is fused (softmax never stored) and may run in place.
 * Rows lie `stride` floats apart and only their first V columns are scored
 * (a padded vocabulary, backend_ops.def): in place, the padding columns
 * are written 0. */
#include <math.h>

#include "cuda_common.cuh"

#define LM_CE_BLOCK 512

/* Row max and Σ exp(x - max) over the block. */
__device__ void lm_softmax_row_stats(const float *x, int V, float *max_out, double *sum_out) {
    __shared__ float shared_max[32];
    __shared__ double shared_sum[32];
    float m = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, x[j]);
    m = lm_block_max(m, shared_max);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) sum += expf(x[j] - m);
    *sum_out = lm_block_sum<double>((double)sum, shared_sum);
    *max_out = m;
}

__global__ void lm_crossentropy_forward_kernel(float *losses, const float *logits, const int32_t *labels, int V,
                                               int stride) {
    const size_t row = blockIdx.x;
    const int32_t label = labels[row];
    if (label < 0 || label >= V) { /* uniform across the block */
        if (threadIdx.x == 0) losses[row] = 0.0f;
        return;
    }
    const float *x = logits + row * (size_t)stride;
    float m;
    double sum;
    lm_softmax_row_stats(x, V, &m, &sum);
    if (threadIdx.x == 0) losses[row] = (float)(log(sum) + (double)m - (double)x[label]);
}

__global__ void lm_crossentropy_backward_kernel(float *dlogits, const float *logits, const int32_t *labels,
                                                float loss_scale, const int64_t *n_targets, int V, int stride,
                                                int in_place) {
    const float dloss = lm_loss_gradient_scale(loss_scale, n_targets);
    const size_t row = blockIdx.x;
    const int32_t label = labels[row];
    float *dx = dlogits + row * (size_t)stride;
    if (label < 0 || label >= V) {
        if (in_place)
            for (int j = threadIdx.x; j < stride; j += blockDim.x) dx[j] = 0.0f;
        return;
    }
    const float *x = logits + row * (size_t)stride;
    /* The padding columns' gradient: 0 (no thread reads them). */
    if (in_place)
        for (int j = V + threadIdx.x; j < stride; j += blockDim.x) dx[j] = 0.0f;
    /* Read before any thread overwrites the row (the stats below synchronise). */
    const float label_logit = x[label];
    float m;
    double sum;
    lm_softmax_row_stats(x, V, &m, &sum);
    const float inv_sum = (float)(1.0 / sum);
    const float label_prob = expf(label_logit - m) * inv_sum;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        const float g = j == label ? dloss * (label_prob - 1.0f) : dloss * (expf(x[j] - m) * inv_sum);
        if (in_place) {
            dx[j] = g;
        } else {
            dx[j] += g;
        }
    }
}

extern "C" void lm_cuda_crossentropy_forward(lm_cuda_ctx *ctx, float *losses, const float *logits,
                                             const int32_t *labels, int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_forward_kernel<<<N, LM_CE_BLOCK, 0, ctx->stream>>>(losses, logits, labels, V, stride);
    lm_cuda_check_launch(ctx, "crossentropy_forward");
}

extern "C" void lm_cuda_crossentropy_backward(lm_cuda_ctx *ctx, float *dlogits, const float *logits,
                                              const int32_t *labels, float loss_scale, const int64_t *n_targets,
                                              int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_backward_kernel<<<N, LM_CE_BLOCK, 0, ctx->stream>>>(dlogits, logits, labels, loss_scale,
                                                                       n_targets, V, stride, dlogits == logits);
    lm_cuda_check_launch(ctx, "crossentropy_backward");
}

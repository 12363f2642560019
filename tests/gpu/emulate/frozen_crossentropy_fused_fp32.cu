/* A FROZEN COPY, for the emulator only (never built into lmkernels): the
 * fp32 fused classifier kernel of kernels/cuda/crossentropy_forward_backward.cu
 * as it was before that kernel became a template on the stored type (commit
 * e89f447), its identifiers prefixed lm_frozen_ and nothing else changed.
 * The suite `crossentropy` (emulate_crossentropy.cpp) requires the float
 * instantiation of today's kernel to give this kernel's bits, losses and
 * dlogits: the fp32 training numbers must not move when the kernel is
 * shared with bf16.  Do not edit the arithmetic below; if the fp32 kernel
 * is ever meant to change its bits, delete this file and its check. */
#include <math.h>

#include "cuda_common.cuh"

#define LM_FROZEN_CE_BLOCK 512

/* The span of a row that float4 accesses cover: [head, head + 4 * n4). */
struct lm_frozen_row_split {
    int head; /* scalar elements before the first 16-byte boundary */
    int n4;   /* float4s from there */
};

__device__ __forceinline__ lm_frozen_row_split lm_frozen_split_row(const float *x, int V) {
    const unsigned misaligned = (unsigned)((uintptr_t)x & 15u) / (unsigned)sizeof(float);
    lm_frozen_row_split s;
    s.head = misaligned == 0 ? 0 : 4 - (int)misaligned;
    if (s.head > V) s.head = V;
    s.n4 = (V - s.head) / 4;
    return s;
}

/* Folds x into the thread's running (max, Σ exp(· - max)).  -inf adds
 * nothing (exp(-inf - m) = 0, written out so that -inf - -inf never makes a
 * NaN); a NaN logit makes the sum NaN, so that it reaches the loss. */
__device__ __forceinline__ void lm_frozen_online_add(float x, float *m, float *s) {
    if (x > *m) {
        *s = *s * expf(*m - x) + 1.0f;
        *m = x;
    } else if (x != -INFINITY) {
        *s += expf(x - *m);
    }
}

__device__ __forceinline__ float lm_frozen_ce_grad(float x, int j, int label, float m, float inv_sum, float dloss,
                                            float label_grad) {
    return j == label ? label_grad : dloss * (expf(x - m) * inv_sum);
}

__global__ void lm_frozen_crossentropy_forward_backward_kernel(float *losses, float *logits, const int32_t *labels,
                                                        float loss_scale, const int64_t *n_targets, int V,
                                                        int stride) {
    const float dloss = lm_loss_gradient_scale(loss_scale, n_targets);
    __shared__ float shared_max[32];
    __shared__ double shared_sum[32];
    const size_t row = blockIdx.x;
    const int32_t label = labels[row];
    float *x = logits + row * (size_t)stride;
    if (label < 0 || label >= V) { /* uniform across the block */
        if (threadIdx.x == 0) losses[row] = 0.0f;
        for (int j = threadIdx.x; j < stride; j += blockDim.x) x[j] = 0.0f;
        return;
    }
    /* The padding columns (no pass reads them): their gradient is 0. */
    for (int j = V + threadIdx.x; j < stride; j += blockDim.x) x[j] = 0.0f;
    /* Read before any thread overwrites the row (the reductions below
     * synchronise the block before pass 2). */
    const float label_logit = x[label];
    const lm_frozen_row_split split = lm_frozen_split_row(x, V);
    const float4 *x4 = reinterpret_cast<const float4 *>(x + split.head);
    const int tail = split.head + 4 * split.n4;

    float m = -INFINITY, s = 0.0f;
    for (int j = threadIdx.x; j < split.head; j += blockDim.x) lm_frozen_online_add(x[j], &m, &s);
    for (int i = threadIdx.x; i < split.n4; i += blockDim.x) {
        const float4 v = x4[i];
        lm_frozen_online_add(v.x, &m, &s);
        lm_frozen_online_add(v.y, &m, &s);
        lm_frozen_online_add(v.z, &m, &s);
        lm_frozen_online_add(v.w, &m, &s);
    }
    for (int j = tail + threadIdx.x; j < V; j += blockDim.x) lm_frozen_online_add(x[j], &m, &s);
    const float row_max = lm_block_max(m, shared_max);
    /* A thread whose max is still -inf saw no finite logit: its s is 0
     * (nothing, or only -inf) or NaN (a NaN logit), which must not be lost
     * to exp(-inf - row_max) = 0. */
    const double mine = m == -INFINITY ? (double)s : (double)(s * expf(m - row_max));
    const double sum = lm_block_sum<double>(mine, shared_sum);

    const float inv_sum = (float)(1.0 / sum);
    const float label_prob = expf(label_logit - row_max) * inv_sum;
    const float label_grad = dloss * (label_prob - 1.0f);
    if (threadIdx.x == 0) losses[row] = (float)(log(sum) + (double)row_max - (double)label_logit);

    for (int j = threadIdx.x; j < split.head; j += blockDim.x)
        x[j] = lm_frozen_ce_grad(x[j], j, label, row_max, inv_sum, dloss, label_grad);
    float4 *g4 = reinterpret_cast<float4 *>(x + split.head);
    for (int i = threadIdx.x; i < split.n4; i += blockDim.x) {
        const float4 v = g4[i];
        const int j = split.head + 4 * i;
        float4 g;
        g.x = lm_frozen_ce_grad(v.x, j, label, row_max, inv_sum, dloss, label_grad);
        g.y = lm_frozen_ce_grad(v.y, j + 1, label, row_max, inv_sum, dloss, label_grad);
        g.z = lm_frozen_ce_grad(v.z, j + 2, label, row_max, inv_sum, dloss, label_grad);
        g.w = lm_frozen_ce_grad(v.w, j + 3, label, row_max, inv_sum, dloss, label_grad);
        g4[i] = g;
    }
    for (int j = tail + threadIdx.x; j < V; j += blockDim.x)
        x[j] = lm_frozen_ce_grad(x[j], j, label, row_max, inv_sum, dloss, label_grad);
}

extern "C" void lm_frozen_crossentropy_forward_backward(lm_cuda_ctx *ctx, float *losses, float *logits,
                                                      const int32_t *labels, float loss_scale,
                                                      const int64_t *n_targets, int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_frozen_crossentropy_forward_backward_kernel<<<N, LM_FROZEN_CE_BLOCK, 0, ctx->stream>>>(
        losses, logits, labels, loss_scale, n_targets, V, stride);
    lm_cuda_check_launch(ctx, "crossentropy_forward_backward");
}

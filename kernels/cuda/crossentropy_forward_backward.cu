/* The fused classifier of a training step: the cross-entropy loss of each
 * row and its gradient dloss * (softmax - onehot(label)), written over the
 * logits, in one kernel, for fp32 logits (the op crossentropy_forward_backward;
 * CPU twin kernels/cpu/crossentropy.c) and for bf16 logits
 * (crossentropy_forward_backward_bf16; kernels/cpu/crossentropy_bf16.c);
 * the ops' contract is in backend_ops.def.  A forward then an in-place
 * backward read each row of N x V logits five times (max and sum of exps in
 * each, then the write pass); this reads it twice and writes it once:
 *
 *   pass 1  each thread keeps a running max and a sum of exps rescaled to
 *           it (online softmax), the block combines them: the row's max M
 *           and Σ exp(x - M), in double once combined;
 *   pass 2  g = dloss * exp(x - M) / Σ, the label's entry minus dloss,
 *           stored in place; thread 0 writes the loss.
 *
 * One kernel, a template on the stored type T (`float`, or bf16 as
 * `uint16_t`), every access through act_storage.cuh: the arithmetic is fp32
 * whatever T (a bf16 logit is widened as it is read) and each bf16 gradient
 * is rounded once, as it is written.  The float instantiation does the
 * operations of the fp32 kernel it replaced, in its order, so its bits are
 * that kernel's (tests/gpu/emulate keeps a frozen copy of it and checks).
 *
 * One block per row.  Rows are not 16-byte aligned in general (V = 50257),
 * so each row is cut, on its own address, into a scalar head up to the
 * first 16-byte boundary, 16-byte loads and stores from there (4 floats or
 * 8 bf16), and a scalar tail.  Which thread sums which logits depends on
 * that cut, so the float and bf16 instantiations add in other orders, as do
 * the two-op kernels (crossentropy_kernels.cuh) and the CPU: results differ
 * from theirs in the last ulps (tests/gpu/test_cuda_classifier.c and
 * tests/bf16_logits/test_bf16_ops.c state the tolerances).
 *
 * Rows lie `stride` elements apart (a padded vocabulary, backend_ops.def):
 * the passes cover the first V columns, and the padding columns are
 * written 0.  A stride of a multiple of 8 (4 for float) keeps every row
 * aligned. */
#include <math.h>

#include "act_storage.cuh"
#include "cuda_common.cuh"

#define LM_CE_FUSED_BLOCK 512

/* The span of a row that 16-byte accesses cover: [head, head + width * n_vec). */
struct lm_row_split {
    int head;  /* scalar elements before the first 16-byte boundary */
    int n_vec; /* 16-byte vectors from there */
};

template <typename T> __device__ __forceinline__ lm_row_split lm_split_row(const T *x, int V) {
    constexpr int width = lm_act_vec<T>::width;
    const unsigned misaligned = (unsigned)((uintptr_t)x & 15u) / (unsigned)sizeof(T);
    lm_row_split s;
    s.head = misaligned == 0 ? 0 : width - (int)misaligned;
    if (s.head > V) s.head = V;
    s.n_vec = (V - s.head) / width;
    return s;
}

/* Folds x into the thread's running (max, Σ exp(· - max)).  -inf adds
 * nothing (exp(-inf - m) = 0, written out so that -inf - -inf never makes a
 * NaN); a NaN logit makes the sum NaN, so that it reaches the loss. */
__device__ __forceinline__ void lm_online_add(float x, float *m, float *s) {
    if (x > *m) {
        *s = *s * expf(*m - x) + 1.0f;
        *m = x;
    } else if (x != -INFINITY) {
        *s += expf(x - *m);
    }
}

__device__ __forceinline__ float lm_ce_grad(float x, int j, int label, float m, float inv_sum, float dloss,
                                            float label_grad) {
    return j == label ? label_grad : dloss * (expf(x - m) * inv_sum);
}

template <typename T>
__global__ void lm_crossentropy_forward_backward_kernel(float *losses, T *logits, const int32_t *labels,
                                                        float loss_scale, const int64_t *n_targets, int V,
                                                        int stride) {
    constexpr int width = lm_act_vec<T>::width;
    const float dloss = lm_loss_gradient_scale(loss_scale, n_targets);
    __shared__ float shared_max[32];
    __shared__ double shared_sum[32];
    const size_t row = blockIdx.x;
    const int32_t label = labels[row];
    T *x = logits + row * (size_t)stride;
    if (label < 0 || label >= V) { /* uniform across the block */
        if (threadIdx.x == 0) losses[row] = 0.0f;
        for (int j = threadIdx.x; j < stride; j += blockDim.x) lm_store_act(x + j, 0.0f);
        return;
    }
    /* The padding columns (no pass reads them): their gradient is 0. */
    for (int j = V + threadIdx.x; j < stride; j += blockDim.x) lm_store_act(x + j, 0.0f);
    /* Read before any thread overwrites the row (the reductions below
     * synchronise the block before pass 2). */
    const float label_logit = lm_load_act(x + label);
    const lm_row_split split = lm_split_row(x, V);
    T *body = x + split.head;
    const int tail = split.head + width * split.n_vec;

    /* (s declared before m: in this order nvcc numbers their registers as
     * in the former fp32 kernel, whose machine code the float
     * instantiation then is, byte for byte; NOTES.md, "The fused classifier".) */
    float s = 0.0f, m = -INFINITY;
    for (int j = threadIdx.x; j < split.head; j += blockDim.x) lm_online_add(lm_load_act(x + j), &m, &s);
    for (int i = threadIdx.x; i < split.n_vec; i += blockDim.x) {
        float v[width];
        lm_load_act_vec(body, i, v);
#pragma unroll
        for (int k = 0; k < width; k++) lm_online_add(v[k], &m, &s);
    }
    for (int j = tail + threadIdx.x; j < V; j += blockDim.x) lm_online_add(lm_load_act(x + j), &m, &s);
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
        lm_store_act(x + j, lm_ce_grad(lm_load_act(x + j), j, label, row_max, inv_sum, dloss, label_grad));
    for (int i = threadIdx.x; i < split.n_vec; i += blockDim.x) {
        float v[width], g[width];
        lm_load_act_vec(body, i, v);
        const int j = split.head + width * i;
#pragma unroll
        for (int k = 0; k < width; k++) g[k] = lm_ce_grad(v[k], j + k, label, row_max, inv_sum, dloss, label_grad);
        lm_store_act_vec(body, i, g);
    }
    for (int j = tail + threadIdx.x; j < V; j += blockDim.x)
        lm_store_act(x + j, lm_ce_grad(lm_load_act(x + j), j, label, row_max, inv_sum, dloss, label_grad));
}

extern "C" void lm_cuda_crossentropy_forward_backward(lm_cuda_ctx *ctx, float *losses, float *logits,
                                                      const int32_t *labels, float loss_scale,
                                                      const int64_t *n_targets, int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_forward_backward_kernel<float><<<N, LM_CE_FUSED_BLOCK, 0, ctx->stream>>>(
        losses, logits, labels, loss_scale, n_targets, V, stride);
    lm_cuda_check_launch(ctx, "crossentropy_forward_backward");
}

extern "C" void lm_cuda_crossentropy_forward_backward_bf16(lm_cuda_ctx *ctx, float *losses, uint16_t *logits,
                                                           const int32_t *labels, float loss_scale,
                                                           const int64_t *n_targets, int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_forward_backward_kernel<uint16_t><<<N, LM_CE_FUSED_BLOCK, 0, ctx->stream>>>(
        losses, logits, labels, loss_scale, n_targets, V, stride);
    lm_cuda_check_launch(ctx, "crossentropy_forward_backward_bf16");
}

/* Softmax cross-entropy over the vocabulary, one block per row, templated
 * on how the logits (and their gradients) are stored: `float`
 * (crossentropy.cu) or bf16 as `uint16_t` (crossentropy_bf16.cu).  The
 * arithmetic is fp32 whatever the storage, every logit widened as it is
 * read and every gradient rounded once as it is written (act_storage.cuh);
 * the float instantiation does the operations the untemplated fp32 kernels
 * did, in their order, so its results keep their bits.
 *
 * The CPU twin's semantics (kernels/cpu/crossentropy.c): max-shifted
 * log-sum-exp with the sum of exps reduced in double; a label outside
 * [0, V) (the ignore index -100 in particular) scores nothing: loss 0, no
 * gradient.  Rows lie `stride` elements apart and only their first V
 * columns are scored (a padded vocabulary, backend_ops.def): in place, the
 * padding columns are written 0.  The max and the sum are two reductions,
 * then the write pass: three reads of a row.  These are the separate ops
 * (evaluation, tests); the training step's fused loss and dlogits, both
 * storage types, is crossentropy_forward_backward.cu's online softmax. */
#ifndef LM_CUDA_CROSSENTROPY_KERNELS_CUH
#define LM_CUDA_CROSSENTROPY_KERNELS_CUH

#include <math.h>

#include "act_storage.cuh"
#include "cuda_common.cuh"

#define LM_CE_BLOCK 512

/* Row max and Σ exp(x - max) over the block. */
template <typename T>
__device__ void lm_softmax_row_stats(const T *x, int V, float *max_out, double *sum_out) {
    __shared__ float shared_max[32];
    __shared__ double shared_sum[32];
    float m = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, lm_load_act(x + j));
    m = lm_block_max(m, shared_max);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) sum += expf(lm_load_act(x + j) - m);
    *sum_out = lm_block_sum<double>((double)sum, shared_sum);
    *max_out = m;
}

template <typename T>
__global__ void lm_crossentropy_forward_kernel(float *losses, const T *logits, const int32_t *labels, int V,
                                               int stride) {
    const size_t row = blockIdx.x;
    const int32_t label = labels[row];
    if (label < 0 || label >= V) { /* uniform across the block */
        if (threadIdx.x == 0) losses[row] = 0.0f;
        return;
    }
    const T *x = logits + row * (size_t)stride;
    float m;
    double sum;
    lm_softmax_row_stats(x, V, &m, &sum);
    if (threadIdx.x == 0) losses[row] = (float)(log(sum) + (double)m - (double)lm_load_act(x + label));
}

/* The backward (softmax never stored; it may run in place). */
template <typename T>
__global__ void lm_crossentropy_backward_kernel(T *dlogits, const T *logits, const int32_t *labels, float loss_scale,
                                                const int64_t *n_targets, int V, int stride, int in_place) {
    const float dloss = lm_loss_gradient_scale(loss_scale, n_targets);
    const size_t row = blockIdx.x;
    const int32_t label = labels[row];
    T *dx = dlogits + row * (size_t)stride;
    if (label < 0 || label >= V) {
        if (in_place)
            for (int j = threadIdx.x; j < stride; j += blockDim.x) lm_store_act(dx + j, 0.0f);
        return;
    }
    const T *x = logits + row * (size_t)stride;
    /* The padding columns' gradient: 0 (no thread reads them). */
    if (in_place)
        for (int j = V + threadIdx.x; j < stride; j += blockDim.x) lm_store_act(dx + j, 0.0f);
    /* Read before any thread overwrites the row (the stats below synchronise). */
    const float label_logit = lm_load_act(x + label);
    float m;
    double sum;
    lm_softmax_row_stats(x, V, &m, &sum);
    const float inv_sum = (float)(1.0 / sum);
    const float label_prob = expf(label_logit - m) * inv_sum;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        const float g = j == label ? dloss * (label_prob - 1.0f) : dloss * (expf(lm_load_act(x + j) - m) * inv_sum);
        lm_store_act(dx + j, in_place ? g : lm_load_act(dx + j) + g);
    }
}

#endif

/* The separate loss ops on bf16 logits (crossentropy_forward_bf16,
 * crossentropy_backward_bf16; the CPU twins are
 * kernels/cpu/crossentropy_bf16.c): crossentropy_kernels.cuh's kernels on
 * bf16 rows (`uint16_t`, kernels/bf16.h), every logit widened as it is read
 * and every gradient rounded once as it is written; scalar loads, three
 * reads of a row.  They serve evaluation and tests; a training step runs
 * the fused crossentropy_forward_backward_bf16, which is
 * crossentropy_forward_backward.cu's online-softmax kernel on bf16 rows. */
#include "crossentropy_kernels.cuh"

extern "C" void lm_cuda_crossentropy_forward_bf16(lm_cuda_ctx *ctx, float *losses, const uint16_t *logits,
                                                  const int32_t *labels, int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_forward_kernel<uint16_t><<<N, LM_CE_BLOCK, 0, ctx->stream>>>(losses, logits, labels, V, stride);
    lm_cuda_check_launch(ctx, "crossentropy_forward_bf16");
}

extern "C" void lm_cuda_crossentropy_backward_bf16(lm_cuda_ctx *ctx, uint16_t *dlogits, const uint16_t *logits,
                                                   const int32_t *labels, float loss_scale, const int64_t *n_targets,
                                                   int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_backward_kernel<uint16_t><<<N, LM_CE_BLOCK, 0, ctx->stream>>>(
        dlogits, logits, labels, loss_scale, n_targets, V, stride, dlogits == logits);
    lm_cuda_check_launch(ctx, "crossentropy_backward_bf16");
}

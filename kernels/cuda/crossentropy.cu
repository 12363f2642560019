/* The loss ops on fp32 logits (crossentropy_forward, crossentropy_backward;
 * the CPU twins are kernels/cpu/crossentropy.c): crossentropy_kernels.cuh's
 * kernels on float rows.  The fused training op is
 * crossentropy_forward_backward.cu's. */
#include "crossentropy_kernels.cuh"

extern "C" void lm_cuda_crossentropy_forward(lm_cuda_ctx *ctx, float *losses, const float *logits,
                                             const int32_t *labels, int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_forward_kernel<float><<<N, LM_CE_BLOCK, 0, ctx->stream>>>(losses, logits, labels, V, stride);
    lm_cuda_check_launch(ctx, "crossentropy_forward");
}

extern "C" void lm_cuda_crossentropy_backward(lm_cuda_ctx *ctx, float *dlogits, const float *logits,
                                              const int32_t *labels, float loss_scale, const int64_t *n_targets,
                                              int N, int V, int stride) {
    if (N <= 0 || V <= 0) return;
    lm_crossentropy_backward_kernel<float><<<N, LM_CE_BLOCK, 0, ctx->stream>>>(
        dlogits, logits, labels, loss_scale, n_targets, V, stride, dlogits == logits);
    lm_cuda_check_launch(ctx, "crossentropy_backward");
}

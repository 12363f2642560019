/* The device side of a training step on the GPU: the CUDA twins of
 * kernels/cpu/step.c, updating an lm_step_state that lives in device memory
 * (lmcore/step.h, device.h).  Each update is one thread of one block: a
 * handful of scalars, where a launch costs what it costs and nothing is
 * gained by more threads, and one thread keeps the CPU's order of
 * operations.  That order is spelled out with round-to-nearest intrinsics
 * (__dmul_rn, __ddiv_rn, __dadd_rn, __dsqrt_rn) because nvcc contracts
 * a*b + c into an FMA by default, which the CPU (-ffp-contract=off) does
 * not: with them, given the same inputs, every field matches lm_cpu_step_*
 * bit for bit.  What can differ: step_clip's sum of squares
 * (lm_cuda_sum_squares adds in another order than lm_cpu_sum_squares, both
 * in double), and step_schedule's learning rate for the cosine and
 * polynomial schedules: lm_schedule_lr is step.h's code, whose cos/pow are
 * CUDA's here (within 2 ulp of the correctly rounded value) and whose
 * polynomial lr_range * pow(..) + lr_end nvcc contracts into an FMA.  The
 * linear, constant, warmup and inverse-sqrt schedules are single IEEE
 * operations (no product-add) and match bit for bit.
 *
 * Nothing here waits: the host queues the kernels and reads the state only
 * when it logs (lm_device_ops.download). */
#include "cuda_common.cuh"
#include "lmcore/step.h"

/* The first non-finite value of a run wins; later ones leave it as it is
 * (lm_cpu_step_micro_batch_end, lm_cpu_step_clip). */
__device__ __forceinline__ void lm_step_flag(lm_step_state *s, int32_t what, float value) {
    if (s->bad_step != 0) return;
    s->bad_step = s->step + 1;
    s->bad_what = what;
    s->bad_value = value;
}

/* loss_sum += (double)loss * num / den; scored += 1 (the caller skips unscored batches). */
__global__ void lm_step_micro_batch_end_kernel(lm_step_state *s, double num, double den) {
    const float loss = s->loss;
    if (!isfinite(loss)) lm_step_flag(s, LM_BAD_LOSS, loss);
    s->loss_sum = __dadd_rn(s->loss_sum, __ddiv_rn(__dmul_rn((double)loss, num), den));
    s->scored += 1;
}

/* grad_norm and clip_scale from the sum of squares that the reduction
 * before it left in device memory (torch.nn.utils.clip_grad_norm_). */
__global__ void lm_step_clip_kernel(lm_step_state *s, const double *sum_squares) {
    const double sum = *sum_squares;
    const float norm = (float)__dsqrt_rn(sum);
    if (!(isfinite(sum) && isfinite(norm))) lm_step_flag(s, LM_BAD_GRAD_NORM, norm); /* norm can pass FLT_MAX */
    s->grad_norm = norm;
    /* The coefficient clamped at 1, as lm_step_clip_from_sum. */
    const double max_norm = s->max_grad_norm;
    const double coefficient = __ddiv_rn(max_norm, __dadd_rn((double)norm, 1e-6));
    s->clip_scale = (max_norm > 0 && coefficient < 1.0) ? (float)coefficient : 1.0f;
}

/* The schedule is the host's own function (step.h), compiled as device code. */
__global__ void lm_step_schedule_kernel(lm_step_state *s) {
    if (s->schedule.kind != LM_SCHEDULE_HOST) s->lr = lm_schedule_lr(&s->schedule, s->step);
}

__global__ void lm_step_finish_kernel(lm_step_state *s) {
    const double step_loss = s->loss_sum;
    s->step_loss = step_loss;
    for (int i = 0; i < LM_LOSS_SUMS; i++) s->loss_sums[i] = __dadd_rn(s->loss_sums[i], step_loss);
    s->loss_sum = 0.0;
    s->scored = 0;
    s->clip_scale = 1.0f;
    s->step += 1;
}

/* A NULL state is the caller's bug (lm_device_ops checks it first): kept,
 * so that the next sync names it, rather than a fault on the GPU. */
static int no_state(lm_cuda_ctx *ctx, const char *op, const lm_step_state *state) {
    if (state) return 0;
    lm_cuda_ctx_keep_error(ctx, op, "no step state");
    return 1;
}

extern "C" void lm_cuda_step_micro_batch_end(lm_cuda_ctx *ctx, lm_step_state *state, double num, double den,
                                             int scored) {
    if (!scored) return; /* a batch with nothing to predict changes nothing (device.h) */
    if (no_state(ctx, "step_micro_batch_end", state)) return;
    lm_step_micro_batch_end_kernel<<<1, 1, 0, ctx->stream>>>(state, num, den);
    lm_cuda_check_launch(ctx, "step_micro_batch_end");
}

extern "C" void lm_cuda_step_clip(lm_cuda_ctx *ctx, lm_step_state *state, const float *grads, size_t n) {
    if (no_state(ctx, "step_clip", state)) return;
    /* The deterministic two-stage sum (reduce.cu) into the context's device
     * double; the kernel after it on the stream reads it there. */
    lm_cuda_sum_squares(ctx, ctx->sum_result, grads, n);
    lm_step_clip_kernel<<<1, 1, 0, ctx->stream>>>(state, ctx->sum_result);
    lm_cuda_check_launch(ctx, "step_clip");
}

extern "C" void lm_cuda_step_schedule(lm_cuda_ctx *ctx, lm_step_state *state) {
    if (no_state(ctx, "step_schedule", state)) return;
    lm_step_schedule_kernel<<<1, 1, 0, ctx->stream>>>(state);
    lm_cuda_check_launch(ctx, "step_schedule");
}

extern "C" void lm_cuda_step_finish(lm_cuda_ctx *ctx, lm_step_state *state) {
    if (no_state(ctx, "step_finish", state)) return;
    lm_step_finish_kernel<<<1, 1, 0, ctx->stream>>>(state);
    lm_cuda_check_launch(ctx, "step_finish");
}

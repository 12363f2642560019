/* lmkernels — the device side of a training step on the CPU (the CUDA twins
 * are kernels/cuda/step.cu): liblmcore's reference arithmetic
 * (lm_step_* in lmcore/device.h), with the gradient norm's sum of squares
 * spread over the kernels' threads (lm_cpu_sum_squares: fixed chunks, so
 * the same bits for any thread count). */
#include "kernels.h"
#include "lmcore/device.h"

void lm_cpu_step_micro_batch_end(lm_step_state *s, double num, double den, int scored) {
    lm_step_micro_batch_end(s, num, den, scored);
}

void lm_cpu_step_clip(lm_step_state *s, const float *grads, size_t n) {
    lm_step_clip_from_sum(s, lm_cpu_sum_squares(grads, n));
}

void lm_cpu_step_schedule(lm_step_state *s) { lm_step_schedule(s); }

void lm_cpu_step_finish(lm_step_state *s) { lm_step_finish(s); }

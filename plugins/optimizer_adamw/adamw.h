/* The adamw plugin's update, shared by its vtable (adamw_plugin.c), its CPU
 * kernel (adamw_cpu.c) and its CUDA kernel (adamw_cuda.cu). */
#ifndef LM_OPTIMIZER_ADAMW_H
#define LM_OPTIMIZER_ADAMW_H

#include "optimizer_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The settings as the update uses them: floats, as lmcore 1.x's
 * lm_cpu_adamw took them, so that the update stays bit for bit the one
 * earlier runs (and their checkpoints) were made with.  The scalars derived
 * from them are computed in double from these floats. */
typedef struct adamw_hparams {
    float beta1, beta2, eps, weight_decay;
} adamw_hparams;

/* One update of every range, on the CPU device's threads; reads lr, step,
 * clip_scale and bad_step from `state` (host memory on a CPU device). */
void adamw_cpu_step(lm_opt_params *p, float *exp_avg, float *exp_avg_sq, const adamw_hparams *h,
                    const lm_step_state *state);

#if defined(LM_OPT_HAVE_CUDA)
/* The same, queued on the device's stream: the kernels read the step state
 * in device memory themselves. */
void adamw_cuda_step(lm_opt_params *p, float *exp_avg, float *exp_avg_sq, const adamw_hparams *h,
                     const lm_step_state *state);
#endif

#ifdef __cplusplus
}
#endif
#endif

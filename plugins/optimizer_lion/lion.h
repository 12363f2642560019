/* The lion plugin's update, shared by its vtable (lion_plugin.c), its CPU
 * kernel (lion_cpu.c) and its CUDA kernel (lion_cuda.cu). */
#ifndef LM_OPTIMIZER_LION_H
#define LM_OPTIMIZER_LION_H

#include "optimizer_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The settings as lion_pytorch hands them to torch's float tensor ops: each
 * Python number rounded to float once (1 - beta computed in double first).
 * weight_decay stays double: 1 - lr·wd is computed in double at each step. */
typedef struct lion_hparams {
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    double weight_decay;
} lion_hparams;

/* One update of every range on the CPU device's threads; reads lr,
 * clip_scale and bad_step from `state` (host memory on a CPU device). */
void lion_cpu_step(lm_opt_params *p, float *exp_avg, const lion_hparams *h, const lm_step_state *state);

#if defined(LM_OPT_HAVE_CUDA)
/* The same, queued on the device's stream (the kernel reads the state). */
void lion_cuda_step(lm_opt_params *p, float *exp_avg, const lion_hparams *h, const lm_step_state *state);
#endif

#ifdef __cplusplus
}
#endif
#endif

/* The sgd plugin's update, shared by its vtable (sgd_plugin.c), its CPU
 * kernel (sgd_cpu.c) and its CUDA kernel (sgd_cuda.cu). */
#ifndef LM_OPTIMIZER_SGD_H
#define LM_OPTIMIZER_SGD_H

#include "optimizer_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The settings as torch hands them to its float tensor ops: each Python
 * number rounded to float once (1 - dampening computed in double first). */
typedef struct sgd_hparams {
    float momentum;            /* 0: no momentum buffer */
    float one_minus_dampening; /* alpha of buf.add_(d_p) */
    float weight_decay;        /* alpha of d_p.add(param), for decayed tensors */
    int nesterov;
} sgd_hparams;

/* One update of every range on the CPU device's threads; reads lr, step,
 * clip_scale and bad_step from `state` (host memory on a CPU device).
 * momentum_buffer is NULL without momentum (momentum setting 0). */
void sgd_cpu_step(lm_opt_params *p, float *momentum_buffer, const sgd_hparams *h, const lm_step_state *state);

#if defined(LM_OPT_HAVE_CUDA)
/* The same, queued on the device's stream (the kernel reads the state). */
void sgd_cuda_step(lm_opt_params *p, float *momentum_buffer, const sgd_hparams *h, const lm_step_state *state);
#endif

#ifdef __cplusplus
}
#endif
#endif

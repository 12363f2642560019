/* lmcore 1.x's AdamW kernel (kernels/cpu/adamw.c before the optimizer
 * became a plugin), kept as the reference the adamw plugin must match bit
 * for bit: runs that resumed from 1.x checkpoints continue the same. */
#ifndef LM_TEST_ADAMW_REFERENCE_H
#define LM_TEST_ADAMW_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

/* lm_cpu_adamw's arguments and arithmetic, on the calling thread. */
void adamw_reference(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1,
                     float beta2, float eps, float weight_decay, float grad_scale, int64_t t);

#endif

/* How a kernel reads and writes an activation it stores as `float` or as
 * bf16 (`uint16_t`, kernels/bf16.h): one load/store pair, so that a kernel
 * templated on the stored type does fp32 arithmetic inside and the
 * widening and the rounding (torch's round-to-nearest-even, NaN -> 0x7FC0)
 * happen in one place (NOTES.md, "bf16 storage", point 2).  The float pair
 * is a plain load and store: a kernel's float instantiation does the same
 * operations as the untemplated kernel did. */
#ifndef LM_CUDA_ACT_STORAGE_CUH
#define LM_CUDA_ACT_STORAGE_CUH

#include <stdint.h>

#include "bf16.h"

__device__ __forceinline__ float lm_load_act(const float *p) { return *p; }
__device__ __forceinline__ void lm_store_act(float *p, float value) { *p = value; }

__device__ __forceinline__ float lm_load_act(const uint16_t *p) { return lm_bf16_to_float(*p); }
__device__ __forceinline__ void lm_store_act(uint16_t *p, float value) { *p = lm_bf16_from_float(value); }

#endif

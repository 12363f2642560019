/* The CUDA side shared by the optimizer plugins: device selection, launch
 * errors, and the BF16 copy of the parameters (optimizer_common.h).
 *
 * Each plugin links its own static copy of cudart, as the architecture
 * plugins do; memory and streams belong to the model's device (one primary
 * context per GPU), so a plugin only has to make the model's GPU current
 * for its own runtime before it queues work on the model's stream. */
#include <cuda_runtime.h>

#include <stdio.h>

#include "optimizer_common.h"

/* The cap on grid-stride grids: plenty to fill an H100 (kernels/cuda's). */
#define OPT_MAX_GRID 8192

extern "C" unsigned lm_opt_cuda_grid(size_t n) {
    size_t blocks = (n + LM_OPT_CUDA_BLOCK - 1) / LM_OPT_CUDA_BLOCK;
    if (blocks > OPT_MAX_GRID) blocks = OPT_MAX_GRID;
    return blocks ? (unsigned)blocks : 1u;
}

extern "C" lm_status lm_opt_cuda_bind(lm_device *dev, const char *optimizer) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err == cudaSuccess && (dev->index < 0 || dev->index >= count)) err = cudaErrorInvalidDevice;
    if (err == cudaSuccess) err = cudaSetDevice(dev->index);
    if (err != cudaSuccess)
        return lm_error_set(LM_ERR_DEVICE, "optimizer '%s': cannot use cuda:%d for the update: %s", optimizer,
                            (int)dev->index, cudaGetErrorString(err));
    return LM_OK;
}

extern "C" void lm_opt_cuda_use(lm_device *dev) { cudaSetDevice(dev->index); }

extern "C" void lm_opt_cuda_check_launch(lm_device *dev, const char *what) {
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) dev->ops->keep_failure(dev, what, cudaGetErrorString(err));
}

/* lm_bf16_rne (kernels/bf16.h), not __float2bfloat16_rn, so that NaNs come
 * out as torch writes them (0x7FC0) on both devices. */
__global__ void opt_bf16_copy_kernel(uint16_t *dst, const float *src, size_t n, const lm_step_state *state) {
    if (state->bad_step != 0) return;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        dst[i] = lm_bf16_rne(__float_as_uint(src[i]));
    }
}

extern "C" void lm_opt_cuda_bf16_copy(lm_device *dev, const char *what, uint16_t *dst, const float *src, size_t n,
                                      const lm_step_state *state) {
    if (n == 0) return;
    lm_opt_cuda_use(dev);
    opt_bf16_copy_kernel<<<lm_opt_cuda_grid(n), LM_OPT_CUDA_BLOCK, 0, (cudaStream_t)dev->stream>>>(dst, src, n, state);
    char label[96];
    snprintf(label, sizeof label, "optimizer '%s' (the BF16 copy of the parameters)", what);
    lm_opt_cuda_check_launch(dev, label);
}

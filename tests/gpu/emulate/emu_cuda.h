/* A CPU emulation of the few CUDA features the fused attention kernels use
 * (kernels/cuda/attention_fused*.cu), so that their index arithmetic,
 * barriers and shuffles can be checked on a machine without a GPU: a block
 * is 256 POSIX threads, __syncthreads a barrier of the block, a shuffle an
 * exchange through memory between two barriers of the warp, shared memory
 * static (blocks run one at a time).  Force-included (-include) before the
 * kernels; see run_emulation.sh. */
#ifndef LM_EMU_CUDA_H
#define LM_EMU_CUDA_H

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <algorithm>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct emu_dim3 {
    unsigned x, y, z;
};
extern thread_local emu_dim3 threadIdx;
extern emu_dim3 blockIdx, blockDim;
/* The dynamic shared memory of the block that runs. */
extern float *emu_dynamic_smem;

void __syncthreads();
float __shfl_xor_sync(unsigned mask, float v, int offset);
int atomicMin(int *address, int value);
template <class T> static inline T __ldg(const T *p) { return *p; }
using std::max;
using std::min;

#endif

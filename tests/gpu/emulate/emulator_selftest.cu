/* The emulator's own promises (README.md), checked with small kernels
 * written as CUDA and rewritten like the real ones (cuda_to_cpp.pl): the
 * shuffles' lanes and widths for float, int, unsigned and double, 2-D
 * blocks and grids, atomics, shared memory poisoned per block, a missing
 * barrier exposed by the changing thread order, and the launches CUDA
 * refuses or leaves undefined (a barrier not every thread reaches, a
 * shuffle naming a lane that returned, too much shared memory, a bad
 * configuration) failing.  Suite `emulator`: if these fail, no other
 * suite's verdict means anything. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "emulate_suites.h"
#include "emulate_util.h"

/* out[tid][0..7]: a lane's shuffles; lane = tid & 31 of a 16 x 8 block. */
__global__ void selftest_shuffle_kernel(float *out) {
    const int tid = threadIdx.x + blockDim.x * threadIdx.y, lane = tid & 31;
    float *o = out + (size_t)tid * 8;
    o[0] = __shfl_xor_sync(0xffffffffu, (float)lane, 1);
    o[1] = (float)__shfl_down_sync(0xffffffffu, lane, 3, 16);
    o[2] = (float)__shfl_up_sync(0xffffffffu, (unsigned)lane, 2, 8);
    o[3] = (float)__shfl_sync(0xffffffffu, 100.0 + lane, 5);
    o[4] = (float)__shfl_sync(0xffffffffu, lane, 33, 16); /* source 33 % 16 = 1 of the segment */
    /* 16 segments of 16: lanes 0-15 would read a later segment (their own
     * value instead), lanes 16-31 read the earlier one */
    o[5] = __shfl_xor_sync(0xffffffffu, (float)lane, 16, 16);
    float sum = (float)lane;
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    o[6] = sum;
    o[7] = (float)(blockDim.x * 100 + blockDim.y);
}

/* Each thread of a 2-D grid of 2-D blocks marks its global index once;
 * block 0's shared counter adds every thread's 1 atomically. */
__global__ void selftest_grid_kernel(int *hits, int *count, int width) {
    __shared__ int block_count;
    if (threadIdx.x == 0 && threadIdx.y == 0) block_count = 0;
    __syncthreads();
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    atomicAdd(&hits[y * width + x], 1);
    atomicAdd(&block_count, 1);
    __syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0) atomicAdd(count, block_count);
}

/* out[block] = what the block's thread 0 reads of a static shared value
 * before writing it: the poison (-1), never the previous block's 7. */
__global__ void selftest_poison_kernel(int *out) {
    __shared__ int value;
    if (threadIdx.x == 0) {
        out[blockIdx.x] = value;
        value = 7;
    }
}

/* out[t] = shared[t + 1] as written by thread t + 1 (the last thread its
 * own), with or without the barrier between the write and the read: a
 * fixed descending order of the threads would hide the missing barrier. */
__global__ void selftest_neighbour_kernel(float *out, bool barrier) {
    extern __shared__ double neighbours[];
    const int t = threadIdx.x, n = blockDim.x;
    neighbours[t] = t;
    if (barrier) __syncthreads();
    out[blockIdx.x * n + t] = (float)neighbours[t + 1 < n ? t + 1 : t];
}

__global__ void selftest_divergent_barrier_kernel(float *out) {
    if (threadIdx.x < 16) return; /* undefined in CUDA: the others wait at the barrier */
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

__global__ void selftest_lane_gone_kernel(float *out) {
    if (threadIdx.x == 3) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

__global__ void selftest_nothing_kernel(float *out) { out[0] = 1.0f; }

namespace {

bool shuffles(void) {
    emu_floats out(128 * 8);
    selftest_shuffle_kernel<<<1, dim3(16, 8)>>>(out.p);
    bool ok = cudaGetLastError() == cudaSuccess;
    for (int tid = 0; tid < 128 && ok; tid++) {
        const int lane = tid & 31;
        const float *o = out.p + tid * 8;
        const int seg16 = lane / 16 * 16, seg8 = lane / 8 * 8;
        const float want[8] = {(float)(lane ^ 1),
                               (float)(lane + 3 < seg16 + 16 ? lane + 3 : lane),
                               (float)(lane - 2 >= seg8 ? lane - 2 : lane),
                               (float)(100.0 + 5),
                               (float)(seg16 + 1),
                               (float)(lane < 16 ? lane : lane - 16),
                               496.0f,
                               1608.0f};
        for (int k = 0; k < 8; k++) ok = ok && o[k] == want[k];
    }
    return emu_report(ok, "emulator: shuffles xor/down/up/idx with widths 32/16/8, float/int/unsigned/double, in a 16x8 block");
}

bool grid(void) {
    const int width = 3 * 8, height = 2 * 4;
    std::vector<int> hits(width * height, 0);
    int *d_hits = (int *)emu_alloc(hits.size() * sizeof(int), 0), *d_count = (int *)emu_alloc(sizeof(int), 0);
    memset(d_hits, 0, hits.size() * sizeof(int));
    *d_count = 0;
    selftest_grid_kernel<<<dim3(3, 2), dim3(8, 4)>>>(d_hits, d_count, width);
    bool ok = cudaGetLastError() == cudaSuccess && *d_count == width * height;
    for (size_t i = 0; i < hits.size(); i++) ok = ok && d_hits[i] == 1;
    emu_free(d_hits);
    emu_free(d_count);
    return emu_report(ok, "emulator: a 3x2 grid of 8x4 blocks covers every index once; atomicAdd counts %d", width * height);
}

bool poison(void) {
    int *out = (int *)emu_alloc(4 * sizeof(int), 0);
    selftest_poison_kernel<<<4, 32>>>(out);
    bool ok = cudaGetLastError() == cudaSuccess;
    for (int b = 0; b < 4; b++) ok = ok && out[b] == -1;
    emu_free(out);
    return emu_report(ok, "emulator: static shared memory poisoned before each block");
}

bool missing_barrier(void) {
    const int blocks = 8, n = 64;
    emu_floats with(blocks * n), without(blocks * n);
    selftest_neighbour_kernel<<<blocks, n, n * sizeof(double)>>>(with.p, true);
    selftest_neighbour_kernel<<<blocks, n, n * sizeof(double)>>>(without.p, false);
    bool right_with = cudaGetLastError() == cudaSuccess, wrong_without = false;
    for (int i = 0; i < blocks * n; i++) {
        const float want = (float)(i % n + 1 < n ? i % n + 1 : i % n);
        right_with = right_with && with.p[i] == want;
        wrong_without = wrong_without || !(without.p[i] == want);
    }
    return emu_report(right_with && wrong_without,
                      "emulator: a read of another thread's shared write is right after __syncthreads, %s without",
                      wrong_without ? "wrong in some block" : "NOT caught");
}

bool refused(const char *what, cudaError_t got, cudaError_t want) {
    return emu_report(got == want, "emulator: %s -> \"%s\" (expected \"%s\")", what, cudaGetErrorString(got),
                      cudaGetErrorString(want));
}

} /* namespace */

int emulate_emulator(lm_cuda_ctx *ctx) {
    (void)ctx;
    int failures = !shuffles() + !grid() + !poison() + !missing_barrier();
    emu_floats out(64);
    printf("(the two \"emulator: kernel ...\" messages that follow are expected)\n");
    fflush(stdout);
    selftest_divergent_barrier_kernel<<<1, 64>>>(out.p);
    failures += !refused("__syncthreads after 16 of 64 threads returned", cudaGetLastError(), cudaErrorLaunchFailure);
    selftest_lane_gone_kernel<<<1, 32>>>(out.p);
    failures += !refused("a shuffle naming a returned lane", cudaGetLastError(), cudaErrorLaunchFailure);
    selftest_neighbour_kernel<<<1, 64, 64 * 1024>>>(out.p, true);
    failures += !refused("64 KiB of dynamic shared memory without the attribute", cudaGetLastError(),
                         cudaErrorInvalidValue);
    failures += !refused("the attribute raised to 64 KiB", cudaFuncSetAttribute((const void *)selftest_neighbour_kernel,
                                                                                cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                                                64 * 1024),
                         cudaSuccess);
    selftest_neighbour_kernel<<<1, 64, 64 * 1024>>>(out.p, true);
    failures += !refused("then 64 KiB", cudaGetLastError(), cudaSuccess);
    selftest_nothing_kernel<<<1, 1025>>>(out.p);
    failures += !refused("a block of 1025 threads", cudaGetLastError(), cudaErrorInvalidConfiguration);
    selftest_nothing_kernel<<<0, 32>>>(out.p);
    failures += !refused("an empty grid", cudaGetLastError(), cudaErrorInvalidConfiguration);
    return failures;
}

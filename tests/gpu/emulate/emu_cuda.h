/* A CPU emulation of the CUDA features that lmcore's hand-written kernels
 * use, so that their index arithmetic, tails, barriers, shuffles and
 * written/added modes can be checked on a machine without a GPU
 * (README.md says what it models and what it cannot).  Force-included
 * (-include) before every kernel file, which cuda_to_cpp.pl has rewritten:
 * `kernel<<<grid, block, smem, stream>>>(args)` becomes
 * `emu_launch("kernel", kernel, grid, block, smem, stream)(args)`, `extern
 * __shared__ T x[]` a pointer to the block's dynamic shared memory, and a
 * static `__shared__` declaration a `static thread_local` one, poisoned
 * (all bits set: NaN, -1) before each block touches it.
 *
 * A block runs as user-level threads (fibers) of one OS thread, one block
 * at a time; __syncthreads, __syncwarp and the shuffles are barriers of the
 * block or of the warp (emu_runtime.cpp).  The CUDA runtime calls the
 * kernels' host side makes (memset, memcpy, launch errors, the
 * shared-memory attribute) act on host memory.  Also the stand-in for
 * cuda_runtime.h, cuda_runtime_api.h, cublasLt.h and cublas_v2.h
 * (stubs/), of which only the types the kernels' host side names exist. */
#ifndef LM_EMU_CUDA_H
#define LM_EMU_CUDA_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

/* ---- the runtime's types ---- */
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorLaunchFailure = 719,
} cudaError_t;
typedef enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
} cudaMemcpyKind;
typedef enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 } cudaFuncAttribute;
typedef enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2
} cudaStreamCaptureStatus;
typedef struct emu_stream *cudaStream_t;
typedef struct emu_blas_lt *cublasLtHandle_t;
typedef struct emu_blas *cublasHandle_t;
typedef enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0 } cublasStatus_t;
typedef enum cublasComputeType_t { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;

/* One emulated device, ordinal 0. */
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t err);
/* Host memory only: the stream is ignored, everything runs in order now. */
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t stream);
/* Raises a kernel's dynamic shared-memory limit above 48 KiB (checked at
 * launch, as CUDA does). */
cudaError_t cudaFuncSetAttribute(const void *kernel, cudaFuncAttribute attribute, int value);
/* Device memory: guarded host memory (emulate_util.h's emu_alloc, NaN-filled);
 * no stream is ever capturing; synchronising has nothing to wait for. */
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);

/* ---- launch geometry ---- */
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
/* threadIdx & co are uint3 in CUDA; plain structs here, so that reading
 * them is a plain thread-local load (the fiber scheduler sets them). */
struct emu_uint3 {
    unsigned x, y, z;
};
extern thread_local emu_uint3 threadIdx, blockIdx, blockDim, gridDim;
/* The block's dynamic shared memory (`extern __shared__`), poisoned. */
extern thread_local unsigned char *emu_dynamic_shared;
/* Poisons a static __shared__ variable the first time a block touches it. */
void emu_shared_poison(void *p, size_t bytes);

/* ---- vector types (CUDA aligns them: a misaligned float4 access faults on
 * the GPU, and the emulator is built with -fsanitize=alignment so that it
 * stops here too) ---- */
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) int4 {
    int x, y, z, w;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

/* ---- arithmetic intrinsics.  The round-to-nearest ones are exact IEEE
 * operations, as on the GPU (the emulator is built with -ffp-contract=off,
 * so nothing is fused behind them).  The math functions map to the C
 * library: expf, erff, tanhf, logf, powf, cos, pow (and __expf, rsqrtf,
 * which are approximations on the GPU) may differ from the GPU's in the
 * last bits, so a comparison that involves them is within a bound, never
 * bits.  Where nvcc would contract a·b + c into an FMA (every file but
 * step.cu, built with -fmad=false) the emulator rounds twice: bits claimed
 * between CUDA and the CPU there are not proven by the emulation. ---- */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline float __fdividef(float a, float b) { return a / b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __dsqrt_rn(double a) { return sqrt(a); }
static inline float __ll2float_rn(long long v) { return (float)v; }
static inline float __int2float_rn(int v) { return (float)v; }
/* glibc declares __expf and __logf itself: names, not functions, here. */
#define __expf expf
#define __logf logf
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline int __float_as_int(float f) { return (int)__float_as_uint(f); }
static inline float __int_as_float(int i) { return __uint_as_float((unsigned)i); }
template <class T> static inline T __ldg(const T *p) { return *p; }
using std::max;
using std::min;

/* ---- barriers and warp exchanges (emu_runtime.cpp) ---- */
void __syncthreads(void);
void __syncwarp(unsigned mask = 0xffffffffu);
/* The lane's `bits` offered to the warp; returns lane `source`'s bits once
 * every lane of `mask` has arrived (all bits set when `source` did not
 * take part: an undefined value in CUDA). */
uint64_t emu_warp_exchange(unsigned mask, uint64_t bits, int source);

static inline int emu_lane(void) { return (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) & 31; }

template <class T> static inline T emu_shuffle(unsigned mask, T v, int source) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "a shuffle moves at most 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    bits = emu_warp_exchange(mask, bits, source);
    T out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

/* CUDA's source-lane rules: a lane outside its `width`-segment's range
 * reads its own value (xor: later segments; down: past the segment's end;
 * up: before its start). */
template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    const int lane = emu_lane(), segment_end = (lane / width + 1) * width;
    const int source = lane ^ lane_mask;
    return emu_shuffle(mask, v, source < segment_end ? source : lane);
}
template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    const int lane = emu_lane(), segment_end = (lane / width + 1) * width;
    const int source = lane + (int)delta;
    return emu_shuffle(mask, v, source < segment_end ? source : lane);
}
template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    const int lane = emu_lane(), segment_begin = lane / width * width;
    const int source = lane - (int)delta;
    return emu_shuffle(mask, v, source >= segment_begin ? source : lane);
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int source_lane, int width = 32) {
    const int lane = emu_lane();
    return emu_shuffle(mask, v, lane / width * width + (source_lane % width));
}

/* ---- atomics: a block's fibers take turns on one OS thread, and a kernel
 * runs on one OS thread, so a read-modify-write is atomic as it is. ---- */
template <class T> static inline T atomicAdd(T *address, T value) {
    const T old = *address;
    *address = old + value;
    return old;
}
static inline int atomicMin(int *address, int value) {
    const int old = *address;
    if (value < old) *address = value;
    return old;
}
static inline int atomicMax(int *address, int value) {
    const int old = *address;
    if (value > old) *address = value;
    return old;
}
/* Blocks run one after the other: every write is visible to later ones. */
static inline void __threadfence(void) {}

/* ---- launches ---- */
struct emu_launch_config {
    dim3 grid, block;
    size_t shared_bytes;
    const void *kernel;
    const char *name;
};
/* Runs body(arg) as every thread of every block, one block at a time;
 * a bad configuration or a stuck barrier becomes cudaGetLastError's. */
void emu_run_grid(const emu_launch_config &config, void (*body)(void *), void *arg);

template <class... P> struct emu_launcher {
    void (*kernel)(P...);
    emu_launch_config config;
    /* The arguments converted to the kernel's parameter types once, as
     * CUDA copies them at the launch; every thread gets them by value. */
    template <class... A> void operator()(A &&...args) const {
        std::tuple<typename std::decay<P>::type...> params(std::forward<A>(args)...);
        auto call = [&] { std::apply(kernel, params); };
        emu_run_grid(config, [](void *c) { (*(decltype(call) *)c)(); }, &call);
    }
};

/* `name`: the launch's kernel as the source spells it, for messages. */
template <class... P>
static inline emu_launcher<P...> emu_launch(const char *name, void (*kernel)(P...), dim3 grid, dim3 block,
                                            size_t shared_bytes = 0, cudaStream_t stream = 0) {
    (void)stream;
    return emu_launcher<P...>{kernel, emu_launch_config{grid, block, shared_bytes, (const void *)kernel, name}};
}

#endif

/* Internal to kernels/cuda: the context's layout, failure keeping after
 * launches, launch-size helpers and warp/block reductions.  Not installed. */
#ifndef LM_CUDA_COMMON_CUH
#define LM_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stddef.h>
#include <stdint.h>

#include "kernels_cuda.h"

struct lm_cuda_ctx {
    int device;
    lm_precision precision;
    int sm_count;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    cublasHandle_t blas;
    void *lt_workspace; /* cuBLASLt matmuls */
    size_t lt_workspace_bytes;
    void *blas_workspace; /* cuBLAS batched GEMMs (attention) */
    size_t blas_workspace_bytes;
    void *scratch; /* partial sums of the two-stage reductions */
    size_t scratch_bytes;
    /* Device doubles that the step kernels' sums land in (loss_mean,
     * step_clip, the backend's sum_to_host): one reduction's result, read by
     * the next kernel on the stream, so one slot is enough. */
    double *sum_result;
    /* cuBLASLt plans (descriptors, layouts and the chosen algorithm) per
     * GEMM shape, built on first use (gemm.cu): a training step repeats the
     * same few dozen shapes, and building a plan costs tens of µs of host
     * time, as much as a small GEMM takes on the GPU. */
    struct lm_gemm_plan *gemm_plans;
    int n_gemm_plans;
    /* Device arrays of A/B/C pointers for attention's two-level batched
     * GEMMs, per (pointers, strides, counts) (gemm_batched.cu): the step's
     * activations stay put, so each array is built once and reused. */
    struct lm_gemm_pointer_array *gemm_pointer_arrays;
    int n_gemm_pointer_arrays;
    /* Bumped whenever the arrays are freed: a CUDA graph recorded before
     * reads freed ones and must not be launched (backend_cuda.cu). */
    unsigned long long gemm_pointer_arrays_generation;
    /* Embedding backward's radix-sort scratch (embedding.cu), grown to the
     * largest batch outside any capture; NULL until the first backward. */
    struct lm_embedding_sort *embedding_sort;
    /* The eager bf16 attention's widened q/k/v (attention_bf16.cu), grown
     * outside any capture; NULL until its first use. */
    struct lm_attention_widened *attention_widened;
    /* First failure since the last report (ops cannot return one). */
    int has_error;
    char error_op[64];
    char error_reason[256];
};

/* Threads per block of the row-wise and pointwise kernels. */
#define LM_CUDA_BLOCK 256
/* Cap on the grid of grid-stride loops (plenty to fill an H100). */
#define LM_CUDA_MAX_GRID 8192

/* Keeps the launch error of the kernel(s) just queued, if any. */
void lm_cuda_check_launch(lm_cuda_ctx *ctx, const char *op);
/* Keeps a cuBLAS failure (returns 1 when status is not success). */
int lm_cuda_keep_cublas(lm_cuda_ctx *ctx, const char *op, cublasStatus_t status);
/* Keeps a CUDA runtime failure (returns 1 when err is not cudaSuccess). */
int lm_cuda_keep_cuda(lm_cuda_ctx *ctx, const char *op, cudaError_t err);

static inline unsigned lm_cuda_grid_for(size_t n, unsigned block) {
    size_t blocks = (n + block - 1) / block;
    if (blocks > LM_CUDA_MAX_GRID) blocks = LM_CUDA_MAX_GRID;
    if (blocks == 0) blocks = 1;
    return (unsigned)blocks;
}

/* Frees the embedding backward's sort scratch (embedding.cu); for destroy. */
void lm_cuda_embedding_sort_free(lm_cuda_ctx *ctx);
/* Frees the eager bf16 attention's workspace (attention_bf16.cu); for destroy. */
void lm_cuda_attention_widened_free(lm_cuda_ctx *ctx);

/* cuBLAS compute type for the context's precision. */
cublasComputeType_t lm_cuda_compute_type(const lm_cuda_ctx *ctx);

/* ---- dropout key -------------------------------------------------------------------------------- */
/* (seed, stream) of dropout site `site` in the micro-batch the step state
 * names (lmcore/step.h, backend.h), read from device memory by the kernel
 * itself: the host never reads the key, and a captured graph draws the mask
 * of the micro-batch current at replay.  Every thread loads the same two
 * words (a broadcast through L1); nothing writes them during the kernel. */
struct lm_dropout_key {
    uint64_t seed, stream;
};

__device__ __forceinline__ lm_dropout_key lm_dropout_key_load(const lm_step_state *key, int site) {
    lm_dropout_key k;
    k.seed = __ldg(&key->seed);
    k.stream = lm_dropout_stream(__ldg(&key->micro_batch), site);
    return k;
}

/* ---- reductions -------------------------------------------------------------------- */
template <typename Tv> __device__ __forceinline__ Tv lm_warp_sum(Tv v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float lm_warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to
 * every thread.  `shared` holds 32 values.  Fixed order: deterministic. */
template <typename Tv> __device__ Tv lm_block_sum(Tv v, Tv *shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = lm_warp_sum(v);
    __syncthreads(); /* shared may still be read by a previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    Tv total = lane < warps ? shared[lane] : (Tv)0;
    return lm_warp_sum(total);
}

__device__ __forceinline__ float lm_block_max(float v, float *shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = lm_warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float m = lane < warps ? shared[lane] : -INFINITY;
    return lm_warp_max(m);
}

/* The cross-entropy ops' dloss = loss_scale / (float)*n_targets (backend_ops.def), the
 * count read from the device: round-to-nearest conversion and IEEE division, the host's
 * float expression, so the CPU's bits. */
__device__ __forceinline__ float lm_loss_gradient_scale(float loss_scale, const int64_t *n_targets) {
    return __fdiv_rn(loss_scale, __ll2float_rn((long long)*n_targets));
}

#endif

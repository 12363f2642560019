/* Batched GEMMs for attention: a strided batch (one level: the heads of
 * one batch row), and a two-level batch (batch rows x heads) in a single
 * cuBLAS call.
 *
 * Why two levels: attention's per-(b, h) matrices are at
 * base + b·(T·stride) + h·hd, which no single stride describes, so a strided
 * batch covers one b at a time: B calls per product, six products per
 * layer, 6·B·L cuBLAS calls per training step (576 for GPT-2 at batch 8),
 * each costing microseconds of host time at the small shapes of the
 * reference recipe, where launching work is what the step waits on.
 * cublasGemmBatchedEx takes arrays of pointers instead, in device memory;
 * the step's activations live at fixed addresses (one arena per batch
 * shape), so the arrays are built once per (pointers, strides, counts) and
 * kept: one call per product. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.cuh"

void lm_cuda_gemm_batched(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                          float alpha, const float *A, int lda, long long stride_a, const float *B, int ldb,
                          long long stride_b, float beta, float *C, int ldc, long long stride_c, int batch) {
    if (m <= 0 || n <= 0 || k <= 0 || batch <= 0) return;
    lm_cuda_keep_cublas(ctx, op,
                        cublasGemmStridedBatchedEx(ctx->blas, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                   trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha, A, CUDA_R_32F,
                                                   lda, stride_a, B, CUDA_R_32F, ldb, stride_b, &beta, C, CUDA_R_32F,
                                                   ldc, stride_c, batch, lm_cuda_compute_type(ctx),
                                                   CUBLAS_GEMM_DEFAULT));
}

/* What a pointer array is a function of; compared with memcmp (no padding:
 * three pointers, six long longs, two ints). */
typedef struct pointer_array_key {
    const void *A, *B, *C;
    long long outer_a, inner_a, outer_b, inner_b, outer_c, inner_c;
    int32_t n_outer, n_inner;
} pointer_array_key;

struct lm_gemm_pointer_array {
    pointer_array_key key;
    void **device; /* the pointers of A, then of B, then of C, each list padded (see array_slots) */
};

/* Slots per list: the count rounded up to 4 pointers, so that the B and C
 * lists start 32-byte aligned like the A list (cuBLAS has refused
 * pointer arrays at lesser alignment with CUBLAS_STATUS_NOT_SUPPORTED). */
static size_t array_slots(const pointer_array_key *key) {
    return ((size_t)key->n_outer * (size_t)key->n_inner + 3) & ~(size_t)3;
}

/* Whether every matrix the arrays would point at is 16-byte aligned.
 * cuBLAS cannot see pointers held in device memory, and its tensor-core
 * kernels (tf32, bf16) assume that alignment: a misaligned matrix faults
 * and loses the context (e.g. attention scores at an odd T).  The strided
 * batch has no such rule, so the caller uses it when this is false, in
 * every precision (fp32 has no documented rule, and the shapes that break
 * it are rare enough that a safe path costs nothing that matters). */
static bool matrices_aligned(const pointer_array_key *key) {
    const uintptr_t bases = (uintptr_t)key->A | (uintptr_t)key->B | (uintptr_t)key->C;
    const long long strides =
        key->outer_a | key->inner_a | key->outer_b | key->inner_b | key->outer_c | key->inner_c;
    return bases % 16 == 0 && strides % 4 == 0; /* 4 floats: 16 bytes */
}

/* A training step of GPT-2 or BERT uses 6 per layer; evaluation and other
 * batch shapes add their own.  Past this many the cache is emptied (stale
 * entries of freed arenas are harmless but would pile up). */
#define LM_CUDA_POINTER_ARRAYS 1024

void lm_cuda_gemm_pointer_arrays_free(lm_cuda_ctx *ctx) {
    /* Callers have synchronised the stream: no queued GEMM reads an array. */
    for (int i = 0; i < ctx->n_gemm_pointer_arrays; i++) cudaFree(ctx->gemm_pointer_arrays[i].device);
    (void)cudaGetLastError(); /* a failed free is not the next op's failure */
    free(ctx->gemm_pointer_arrays);
    ctx->gemm_pointer_arrays = NULL;
    ctx->n_gemm_pointer_arrays = 0;
    ctx->gemm_pointer_arrays_generation++;
}

/* The device pointer arrays for `key`, built on first use; NULL when they
 * cannot be made (the caller then issues one strided batch per o). */
static void **pointer_arrays(lm_cuda_ctx *ctx, const pointer_array_key *key) {
    for (int i = 0; i < ctx->n_gemm_pointer_arrays; i++)
        if (memcmp(&ctx->gemm_pointer_arrays[i].key, key, sizeof *key) == 0) return ctx->gemm_pointer_arrays[i].device;
    if (ctx->n_gemm_pointer_arrays == LM_CUDA_POINTER_ARRAYS) {
        /* cudaFree is not documented to wait for queued work that reads the
         * arrays, so wait first (rare: after 1024 distinct shapes).  On a
         * failed wait keep them all: the fault is reported at the next sync. */
        if (cudaStreamSynchronize(ctx->stream) != cudaSuccess) return NULL;
        lm_cuda_gemm_pointer_arrays_free(ctx);
    }
    if (!ctx->gemm_pointer_arrays) {
        ctx->gemm_pointer_arrays =
            (lm_gemm_pointer_array *)calloc(LM_CUDA_POINTER_ARRAYS, sizeof *ctx->gemm_pointer_arrays);
        if (!ctx->gemm_pointer_arrays) return NULL;
    }
    const size_t slots = array_slots(key);
    const size_t bytes = 3 * slots * sizeof(void *);
    void **host = (void **)calloc(3 * slots, sizeof(void *));
    if (!host) return NULL;
    for (int o = 0; o < key->n_outer; o++)
        for (int i = 0; i < key->n_inner; i++) {
            const size_t e = (size_t)o * (size_t)key->n_inner + (size_t)i;
            host[e] = (void *)((const float *)key->A + o * key->outer_a + i * key->inner_a);
            host[slots + e] = (void *)((const float *)key->B + o * key->outer_b + i * key->inner_b);
            host[2 * slots + e] = (void *)((const float *)key->C + o * key->outer_c + i * key->inner_c);
        }
    void **device = NULL;
    cudaError_t err = cudaMalloc((void **)&device, bytes);
    /* From pageable memory the copy stages `host` before returning, and it
     * is queued on the context's stream, ahead of the GEMM that reads it. */
    if (err == cudaSuccess) err = cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, ctx->stream);
    free(host);
    if (err != cudaSuccess) {
        (void)cudaGetLastError(); /* not an op failure: the caller falls back */
        if (device) cudaFree(device);
        return NULL;
    }
    lm_gemm_pointer_array *entry = &ctx->gemm_pointer_arrays[ctx->n_gemm_pointer_arrays++];
    entry->key = *key;
    entry->device = device;
    return device;
}

void lm_cuda_gemm_batched_2d(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                             float alpha, const float *A, int lda, long long outer_a, long long inner_a,
                             const float *B, int ldb, long long outer_b, long long inner_b, float beta, float *C,
                             int ldc, long long outer_c, long long inner_c, int n_outer, int n_inner) {
    if (m <= 0 || n <= 0 || k <= 0 || n_outer <= 0 || n_inner <= 0) return;
    const pointer_array_key key = {A, B, C, outer_a, inner_a, outer_b, inner_b, outer_c, inner_c, n_outer, n_inner};
    void **arrays = n_outer > 1 && matrices_aligned(&key) ? pointer_arrays(ctx, &key) : NULL;
    if (arrays) {
        const size_t slots = array_slots(&key);
        cublasStatus_t status = cublasGemmBatchedEx(
            ctx->blas, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha,
            (const void *const *)arrays, CUDA_R_32F, lda, (const void *const *)(arrays + slots), CUDA_R_32F, ldb,
            &beta, arrays + 2 * slots, CUDA_R_32F, ldc, n_outer * n_inner, lm_cuda_compute_type(ctx),
            CUBLAS_GEMM_DEFAULT);
        /* Not supported: nothing was queued, and the strided batches below do the same product. */
        if (status != CUBLAS_STATUS_NOT_SUPPORTED) {
            lm_cuda_keep_cublas(ctx, op, status);
            return;
        }
    }
    /* One level at a time (also the whole batch when n_outer is 1). */
    for (int o = 0; o < n_outer; o++)
        lm_cuda_gemm_batched(ctx, op, trans_a, trans_b, m, n, k, alpha, A + o * outer_a, lda, inner_a,
                             B + o * outer_b, ldb, inner_b, beta, C + o * outer_c, ldc, inner_c, n_inner);
}

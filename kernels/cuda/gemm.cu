/* Column-major GEMMs for the linear layers (cuBLASLt, bias in the epilogue)
 * and for attention (cuBLAS strided-batched), in the context's precision.
 *
 * cuBLASLt assumes 256-byte aligned matrices unless told otherwise; our
 * tensors are slices of flat buffers (q = qkv + C, parameters carved from one
 * allocation), so the real alignment of every pointer is passed as a
 * preference, and a pointer cuBLASLt cannot serve falls back to cuBLAS. */
#include "gemm.cuh"

/* Largest power of two (up to 256) dividing the address. */
static uint32_t pointer_alignment(const void *p) {
    uintptr_t address = (uintptr_t)p;
    uint32_t alignment = 1;
    while (alignment < 256 && (address & (2u * alignment - 1u)) == 0) alignment *= 2;
    return alignment;
}

/* C[i + j·ldc] = (beta == 0 ? 0 : beta·C) + (bias ? bias[i] : 0) for i < m, j < n
 * (beta == 0 never reads C, as in cuBLAS). */
__global__ void lm_scale_add_bias_kernel(float *C, const float *bias, float beta, int m, int n, int ldc) {
    const size_t total = (size_t)m * n;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
        const int i = (int)(e % m);
        const size_t j = e / m;
        float *c = C + i + j * ldc;
        *c = (beta == 0.0f ? 0.0f : beta * *c) + (bias ? bias[i] : 0.0f);
    }
}

static void scale_add_bias(lm_cuda_ctx *ctx, const char *op, float *C, const float *bias, float beta, int m, int n,
                           int ldc) {
    const size_t total = (size_t)m * n;
    lm_scale_add_bias_kernel<<<lm_cuda_grid_for(total, LM_CUDA_BLOCK), LM_CUDA_BLOCK, 0, ctx->stream>>>(C, bias, beta, m,
                                                                                                       n, ldc);
    lm_cuda_check_launch(ctx, op);
}

static void gemm_cublas(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    lm_cuda_keep_cublas(ctx, op,
                        cublasGemmEx(ctx->blas, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     m, n, k, &alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, &beta, C, CUDA_R_32F, ldc,
                                     lm_cuda_compute_type(ctx), CUBLAS_GEMM_DEFAULT));
}

/* Returns 1 when cuBLASLt queued the product, 0 when it has no algorithm
 * for these pointers (the caller falls back), -1 on a kept failure. */
static int gemm_lt(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc, const float *bias) {
    cublasLtMatmulDesc_t desc = NULL;
    cublasLtMatrixLayout_t a_layout = NULL, b_layout = NULL, c_layout = NULL;
    cublasLtMatmulPreference_t preference = NULL;
    int result = -1;
    const int32_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int32_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const uint64_t workspace_bytes = ctx->lt_workspace_bytes;
    const uint32_t align_a = pointer_alignment(A), align_b = pointer_alignment(B), align_c = pointer_alignment(C);
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;

#define LT_TRY(call)                                                                                               \
    do {                                                                                                           \
        if (lm_cuda_keep_cublas(ctx, op, (call))) goto done;                                                       \
    } while (0)
    LT_TRY(cublasLtMatmulDescCreate(&desc, lm_cuda_compute_type(ctx), CUDA_R_32F));
    LT_TRY(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a));
    LT_TRY(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b));
    if (bias) {
        const uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        LT_TRY(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
        LT_TRY(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }
    LT_TRY(cublasLtMatrixLayoutCreate(&a_layout, CUDA_R_32F, trans_a ? k : m, trans_a ? m : k, lda));
    LT_TRY(cublasLtMatrixLayoutCreate(&b_layout, CUDA_R_32F, trans_b ? n : k, trans_b ? k : n, ldb));
    LT_TRY(cublasLtMatrixLayoutCreate(&c_layout, CUDA_R_32F, m, n, ldc));
    LT_TRY(cublasLtMatmulPreferenceCreate(&preference));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                                sizeof workspace_bytes));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a,
                                                sizeof align_a));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b,
                                                sizeof align_b));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c,
                                                sizeof align_c));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c,
                                                sizeof align_c));
    {
        /* "Not supported" here just means no algorithm: fall back quietly. */
        cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(ctx->lt, desc, a_layout, b_layout, c_layout, c_layout,
                                                               preference, 1, &heuristic, &found);
        if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
            result = 0;
            goto done;
        }
    }
    {
        cublasStatus_t status = cublasLtMatmul(ctx->lt, desc, &alpha, A, a_layout, B, b_layout, &beta, C, c_layout,
                                               C, c_layout, &heuristic.algo, ctx->lt_workspace,
                                               ctx->lt_workspace_bytes, ctx->stream);
        /* Nothing was queued when the algorithm turns out unsupported: fall back. */
        if (status == CUBLAS_STATUS_NOT_SUPPORTED) {
            result = 0;
            goto done;
        }
        LT_TRY(status);
    }
    result = 1;
#undef LT_TRY
done:
    if (preference) cublasLtMatmulPreferenceDestroy(preference);
    if (c_layout) cublasLtMatrixLayoutDestroy(c_layout);
    if (b_layout) cublasLtMatrixLayoutDestroy(b_layout);
    if (a_layout) cublasLtMatrixLayoutDestroy(a_layout);
    if (desc) cublasLtMatmulDescDestroy(desc);
    return result;
}

void lm_cuda_gemm(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                  const float *bias) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* empty product: C = beta·C (+ bias) */
        scale_add_bias(ctx, op, C, bias, beta, m, n, ldc);
        return;
    }
    /* The bias epilogue wants a 16-byte aligned vector. */
    const bool fuse_bias = bias && pointer_alignment(bias) >= 16;
    int done = gemm_lt(ctx, op, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc,
                       fuse_bias ? bias : NULL);
    if (done < 0) return;
    if (done == 0) gemm_cublas(ctx, op, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    if (bias && !fuse_bias) scale_add_bias(ctx, op, C, bias, 1.0f, m, n, ldc);
}

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

/* Column-major GEMM helpers over cuBLASLt and cuBLAS (internal).
 *
 * All matrices are float32 and column-major in cuBLAS's sense:
 * C[m x n] = alpha · op(A)[m x k] · op(B)[k x n] + beta · C (+ bias[m] per
 * row of C).  A row-major [R, K] buffer is a column-major [K x R] matrix
 * with ld = K: callers map their row-major problems onto these. */
#ifndef LM_CUDA_GEMM_CUH
#define LM_CUDA_GEMM_CUH

#include "cuda_common.cuh"

/* Through cuBLASLt with the bias fused in the epilogue when `bias` is
 * 16-byte aligned (else a separate bias kernel); falls back to cublasGemmEx
 * when cuBLASLt offers no algorithm for the pointers' alignment. */
void lm_cuda_gemm(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                  const float *bias);

/* The GEMMs on bf16 inputs (matmul_bf16.cu: the classifier's, c_proj's
 * matmul_forward_bf16_to_fp32, the fallbacks of the bf16 GELU GEMMs): bf16 A and B (column-major
 * as above), C = op(A)·op(B) + beta·C (+ bias[m] per row, fp32) in true
 * fp32 compute (CUBLAS_COMPUTE_32F, whatever the context's precision),
 * stored in bf16 (c_bf16: one rounding, the bias in cuBLASLt's epilogue
 * before it) or fp32.  Falls back to cublasGemmEx with the same types where
 * cuBLASLt has no algorithm; the bias then comes from a separate kernel,
 * which for a bf16 C rounds twice (product, then product + bias), and so
 * does a bias that is not 16-byte aligned. */
void lm_cuda_gemm_bf16(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                       const uint16_t *A, int lda, const uint16_t *B, int ldb, float beta, void *C, bool c_bf16,
                       int ldc, const float *bias);

/* C = gelu_tanh(op(A)·op(B) + bias) with the pre-GELU values written to
 * pre_gelu (same shape and leading dimension as C), in one cuBLASLt call
 * (CUBLASLT_EPILOGUE_GELU_AUX_BIAS; cuBLASLt's GELU is the tanh
 * approximation).  Returns 1 when queued, 0 when cuBLASLt cannot (the
 * aux matrix's alignment or leading dimension, no algorithm): nothing was
 * queued and the caller runs the unfused ops; -1 on a kept failure. */
int lm_cuda_gemm_gelu(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                      const float *A, int lda, const float *B, int ldb, float *C, int ldc, const float *bias,
                      float *pre_gelu);

/* C = (op(A)·op(B)) ⊙ gelu_tanh'(pre_gelu), written (beta = 0), in one
 * cuBLASLt call (CUBLASLT_EPILOGUE_DGELU, pre_gelu read as the aux matrix:
 * same shape and leading dimension as C).  With bias_grad (not NULL), the
 * same call also WRITES bias_grad = the sums of C's rows over its n columns
 * (m values; CUBLASLT_EPILOGUE_DGELU_BGRAD, the bias pointer its output):
 * only for a bias gradient that is written, never one to add to.  Returns as
 * lm_cuda_gemm_gelu: 1 queued, 0 nothing queued (bias_grad not 16-byte
 * aligned, the aux matrix's rules, no algorithm: the caller tries without
 * bias_grad, or runs the unfused ops), -1 a kept failure. */
int lm_cuda_gemm_dgelu(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                       const float *A, int lda, const float *B, int ldb, float *C, int ldc, const float *pre_gelu,
                       float *bias_grad);

/* The feed-forward block in bf16 (matmul_gelu_bf16.cu, gelu_matmul_bf16.cu):
 * lm_cuda_gemm_gelu and lm_cuda_gemm_dgelu with bf16 A, B, C and aux
 * matrix (pre_gelu, in C's type: cuBLASLt's default aux type), true fp32
 * compute (CUBLAS_COMPUTE_32F), the bias (forward) and the bias gradient
 * (DGELU_BGRAD) in fp32.  The epilogue works on the fp32 accumulator: the
 * forward's GELU reads the unrounded product and rounds C and pre_gelu
 * once each; the backward's gradient is rounded once into C and bias_grad
 * sums the unrounded values.  Same returns and refusals as the fp32 ones. */
int lm_cuda_gemm_gelu_bf16(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                           const uint16_t *A, int lda, const uint16_t *B, int ldb, uint16_t *C, int ldc,
                           const float *bias, uint16_t *pre_gelu);
int lm_cuda_gemm_dgelu_bf16(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                            const uint16_t *A, int lda, const uint16_t *B, int ldb, uint16_t *C, int ldc,
                            const uint16_t *pre_gelu, float *bias_grad);

/* C = op(A)·op(B), written (beta = 0), and in the same cuBLASLt call
 * (CUBLASLT_EPILOGUE_BGRADA when of_a, else BGRADB) bias_grad = the sums of
 * op(A)'s rows over k (m values) or of op(B)'s columns over k (n values),
 * written: a weight gradient's GEMM giving its bias gradient on the first
 * micro-batch of a step.  Returns as lm_cuda_gemm_gelu: 1 queued, 0
 * nothing queued (bias_grad not 16-byte aligned, no algorithm: the caller
 * runs the GEMM and the bias reduction), -1 a kept failure. */
int lm_cuda_gemm_bgrad(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                       const float *A, int lda, const float *B, int ldb, float *C, int ldc, bool of_a,
                       float *bias_grad);

/* `batch` independent GEMMs at A + i·stride_a, B + i·stride_b, C + i·stride_c
 * (cublasGemmStridedBatchedEx: any alignment, any leading dimension).
 * gemm_batched.cu. */
void lm_cuda_gemm_batched(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                          float alpha, const float *A, int lda, long long stride_a, const float *B, int ldb,
                          long long stride_b, float beta, float *C, int ldc, long long stride_c, int batch);

/* A two-level batch, n_outer x n_inner GEMMs: GEMM (o, i) at
 * A + o·outer_a + i·inner_a, B + o·outer_b + i·inner_b, C + o·outer_c + i·inner_c
 * (attention: o = batch row, i = head), in one cuBLAS call over device
 * arrays of pointers that are built on first use and kept in the context.
 * Falls back to one strided-batched call per o when the arrays cannot be
 * made, when a matrix is not 16-byte aligned, or when cuBLAS does not
 * support the pointer-array call.  gemm_batched.cu. */
void lm_cuda_gemm_batched_2d(lm_cuda_ctx *ctx, const char *op, bool trans_a, bool trans_b, int m, int n, int k,
                             float alpha, const float *A, int lda, long long outer_a, long long inner_a,
                             const float *B, int ldb, long long outer_b, long long inner_b, float beta, float *C,
                             int ldc, long long outer_c, long long inner_c, int n_outer, int n_inner);

/* Releases the cached pointer arrays; the stream must be synchronised
 * (lm_cuda_ctx_destroy calls it). */
void lm_cuda_gemm_pointer_arrays_free(lm_cuda_ctx *ctx);

/* Releases the cached cuBLASLt plans (lm_cuda_ctx_destroy calls it). */
void lm_cuda_gemm_plans_free(lm_cuda_ctx *ctx);

#endif

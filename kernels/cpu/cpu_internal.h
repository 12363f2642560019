/* lmkernels — helpers shared by the CPU kernels (not part of the op API).
 *
 * Threading model: OpenMP is the only source of parallelism.  OpenBLAS is
 * kept single-threaded (its pthread pool would fight the OpenMP team for
 * the same cores), and large GEMMs are split by rows of the output across
 * the OpenMP team instead.  No split ever cuts a reduction dimension and no
 * kernel uses atomics, so results are reproducible run to run for a given
 * thread count.  Across thread counts our own reductions are identical by
 * construction (fixed chunking, column-owned sums); GEMM results can differ
 * in the last bit if a row slice is small enough for OpenBLAS to pick its
 * small-matrix kernel (seen with unbalanced slices; with the balanced split
 * of lm_cpu_sgemm, 1-4 threads gave identical bits on every shape tried,
 * and test_kernels checks 1 vs 2 threads). */
#ifndef LM_KERNELS_CPU_INTERNAL_H
#define LM_KERNELS_CPU_INTERNAL_H

#include <cblas.h>
#include <stddef.h>

#if defined(__GNUC__)
#define LM_CPU_INTERNAL __attribute__((visibility("hidden")))
#else
#define LM_CPU_INTERNAL
#endif

/* Loops with less work than this (elements, or multiply-adds for
 * attention) run on the calling thread: a fork/join costs microseconds, and
 * far more when the cores are shared with other processes (a descheduled
 * team member stalls the barrier), which tiny calls cannot repay. */
#define LM_CPU_PARALLEL_MIN 32768L

/* Puts OpenBLAS in single-threaded mode once per process (idempotent, cheap
 * after the first call).  Every kernel that calls BLAS calls this first. */
LM_CPU_INTERNAL void lm_cpu_blas_init(void);

/* Number of OpenMP threads the kernels use now. */
LM_CPU_INTERNAL int lm_cpu_thread_count(void);

/* Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, with the M
 * rows split across the OpenMP team when the product is large enough to pay
 * for it.  Must not be called from inside a parallel region. */
LM_CPU_INTERNAL void lm_cpu_sgemm(enum CBLAS_TRANSPOSE trans_a, enum CBLAS_TRANSPOSE trans_b, int M, int N, int K,
                                  float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                                  int ldc);

#endif

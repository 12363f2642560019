/* lmkernels — helpers shared by the CPU kernels (not part of the op API).
 *
 * Threading model: the kernels run their loops on a small thread pool of
 * their own (threads.c), not on OpenMP teams.  An OpenMP team joins at a
 * barrier that waits for every member, and libgomp's idle members spin for
 * milliseconds between regions: on a machine shared with other processes
 * (2 cores, several busy processes) a training step with a few hundred
 * parallel loops ran 3x slower on 2 threads than on 1.  In the pool the
 * calling thread works too and waits only for tasks that a worker has
 * actually started, so a descheduled worker costs nothing, and idle workers
 * spin ~50 us before sleeping.  OpenMP remains for `omp simd` and for code
 * outside the kernels.
 *
 * Work is cut into tasks whose boundaries depend on the sizes only, never
 * on the thread count or on which thread runs a task; reductions are never
 * split across tasks and nothing uses atomics on data, so results are
 * identical run to run and across thread counts (test_kernels checks 1 vs 2
 * threads).  OpenBLAS is kept single-threaded: its pthreads pool would
 * fight the kernels' threads for the same cores, so large GEMMs are cut into
 * row or column tiles instead. */
#ifndef LM_KERNELS_CPU_INTERNAL_H
#define LM_KERNELS_CPU_INTERNAL_H

#include <cblas.h>
#include <stddef.h>

#include "kernels.h"     /* lm_grad_store */
#include "wide_clones.h" /* LM_CPU_WIDE_CLONES */

#if defined(__GNUC__)
#define LM_CPU_INTERNAL __attribute__((visibility("hidden")))
#else
#define LM_CPU_INTERNAL
#endif

/* The work of one task (elements, or rows times channels): a hand-off costs
 * about a microsecond and waking a sleeping worker tens, which smaller
 * pieces cannot repay.  A loop with less than this runs on the caller. */
#define LM_CPU_PARALLEL_MIN 32768L

/* Rows per task for a loop over rows of `width` elements. */
static inline long lm_cpu_rows_per_task(long width) {
    long rows = LM_CPU_PARALLEL_MIN / (width > 0 ? width : 1);
    return rows > 0 ? rows : 1;
}

/* fn(ctx, begin, end) for every piece [k*grain, min(n, (k+1)*grain)) of
 * [0, n), on the calling thread and the pool's workers, returning when all
 * are done.  Pieces may run in any order and concurrently.  Safe to call
 * from any thread (a second concurrent caller, or a task calling a kernel,
 * runs its pieces inline). */
typedef void (*lm_cpu_task_fn)(void *ctx, long begin, long end);
LM_CPU_INTERNAL void lm_cpu_parallel_for(long n, long grain, lm_cpu_task_fn fn, void *ctx);
/* The same pieces, on the calling thread alone when `parallel` is 0 (for
 * loops cut into fixed blocks whose total work may be small). */
LM_CPU_INTERNAL void lm_cpu_parallel_for_if(int parallel, long n, long grain, lm_cpu_task_fn fn, void *ctx);

/* n bf16 values widened (exact) into a new malloc'd block, which the caller
 * frees; NULL without memory.  The bf16 ops' references widen their operands
 * with it (convert_bf16.c). */
LM_CPU_INTERNAL float *lm_cpu_widened_bf16(const uint16_t *in, size_t n);

/* Puts OpenBLAS in single-threaded mode and reads the default thread count,
 * once per process (idempotent, cheap after the first call).  Every kernel
 * that calls BLAS calls this first. */
LM_CPU_INTERNAL void lm_cpu_blas_init(void);

/* Number of threads the kernels use now (the caller included). */
LM_CPU_INTERNAL int lm_cpu_thread_count(void);

/* Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, cut into
 * tiles of rows or columns run by the pool when the product is large
 * enough to pay for it. */
LM_CPU_INTERNAL void lm_cpu_sgemm(enum CBLAS_TRANSPOSE trans_a, enum CBLAS_TRANSPOSE trans_b, int M, int N, int K,
                                  float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                                  int ldc);

/* dbias[c] = Σ_n dout[n, c] (store LM_GRAD_WRITE, as 0 + the sum) or
 * += it (LM_GRAD_ADD), for dout [N, C]: matmul_backward's bias gradient
 * (matmul.c), also gelu_matmul_backward's dbias_pre, which must keep its
 * order of additions (GPT-2's c_fc bias took it from matmul_backward). */
LM_CPU_INTERNAL void lm_cpu_bias_backward(float *dbias, const float *dout, int N, int C, lm_grad_store store);

#endif

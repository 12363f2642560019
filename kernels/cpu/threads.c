/* lmkernels — thread count of the CPU kernels and the threaded GEMM.
 * See cpu_internal.h for why OpenBLAS runs single-threaded under OpenMP. */
#include <omp.h>
#include <pthread.h>

#include "cpu_internal.h"
#include "kernels.h"

/* OpenBLAS extensions (declared in its cblas.h, repeated here so the code
 * does not depend on which cblas.h the include path finds first). */
void openblas_set_num_threads(int num_threads);
int openblas_get_parallel(void); /* 0 sequential, 1 pthreads, 2 OpenMP */

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static int default_thread_count = 1;

static void blas_init_once(void) {
    /* The OpenMP default (OMP_NUM_THREADS or the core count), remembered
     * before anyone changes it so that lm_cpu_set_threads(0) can restore it. */
    default_thread_count = omp_get_max_threads();
    /* Only the pthreads build keeps its own pool.  The OpenMP build already
     * runs single-threaded inside our parallel regions, and there
     * openblas_set_num_threads would call omp_set_num_threads(1) and
     * serialise every kernel. */
    if (openblas_get_parallel() == 1) openblas_set_num_threads(1);
}

void lm_cpu_blas_init(void) {
    pthread_once(&blas_once, blas_init_once);
}

void lm_cpu_set_threads(int n) {
    lm_cpu_blas_init();
    omp_set_num_threads(n > 0 ? n : default_thread_count);
}

int lm_cpu_thread_count(void) {
    return omp_get_max_threads();
}

/* Below this many multiply-adds per thread a fork/join costs more than the
 * work saved. */
#define LM_GEMM_MIN_MACS_PER_THREAD (1L << 18)
/* Row blocks are multiples of this so that each thread's slice keeps whole
 * micro-kernel tiles. */
#define LM_GEMM_ROW_ALIGN 16

void lm_cpu_sgemm(enum CBLAS_TRANSPOSE trans_a, enum CBLAS_TRANSPOSE trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    lm_cpu_blas_init();
    if (M <= 0 || N <= 0) return;
    long macs = (long)M * N * (K > 0 ? K : 1);
    int threads = lm_cpu_thread_count();
    long useful = macs / LM_GEMM_MIN_MACS_PER_THREAD;
    if (useful < threads) threads = useful > 1 ? (int)useful : 1;
    if (threads > M / LM_GEMM_ROW_ALIGN) threads = M / LM_GEMM_ROW_ALIGN > 1 ? M / LM_GEMM_ROW_ALIGN : 1;
    if (threads <= 1) {
        cblas_sgemm(CblasRowMajor, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Whole 16-row tiles dealt out evenly (100 rows on 3 threads: 48, 32, 20). */
    int tiles = (M + LM_GEMM_ROW_ALIGN - 1) / LM_GEMM_ROW_ALIGN;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int part = 0; part < threads; part++) {
        int row0 = (int)((long)part * tiles / threads) * LM_GEMM_ROW_ALIGN;
        int row1 = (int)((long)(part + 1) * tiles / threads) * LM_GEMM_ROW_ALIGN;
        if (row1 > M) row1 = M;
        if (row1 <= row0) continue;
        /* Rows of op(A): rows of A when not transposed, columns otherwise. */
        const float *a_part = trans_a == CblasNoTrans ? A + (size_t)row0 * lda : A + row0;
        cblas_sgemm(CblasRowMajor, trans_a, trans_b, row1 - row0, N, K, alpha, a_part, lda, B, ldb, beta,
                    C + (size_t)row0 * ldc, ldc);
    }
}

/* lmkernels — the CPU kernels' thread pool and the split GEMM.
 * See cpu_internal.h for the threading model and why it is not OpenMP.
 *
 * The pool: `workers` threads sleep on a condition variable.  A job is n
 * tasks; the caller publishes it by storing (generation, n, next task = 0)
 * in one 64-bit atomic `claim`, wakes the sleepers, and then claims tasks
 * itself, like every worker, one compare-and-swap at a time.  The caller
 * returns when `done` reaches n.  A worker that is late (still asleep, or
 * descheduled by other processes) therefore never delays a job it has not
 * started: the caller simply runs the tasks itself.  A task's context is
 * read only after a successful claim, and a job cannot complete (nor the
 * next one be published) while one of its tasks is claimed but not done,
 * so a worker never runs one job's task with another job's function. */
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cpu_internal.h"
#include "kernels.h"

/* OpenBLAS extensions (declared in its cblas.h, repeated here so the code
 * does not depend on which cblas.h the include path finds first). */
void openblas_set_num_threads(int num_threads);
int openblas_get_parallel(void); /* 0 sequential, 1 pthreads, 2 OpenMP */

#define LM_POOL_MAX_WORKERS 255
/* claim = generation (24 bits) | task count (20) | next task (20). */
#define LM_CLAIM_BITS 20
#define LM_CLAIM_MASK ((1ull << LM_CLAIM_BITS) - 1)
#define LM_MAX_TASKS ((long)LM_CLAIM_MASK)
/* Pause iterations (~26 ns each on the AMD EPYC the project runs on) that a
 * worker spins on `claim` before sleeping: ~50 us catches the next op of a
 * training step without a wake-up and takes next to nothing from other
 * processes (25 us, 250 us and 2.5 ms measured alike on a quiet 16-core
 * machine; libgomp spins for milliseconds).  The caller waiting for claimed
 * tasks to finish spins as long, then yields its core. */
#define LM_WORKER_SPINS 2000
#define LM_CALLER_SPINS 2000

typedef struct pool {
    _Atomic uint64_t claim;
    _Atomic long done;
    _Atomic int sleepers;
    _Atomic int active_workers; /* workers with index < this take part */
    lm_cpu_task_fn fn;          /* the published job, stable while it runs */
    void *ctx;
    long grain, n;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic int shutdown;
    int workers; /* threads started */
    pthread_t threads[LM_POOL_MAX_WORKERS];
} pool;

static pool the_pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};
static atomic_flag pool_busy = ATOMIC_FLAG_INIT;
static _Thread_local int inside_pool_task;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static _Atomic int thread_count = 1;
static int default_thread_count = 1;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline uint64_t claim_pack(uint64_t generation, uint64_t n, uint64_t next) {
    return (generation << (2 * LM_CLAIM_BITS)) | (n << LM_CLAIM_BITS) | next;
}

/* Claims and runs tasks of the published job until none is left. */
static void run_tasks(pool *p) {
    uint64_t c = atomic_load(&p->claim);
    for (;;) {
        uint64_t next = c & LM_CLAIM_MASK, n = (c >> LM_CLAIM_BITS) & LM_CLAIM_MASK;
        if (next >= n) return;
        if (!atomic_compare_exchange_weak(&p->claim, &c, c + 1)) continue; /* c reloaded */
        long begin = (long)next * p->grain;
        long end = begin + p->grain < p->n ? begin + p->grain : p->n;
        p->fn(p->ctx, begin, end);
        atomic_fetch_add(&p->done, 1);
        c = atomic_load(&p->claim);
    }
}

static int has_work(pool *p) {
    uint64_t c = atomic_load(&p->claim);
    return (c & LM_CLAIM_MASK) < ((c >> LM_CLAIM_BITS) & LM_CLAIM_MASK);
}

static void *worker_main(void *arg) {
    pool *p = &the_pool;
    const int index = (int)(intptr_t)arg;
    inside_pool_task = 1; /* kernels called from a task run inline */
    for (;;) {
        int spins = 0;
        while (!(has_work(p) && index < atomic_load(&p->active_workers)) && spins < LM_WORKER_SPINS) {
            cpu_relax();
            spins++;
        }
        if (has_work(p) && index < atomic_load(&p->active_workers)) {
            run_tasks(p);
            continue;
        }
        pthread_mutex_lock(&p->lock);
        atomic_fetch_add(&p->sleepers, 1);
        while (!atomic_load(&p->shutdown) && !(has_work(p) && index < atomic_load(&p->active_workers)))
            pthread_cond_wait(&p->wake, &p->lock);
        atomic_fetch_sub(&p->sleepers, 1);
        int stop = atomic_load(&p->shutdown);
        pthread_mutex_unlock(&p->lock);
        if (stop) return NULL;
    }
}

/* Starts workers up to `wanted` (a failure to start one only means fewer). */
static void ensure_workers(pool *p, int wanted) {
    if (wanted > LM_POOL_MAX_WORKERS) wanted = LM_POOL_MAX_WORKERS;
    while (p->workers < wanted) {
        void *index = (void *)(intptr_t)p->workers;
        if (pthread_create(&p->threads[p->workers], NULL, worker_main, index) != 0) break;
        p->workers++;
    }
}

/* A forked child has the parent's memory but none of its workers. */
static void pool_after_fork_in_child(void) {
    pool *p = &the_pool;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->workers = 0;
    atomic_store(&p->sleepers, 0);
    atomic_store(&p->claim, claim_pack(0, 0, 0));
    atomic_flag_clear(&pool_busy);
}

/* Stops the workers when the library is unloaded (dlclose of a plugin that
 * links the kernels) or at exit: they must not outlive the code they run. */
__attribute__((destructor)) static void pool_stop(void) {
    pool *p = &the_pool;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->shutdown, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->workers; i++) pthread_join(p->threads[i], NULL);
    p->workers = 0;
}

static void init_threads_once(void) {
    /* The OpenMP default (OMP_NUM_THREADS or the core count) is the
     * default team size here too, remembered before anyone changes it so
     * that lm_cpu_set_threads(0) can restore it. */
    default_thread_count = omp_get_max_threads();
    if (default_thread_count < 1) default_thread_count = 1;
    atomic_store(&thread_count, default_thread_count);
    /* GEMMs run inside the kernels' own tasks: OpenBLAS must not start
     * threads of its own (pthreads build: its pool; OpenMP build: a team,
     * since our workers are not OpenMP threads and it would not see that it
     * is already inside a parallel section).  In the OpenMP build this also
     * sets the calling thread's OpenMP team size to 1, which
     * lm_cpu_set_threads overrides right after. */
    if (openblas_get_parallel() != 0) openblas_set_num_threads(1);
    pthread_atfork(NULL, NULL, pool_after_fork_in_child);
}

void lm_cpu_blas_init(void) {
    pthread_once(&init_once, init_threads_once);
}

void lm_cpu_set_threads(int n) {
    lm_cpu_blas_init();
    int count = n > 0 ? n : default_thread_count;
    if (count > LM_POOL_MAX_WORKERS + 1) count = LM_POOL_MAX_WORKERS + 1;
    atomic_store(&thread_count, count);
    /* Other OpenMP loops of the process (weight initialisation) follow. */
    omp_set_num_threads(count);
}

int lm_cpu_thread_count(void) {
    lm_cpu_blas_init();
    return atomic_load(&thread_count);
}

void lm_cpu_parallel_for(long n, long grain, lm_cpu_task_fn fn, void *ctx) {
    lm_cpu_parallel_for_if(1, n, grain, fn, ctx);
}

void lm_cpu_parallel_for_if(int parallel, long n, long grain, lm_cpu_task_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    long tasks = (n + grain - 1) / grain;
    if (tasks > LM_MAX_TASKS) {
        grain = (n + LM_MAX_TASKS - 1) / LM_MAX_TASKS;
        tasks = (n + grain - 1) / grain;
    }
    int threads = lm_cpu_thread_count();
    /* Single task, single thread, a task of the pool calling back into a
     * kernel, another thread using the pool, or the pool stopped (exit):
     * the same tasks, in order, on this thread (the results do not depend
     * on who runs a task). */
    if (!parallel || tasks == 1 || threads <= 1 || inside_pool_task || atomic_load(&the_pool.shutdown) ||
        atomic_flag_test_and_set(&pool_busy)) {
        for (long t = 0; t < tasks; t++) {
            long begin = t * grain;
            fn(ctx, begin, begin + grain < n ? begin + grain : n);
        }
        return;
    }
    pool *p = &the_pool;
    int workers = threads - 1 < tasks - 1 ? threads - 1 : (int)(tasks - 1);
    if (p->workers < workers) {
        pthread_mutex_lock(&p->lock);
        ensure_workers(p, workers);
        pthread_mutex_unlock(&p->lock);
    }
    p->fn = fn;
    p->ctx = ctx;
    p->grain = grain;
    p->n = n;
    atomic_store(&p->done, 0);
    atomic_store(&p->active_workers, workers);
    uint64_t generation = ((atomic_load(&p->claim) >> (2 * LM_CLAIM_BITS)) + 1) & 0xffffff;
    atomic_store(&p->claim, claim_pack(generation, (uint64_t)tasks, 0));
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    inside_pool_task = 1;
    run_tasks(p);
    inside_pool_task = 0;
    /* Tasks claimed by workers may still be running. */
    int spins = 0;
    while (atomic_load(&p->done) < tasks) {
        if (spins < LM_CALLER_SPINS) {
            cpu_relax();
            spins++;
        } else {
            sched_yield();
        }
    }
    atomic_flag_clear(&pool_busy);
}

/* ---- GEMM split over the pool ------------------------------------------- */

/* Below this many multiply-adds a GEMM task costs more to hand out than it
 * saves. */
#define LM_GEMM_MIN_TASK_MACS (1L << 20)

typedef struct gemm_job {
    enum CBLAS_TRANSPOSE trans_a, trans_b;
    int M, N, K, lda, ldb, ldc, split_rows;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_task(void *ctx, long begin, long end) {
    const gemm_job *g = ctx;
    int count = (int)(end - begin), first = (int)begin;
    if (g->split_rows) {
        /* Rows of op(A): rows of A when not transposed, columns otherwise. */
        const float *a = g->trans_a == CblasNoTrans ? g->A + (size_t)first * g->lda : g->A + first;
        cblas_sgemm(CblasRowMajor, g->trans_a, g->trans_b, count, g->N, g->K, g->alpha, a, g->lda, g->B, g->ldb,
                    g->beta, g->C + (size_t)first * g->ldc, g->ldc);
    } else {
        /* Columns of op(B): columns of B when not transposed, rows otherwise. */
        const float *b = g->trans_b == CblasNoTrans ? g->B + first : g->B + (size_t)first * g->ldb;
        cblas_sgemm(CblasRowMajor, g->trans_a, g->trans_b, g->M, count, g->K, g->alpha, g->A, g->lda, b, g->ldb,
                    g->beta, g->C + first, g->ldc);
    }
}

void lm_cpu_sgemm(enum CBLAS_TRANSPOSE trans_a, enum CBLAS_TRANSPOSE trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    lm_cpu_blas_init();
    if (M <= 0 || N <= 0) return;
    /* The output is cut along its longer side into tiles that depend on the
     * shape only (never on the thread count), so every thread count computes
     * the very same BLAS calls: a quarter of the side (enough tasks for one
     * thread to take over from a late one), at least 128 rows or columns.
     * Measured on one core, OpenBLAS loses 2-6 % against one whole call with
     * 256-wide tiles, 1-3 % with 512 and 0-2 % with 2048. */
    int split_rows = M >= N;
    long side = split_rows ? M : N;
    long tile = ((side / 4 + 15) / 16) * 16;
    if (tile < 128) tile = 128;
    long macs_per_line = (long)(split_rows ? N : M) * (K > 0 ? K : 1);
    while (tile < side && tile * macs_per_line < LM_GEMM_MIN_TASK_MACS) tile *= 2;
    gemm_job g = {trans_a, trans_b, M, N, K, lda, ldb, ldc, split_rows, alpha, beta, A, B, C};
    lm_cpu_parallel_for(side, tile, gemm_task, &g);
}

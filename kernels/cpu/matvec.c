/* lmkernels — linear layers over a few rows, as matrix-vector products.
 *
 * A decoding step multiplies one row (one new token) by every weight matrix,
 * which is bound by reading the weights.  Through sgemm that is a GEMM with
 * M = 1, for which OpenBLAS 0.3.21 still packs the weight into its panel
 * layout: in a generation profile 46 % of the time was sgemm_incopy, and the
 * tied head (8192 x 256) took 1.1-1.5 ms as sgemm against 0.2 ms as a
 * single sgemv.  The loops below read each weight once, in storage order,
 * and beat OpenBLAS's sgemv as well when the weights are not in cache
 * (the 2-core EPYC build machine, under load, one token through 4 layers
 * 256 wide and an 8192 x 256 head: 1.3-1.9 ms, against 2.6-2.9 ms with
 * sgemv on the same tiles and 3.6-4.6 ms with lm_cpu_matmul_forward).
 *
 * Output columns are cut into tiles that depend on the shape only and run
 * on the pool; a task handles every row of its tile.  Every output element
 * is summed in the same order whatever the tiling, so results do not depend
 * on the thread count. */
#include "cpu_internal.h"
#include "kernels.h"

/* Columns per task: about 8·LM_CPU_PARALLEL_MIN multiply-adds per row, a
 * multiple of 16 (64-byte row pieces). */
static long columns_per_task(int IC, int OC) {
    long columns = 8 * LM_CPU_PARALLEL_MIN / (IC > 0 ? IC : 1);
    columns = (columns + 15) / 16 * 16;
    if (columns < 64) columns = 64;
    return columns < OC ? columns : OC;
}

typedef struct matvec_job {
    float *out;
    const float *inp, *weight, *bias;
    int N, IC, OC;
    lm_weight_layout layout;
} matvec_job;

/* W[IC, OC] (Conv1D): y[o] = b[o] + Σ_i x[i] W[i, o], W's rows streamed
 * through the tile's accumulators (a tile of y stays in L1). */
static void matvec_in_out(float *y, const float *x, const float *weight, const float *bias, int IC, int OC, int o0,
                          int o1) {
    for (int o = o0; o < o1; o++) y[o] = bias ? bias[o] : 0.0f;
    for (int i = 0; i < IC; i++) {
        const float xi = x[i], *w = weight + (size_t)i * OC;
#pragma omp simd
        for (int o = o0; o < o1; o++) y[o] += xi * w[o];
    }
}

/* W[OC, IC] (torch.nn.Linear, the tied head): y[o] = b[o] + W[o, :] · x. */
static void matvec_out_in(float *y, const float *x, const float *weight, const float *bias, int IC, int o0, int o1) {
    for (int o = o0; o < o1; o++) {
        const float *w = weight + (size_t)o * IC;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int i = 0; i < IC; i++) dot += w[i] * x[i];
        y[o] = bias ? bias[o] + dot : dot;
    }
}

static void matvec_task(void *ctx, long begin, long end) {
    const matvec_job *j = ctx;
    for (int n = 0; n < j->N; n++) {
        float *y = j->out + (size_t)n * j->OC;
        const float *x = j->inp + (size_t)n * j->IC;
        if (j->layout == LM_W_IN_OUT)
            matvec_in_out(y, x, j->weight, j->bias, j->IC, j->OC, (int)begin, (int)end);
        else
            matvec_out_in(y, x, j->weight, j->bias, j->IC, (int)begin, (int)end);
    }
}

void lm_cpu_matvec_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                           int OC, lm_weight_layout layout) {
    if (N <= 0 || OC <= 0) return;
    matvec_job j = {out, inp, weight, bias, N, IC, OC, layout};
    lm_cpu_parallel_for(OC, columns_per_task(IC, OC), matvec_task, &j);
}

/* lmkernels — LayerNorms that write their output in bf16
 * (layernorm_forward_bf16, residual_layernorm_forward_bf16): references,
 * not fast paths (kernels/cuda/NOTES_bf16_storage.md, point 10).
 *
 * The fp32 op itself computes every value: lm_cpu_layernorm_forward runs
 * on a few rows at a time into `out` when the caller wants the fp32 output
 * too, else into a chunk on the stack, and each value is rounded once.  A
 * row's values do not depend on which other rows share its call, so
 * out_bf16 is convert_to_bf16 of the fp32 op's output bit for bit, and out,
 * mean and rstd are the fp32 op's bits.  Only a row wider than the stack
 * chunk without an fp32 output needs memory (an [N, C] scratch, as the
 * other bf16 twins take): without it the op writes nothing and returns -1,
 * and the backend keeps the failure. */
#include <stdlib.h>

#include "bf16.h"
#include "cpu_internal.h"
#include "kernels.h"

/* fp32 values of one chunk on a task's stack (16 KiB), and at most this
 * many rows per chunk (their mean and rstd when the caller keeps none). */
#define LM_LN_BF16_CHUNK_FLOATS 4096
#define LM_LN_BF16_CHUNK_ROWS 64

typedef struct layernorm_bf16_job {
    uint16_t *out_bf16;
    float *out, *mean, *rstd; /* each may be NULL */
    const float *inp, *weight, *bias;
    int C;
    float eps;
} layernorm_bf16_job;

/* Rows [begin, end) in chunks of rows that fit the stack. */
static void layernorm_bf16_task(void *ctx, long begin, long end) {
    const layernorm_bf16_job *j = ctx;
    const size_t C = (size_t)j->C;
    float values[LM_LN_BF16_CHUNK_FLOATS], mean[LM_LN_BF16_CHUNK_ROWS], rstd[LM_LN_BF16_CHUNK_ROWS];
    long rows_per_chunk = j->out ? LM_LN_BF16_CHUNK_ROWS : LM_LN_BF16_CHUNK_FLOATS / (long)C;
    if (rows_per_chunk > LM_LN_BF16_CHUNK_ROWS) rows_per_chunk = LM_LN_BF16_CHUNK_ROWS;
    for (long first = begin; first < end; first += rows_per_chunk) {
        const long rows = end - first < rows_per_chunk ? end - first : rows_per_chunk;
        const size_t at = (size_t)first * C, n = (size_t)rows * C;
        float *y = j->out ? j->out + at : values;
        /* Inside a pool task the fp32 op runs on this thread (threads.c). */
        lm_cpu_layernorm_forward(y, j->mean ? j->mean + first : mean, j->rstd ? j->rstd + first : rstd,
                                 j->inp + at, j->weight, j->bias, (int)rows, (int)C, j->eps);
        for (size_t i = 0; i < n; i++) j->out_bf16[at + i] = lm_bf16_from_float(y[i]);
    }
}

/* An [N, C] fp32 scratch where a row without an fp32 output is wider than
 * the stack chunk (*scratch NULL where none is needed); 0 without memory. */
static int take_scratch(float **scratch, const float *out, int N, int C) {
    *scratch = NULL;
    if (out || C <= LM_LN_BF16_CHUNK_FLOATS) return 1;
    *scratch = malloc((size_t)N * (size_t)C * sizeof **scratch);
    return *scratch != NULL;
}

int lm_cpu_layernorm_forward_bf16(uint16_t *out_bf16, float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int N, int C, float eps) {
    if (N <= 0 || C <= 0) return 0;
    float *scratch;
    if (!take_scratch(&scratch, out, N, C)) return -1;
    layernorm_bf16_job j = {out_bf16, out ? out : scratch, mean, rstd, inp, weight, bias, C, eps};
    lm_cpu_parallel_for(N, lm_cpu_rows_per_task(C), layernorm_bf16_task, &j);
    free(scratch);
    return 0;
}

/* residual_layernorm.c's composition (dropout, the residual add, then the
 * LayerNorm: the same bits), the LayerNorm the one above; the scratch is
 * taken first, so that a failure writes nothing. */
int lm_cpu_residual_layernorm_forward_bf16(float *residual, uint16_t *out_bf16, float *out, float *mean, float *rstd,
                                           const float *a, const float *branch, const float *weight,
                                           const float *bias, int N, int C, float eps, float p, uint64_t seed,
                                           uint64_t stream) {
    if (N <= 0 || C <= 0) return 0;
    float *scratch;
    if (!take_scratch(&scratch, out, N, C)) return -1;
    const size_t n = (size_t)N * (size_t)C;
    if (p > 0.0f) {
        lm_cpu_dropout_forward(residual, branch, n, p, seed, stream);
        lm_cpu_residual_forward(residual, a, residual, n);
    } else {
        lm_cpu_residual_forward(residual, a, branch, n);
    }
    layernorm_bf16_job j = {out_bf16, out ? out : scratch, mean, rstd, residual, weight, bias, C, eps};
    lm_cpu_parallel_for(N, lm_cpu_rows_per_task(C), layernorm_bf16_task, &j);
    free(scratch);
    return 0;
}

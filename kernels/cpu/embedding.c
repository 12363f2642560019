/* lmkernels — token + position (+ token type) embeddings. */
#include "cpu_internal.h"
#include "kernels.h"

typedef struct embedding_job {
    float *out, *dwte, *dwpe, *dwtt;
    const int32_t *ids, *type_ids;
    const float *wte, *wpe, *wtt, *dout;
    int B, T, C;
} embedding_job;

static void embedding_forward_task(void *ctx, long begin, long end) {
    const embedding_job *j = ctx;
    const int T = j->T, C = j->C;
    for (long bt = begin; bt < end; bt++) {
        int t = (int)(bt % T);
        float *row = j->out + (size_t)bt * C;
        const float *token = j->wte + (size_t)j->ids[bt] * C;
        const float *position = j->wpe + (size_t)t * C;
        if (j->wtt) {
            const float *type = j->wtt + (size_t)(j->type_ids ? j->type_ids[bt] : 0) * C;
            /* Hugging Face BERT adds (word + type) + position, in that order. */
#pragma omp simd
            for (int c = 0; c < C; c++) row[c] = (token[c] + type[c]) + position[c];
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) row[c] = token[c] + position[c];
        }
    }
}

void lm_cpu_embedding_forward(float *out, const int32_t *ids, const int32_t *type_ids, const float *wte,
                              const float *wpe, const float *wtt, int B, int T, int C) {
    embedding_job j = {.out = out, .ids = ids, .type_ids = type_ids, .wte = wte, .wpe = wpe, .wtt = wtt,
                       .B = B, .T = T, .C = C};
    lm_cpu_parallel_for((long)B * T, lm_cpu_rows_per_task(C), embedding_forward_task, &j);
}

/* The scatter into dwte has conflicts (a token repeats), so the work is split
 * by channel blocks instead of by rows: each task owns whole columns and
 * visits the rows in order, which keeps the sums free of races and their
 * order independent of the thread count. */
#define LM_EMBEDDING_CHANNEL_BLOCK 64

static void embedding_backward_task(void *ctx, long begin, long end) {
    const embedding_job *j = ctx;
    const int T = j->T, C = j->C, c0 = (int)begin, c1 = (int)end;
    for (long bt = 0; bt < (long)j->B * T; bt++) {
        int t = (int)(bt % T);
        const float *g = j->dout + (size_t)bt * C;
        float *token = j->dwte + (size_t)j->ids[bt] * C;
        float *position = j->dwpe + (size_t)t * C;
        for (int c = c0; c < c1; c++) {
            token[c] += g[c];
            position[c] += g[c];
        }
        if (j->dwtt) {
            float *type = j->dwtt + (size_t)(j->type_ids ? j->type_ids[bt] : 0) * C;
            for (int c = c0; c < c1; c++) type[c] += g[c];
        }
    }
}

void lm_cpu_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                               const int32_t *type_ids, int B, int T, int C) {
    embedding_job j = {.dwte = dwte, .dwpe = dwpe, .dwtt = dwtt, .ids = ids, .type_ids = type_ids, .dout = dout,
                       .B = B, .T = T, .C = C};
    lm_cpu_parallel_for_if((long)B * T * C >= LM_CPU_PARALLEL_MIN, C, LM_EMBEDDING_CHANNEL_BLOCK,
                           embedding_backward_task, &j);
}

/* lmkernels — token + position (+ token type) embeddings. */
#include "cpu_internal.h"
#include "kernels.h"

void lm_cpu_embedding_forward(float *out, const int32_t *ids, const int32_t *type_ids, const float *wte,
                              const float *wpe, const float *wtt, int B, int T, int C) {
#pragma omp parallel for schedule(static) if ((long)B * T * C >= LM_CPU_PARALLEL_MIN)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        float *row = out + (size_t)bt * C;
        const float *token = wte + (size_t)ids[bt] * C;
        const float *position = wpe + (size_t)t * C;
        if (wtt) {
            const float *type = wtt + (size_t)(type_ids ? type_ids[bt] : 0) * C;
            /* Hugging Face BERT adds (word + type) + position, in that order. */
            for (int c = 0; c < C; c++) row[c] = (token[c] + type[c]) + position[c];
        } else {
            for (int c = 0; c < C; c++) row[c] = token[c] + position[c];
        }
    }
}

/* The scatter into dwte has conflicts (a token repeats), so the work is split
 * by channel blocks instead of by rows: each thread owns whole columns and
 * visits the rows in order, which keeps the sums free of races and their
 * order independent of the thread count. */
#define LM_EMBEDDING_CHANNEL_BLOCK 64

void lm_cpu_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                               const int32_t *type_ids, int B, int T, int C) {
    int blocks = (C + LM_EMBEDDING_CHANNEL_BLOCK - 1) / LM_EMBEDDING_CHANNEL_BLOCK;
#pragma omp parallel for schedule(static) if ((long)B * T * C >= LM_CPU_PARALLEL_MIN)
    for (int block = 0; block < blocks; block++) {
        int c0 = block * LM_EMBEDDING_CHANNEL_BLOCK;
        int c1 = c0 + LM_EMBEDDING_CHANNEL_BLOCK < C ? c0 + LM_EMBEDDING_CHANNEL_BLOCK : C;
        for (int bt = 0; bt < B * T; bt++) {
            int t = bt % T;
            const float *g = dout + (size_t)bt * C;
            float *token = dwte + (size_t)ids[bt] * C;
            float *position = dwpe + (size_t)t * C;
            for (int c = c0; c < c1; c++) {
                token[c] += g[c];
                position[c] += g[c];
            }
            if (dwtt) {
                float *type = dwtt + (size_t)(type_ids ? type_ids[bt] : 0) * C;
                for (int c = c0; c < c1; c++) type[c] += g[c];
            }
        }
    }
}

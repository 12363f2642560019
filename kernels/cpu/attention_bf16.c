/* lmkernels — attention on bf16 storage (attention_forward_bf16,
 * attention_backward_bf16 and their fused twins): references, not fast
 * paths.  q, k and v are widened (exact) into fp32 copies with the caller's
 * row stride, so that the fp32 ops of attention.c / attention_fused.c run
 * on them unchanged and write dq/dk/dv where the caller's stride puts them;
 * the forward's output is rounded to bf16 once.  So the fp32 bits before
 * the rounding, the probabilities, the lse and the gradients are the fp32
 * ops' on the widened values (kernels/cuda/NOTES_bf16_storage.md, point 9).
 *
 * The copies are allocated per call (the CPU runs this only where
 * activation_dtype=bf16 is forced); without memory the op writes nothing
 * and returns -1, and the backend keeps the failure. */
#include <stdlib.h>

#include "bf16.h"
#include "kernels.h"

/* The C columns of `rows` rows `stride` apart, widened into a new block
 * with the same layout (the columns between rows are left unset: the fp32
 * ops never read them).  NULL without memory. */
static float *widened_rows(const uint16_t *src, size_t rows, int C, int stride) {
    const size_t span = rows ? (rows - 1) * (size_t)stride + (size_t)C : 1;
    float *out = malloc(span * sizeof *out);
    if (!out) return NULL;
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < C; c++) {
            const size_t at = r * (size_t)stride + (size_t)c;
            out[at] = lm_bf16_to_float(src[at]);
        }
    return out;
}

/* The widened q, k and v of one call. */
typedef struct widened_qkv {
    float *q, *k, *v;
} widened_qkv;

static int widen_qkv(widened_qkv *w, const uint16_t *q, const uint16_t *k, const uint16_t *v, int stride, int B,
                     int T, int C) {
    const size_t rows = (size_t)B * (size_t)T;
    w->q = widened_rows(q, rows, C, stride);
    w->k = widened_rows(k, rows, C, stride);
    w->v = widened_rows(v, rows, C, stride);
    return w->q && w->k && w->v;
}

static void free_qkv(widened_qkv *w) {
    free(w->q);
    free(w->k);
    free(w->v);
}

/* An [N, C] fp32 output, written then rounded into out. */
static float *output_scratch(int B, int T, int C) {
    const size_t n = (size_t)B * (size_t)T * (size_t)C;
    return malloc((n ? n : 1) * sizeof(float));
}

int lm_cpu_attention_forward_bf16(uint16_t *out, float *preatt, float *att, const uint16_t *q, const uint16_t *k,
                                  const uint16_t *v, int stride, const int32_t *key_mask, int causal, int B, int T,
                                  int C, int NH, float dropout_p, uint64_t seed, uint64_t stream) {
    widened_qkv w;
    float *out32 = output_scratch(B, T, C);
    const int ok = widen_qkv(&w, q, k, v, stride, B, T, C) && out32;
    if (ok) {
        lm_cpu_attention_forward(out32, preatt, att, w.q, w.k, w.v, stride, key_mask, causal, B, T, C, NH, dropout_p,
                                 seed, stream);
        lm_cpu_convert_to_bf16(out, out32, (size_t)B * (size_t)T * (size_t)C);
    }
    free(out32);
    free_qkv(&w);
    return ok ? 0 : -1;
}

int lm_cpu_attention_backward_bf16(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                   const float *preatt, const float *att, const uint16_t *q, const uint16_t *k,
                                   const uint16_t *v, int stride, int B, int T, int C, int NH, float dropout_p,
                                   uint64_t seed, uint64_t stream) {
    widened_qkv w;
    const int ok = widen_qkv(&w, q, k, v, stride, B, T, C);
    if (ok)
        lm_cpu_attention_backward(dq, dk, dv, scratch, dout, preatt, att, w.q, w.k, w.v, stride, B, T, C, NH,
                                  dropout_p, seed, stream);
    free_qkv(&w);
    return ok ? 0 : -1;
}

int lm_cpu_attention_fused_forward_bf16(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k,
                                        const uint16_t *v, int stride, const int32_t *key_mask, int causal, int B,
                                        int T, int C, int NH, float dropout_p, uint64_t seed, uint64_t stream) {
    widened_qkv w;
    float *out32 = output_scratch(B, T, C);
    const int ok = widen_qkv(&w, q, k, v, stride, B, T, C) && out32;
    if (ok) {
        lm_cpu_attention_fused_forward(out32, lse, w.q, w.k, w.v, stride, key_mask, causal, B, T, C, NH, dropout_p,
                                       seed, stream);
        lm_cpu_convert_to_bf16(out, out32, (size_t)B * (size_t)T * (size_t)C);
    }
    free(out32);
    free_qkv(&w);
    return ok ? 0 : -1;
}

int lm_cpu_attention_fused_backward_bf16(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                         const uint16_t *out, const float *lse, const uint16_t *q, const uint16_t *k,
                                         const uint16_t *v, int stride, const int32_t *key_mask, int causal, int B,
                                         int T, int C, int NH, float dropout_p, uint64_t seed, uint64_t stream) {
    widened_qkv w;
    /* out is [B, T, C], contiguous: its rows are C apart. */
    float *out32 = widened_rows(out, (size_t)B * (size_t)T, C, C);
    const int ok = widen_qkv(&w, q, k, v, stride, B, T, C) && out32;
    if (ok)
        lm_cpu_attention_fused_backward(dq, dk, dv, scratch, dout, out32, lse, w.q, w.k, w.v, stride, key_mask,
                                        causal, B, T, C, NH, dropout_p, seed, stream);
    free(out32);
    free_qkv(&w);
    return ok ? 0 : -1;
}

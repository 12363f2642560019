/* lmkernels — GELU and its gradient on bf16 storage (gelu_forward_bf16,
 * gelu_backward_bf16): the fp32 ops of gelu.c on the widened values, a
 * chunk at a time on the stack, each output rounded once.  References, not
 * fast paths (kernels/cuda/NOTES_bf16_storage.md); unlike the GEMMs'
 * twins they allocate nothing, so they cannot fail. */
#include "bf16.h"
#include "kernels.h"

/* Elements per chunk: 3 x 4 KiB of fp32 on the stack. */
#define LM_GELU_BF16_CHUNK 1024

void lm_cpu_gelu_forward_bf16(uint16_t *out, const uint16_t *inp, size_t n, int approx_tanh) {
    float x[LM_GELU_BF16_CHUNK], y[LM_GELU_BF16_CHUNK];
    for (size_t first = 0; first < n; first += LM_GELU_BF16_CHUNK) {
        const size_t len = n - first < LM_GELU_BF16_CHUNK ? n - first : LM_GELU_BF16_CHUNK;
        for (size_t i = 0; i < len; i++) x[i] = lm_bf16_to_float(inp[first + i]);
        lm_cpu_gelu_forward(y, x, len, approx_tanh);
        for (size_t i = 0; i < len; i++) out[first + i] = lm_bf16_from_float(y[i]);
    }
}

void lm_cpu_gelu_backward_bf16(uint16_t *dinp, const uint16_t *inp, const float *dout, size_t n, int approx_tanh) {
    float x[LM_GELU_BF16_CHUNK], dx[LM_GELU_BF16_CHUNK];
    for (size_t first = 0; first < n; first += LM_GELU_BF16_CHUNK) {
        const size_t len = n - first < LM_GELU_BF16_CHUNK ? n - first : LM_GELU_BF16_CHUNK;
        for (size_t i = 0; i < len; i++) x[i] = lm_bf16_to_float(inp[first + i]);
        lm_cpu_gelu_backward(dx, x, dout + first, len, approx_tanh);
        for (size_t i = 0; i < len; i++) dinp[first + i] = lm_bf16_from_float(dx[i]);
    }
}

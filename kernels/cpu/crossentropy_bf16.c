/* lmkernels — the loss ops on bf16 logits (crossentropy_*_bf16): the fp32
 * ops of crossentropy.c on the widened logits, a block of rows at a time,
 * and the gradients rounded to bf16 once.  So a bf16 op's losses are the
 * fp32 op's on the widened logits bit for bit, and its dlogits those
 * gradients rounded (tests/bf16_logits checks both).  A reference, not a
 * fast path: each block is widened into a scratch allocated per call (at
 * most LM_CE_BF16_BLOCK_FLOATS floats, or one row); without memory the op
 * returns -1 and the backend keeps the failure. */
#include <stdlib.h>

#include "cpu_internal.h"
#include "kernels.h"

/* 4 MiB of fp32 rows per block (at least one row). */
#define LM_CE_BF16_BLOCK_FLOATS ((size_t)1 << 20)

static int block_rows(int N, int stride) {
    size_t rows = LM_CE_BF16_BLOCK_FLOATS / (size_t)(stride > 0 ? stride : 1);
    if (rows < 1) rows = 1;
    return rows < (size_t)N ? (int)rows : N;
}

/* The three ops differ only in the fp32 op they run on a block. */
typedef enum ce_kind { CE_FORWARD, CE_BACKWARD, CE_FORWARD_BACKWARD } ce_kind;

static int run_blocks(ce_kind kind, float *losses, uint16_t *dlogits, const uint16_t *logits, const int32_t *labels,
                      float dloss, int N, int V, int stride) {
    if (N <= 0) return 0;
    const int rows = block_rows(N, stride);
    const size_t block = (size_t)rows * (size_t)stride;
    const int in_place = kind == CE_BACKWARD && dlogits == logits;
    /* Out of place the backward adds to dlogits: its widened values too. */
    float *x = malloc(block * sizeof *x);
    float *dx = kind == CE_BACKWARD && !in_place ? malloc(block * sizeof *dx) : NULL;
    if (!x || (kind == CE_BACKWARD && !in_place && !dx)) {
        free(dx);
        free(x);
        return -1;
    }
    for (int first = 0; first < N; first += rows) {
        const int n = N - first < rows ? N - first : rows;
        const size_t offset = (size_t)first * (size_t)stride, count = (size_t)n * (size_t)stride;
        lm_cpu_widen_bf16(x, logits + offset, count);
        switch (kind) {
        case CE_FORWARD: (void)lm_cpu_crossentropy_forward(losses + first, x, labels + first, n, V, stride); break;
        case CE_FORWARD_BACKWARD:
            lm_cpu_crossentropy_forward_backward(losses + first, x, labels + first, dloss, n, V, stride);
            lm_cpu_convert_to_bf16(dlogits + offset, x, count);
            break;
        case CE_BACKWARD:
            if (in_place) {
                lm_cpu_crossentropy_backward(x, x, labels + first, dloss, n, V, stride);
                lm_cpu_convert_to_bf16(dlogits + offset, x, count);
            } else {
                lm_cpu_widen_bf16(dx, dlogits + offset, count);
                lm_cpu_crossentropy_backward(dx, x, labels + first, dloss, n, V, stride);
                lm_cpu_convert_to_bf16(dlogits + offset, dx, count);
            }
            break;
        }
    }
    free(dx);
    free(x);
    return 0;
}

int lm_cpu_crossentropy_forward_bf16(float *losses, const uint16_t *logits, const int32_t *labels, int N, int V,
                                     int stride) {
    return run_blocks(CE_FORWARD, losses, NULL, logits, labels, 0.0f, N, V, stride);
}

int lm_cpu_crossentropy_backward_bf16(uint16_t *dlogits, const uint16_t *logits, const int32_t *labels, float dloss,
                                      int N, int V, int stride) {
    return run_blocks(CE_BACKWARD, NULL, dlogits, logits, labels, dloss, N, V, stride);
}

int lm_cpu_crossentropy_forward_backward_bf16(float *losses, uint16_t *logits, const int32_t *labels, float dloss,
                                              int N, int V, int stride) {
    return run_blocks(CE_FORWARD_BACKWARD, losses, logits, logits, labels, dloss, N, V, stride);
}

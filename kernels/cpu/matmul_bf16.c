/* lmkernels — the GEMMs on bf16 inputs (matmul_forward_bf16,
 * matmul_forward_bf16_to_fp32, matmul_backward_bf16): references, not fast paths.  The bf16 operands are
 * widened to fp32 (exact), the fp32 ops of matmul.c run on them, and the
 * forward's output is rounded to bf16 once, after the bias: "the fp32 op
 * with its inputs and outputs rounded to bf16" (kernels/cuda/NOTES_bf16_storage.md), so
 * the fp32 bits before the rounding are matmul_forward's / matmul_backward's
 * on the widened values.  A GPU accumulates in another order.
 *
 * The widened copies are allocated per call (a reference path: the CPU
 * runs it only where logits_dtype=bf16 or activation_dtype=bf16 is forced); without memory the op
 * returns -1 and the backend keeps the failure. */
#include <stdlib.h>

#include "cpu_internal.h"
#include "kernels.h"

int lm_cpu_matmul_forward_bf16(uint16_t *out, const uint16_t *inp, const uint16_t *weight, const float *bias, int N,
                               int IC, int OC, lm_weight_layout layout) {
    const size_t n_out = (size_t)N * (size_t)OC;
    float *inp32 = lm_cpu_widened_bf16(inp, (size_t)N * (size_t)IC);
    float *weight32 = lm_cpu_widened_bf16(weight, (size_t)IC * (size_t)OC);
    float *out32 = malloc((n_out ? n_out : 1) * sizeof *out32);
    const int ok = inp32 && weight32 && out32;
    if (ok) {
        lm_cpu_matmul_forward(out32, inp32, weight32, bias, N, IC, OC, layout);
        lm_cpu_convert_to_bf16(out, out32, n_out);
    }
    free(out32);
    free(weight32);
    free(inp32);
    return ok ? 0 : -1;
}

int lm_cpu_matmul_forward_bf16_to_fp32(float *out, const uint16_t *inp, const uint16_t *weight, const float *bias,
                                       int N, int IC, int OC, lm_weight_layout layout) {
    float *inp32 = lm_cpu_widened_bf16(inp, (size_t)N * (size_t)IC);
    float *weight32 = lm_cpu_widened_bf16(weight, (size_t)IC * (size_t)OC);
    const int ok = inp32 && weight32;
    if (ok) lm_cpu_matmul_forward(out, inp32, weight32, bias, N, IC, OC, layout);
    free(weight32);
    free(inp32);
    return ok ? 0 : -1;
}

int lm_cpu_matmul_backward_bf16(float *dinp, float *dweight, float *dbias, const uint16_t *dout, const uint16_t *inp,
                                const uint16_t *weight, int N, int IC, int OC, lm_weight_layout layout,
                                lm_grad_store dinp_store, lm_grad_store dparam_store) {
    /* Only what the requested outputs read. */
    float *dout32 = lm_cpu_widened_bf16(dout, (size_t)N * (size_t)OC);
    float *inp32 = dweight ? lm_cpu_widened_bf16(inp, (size_t)N * (size_t)IC) : NULL;
    float *weight32 = dinp ? lm_cpu_widened_bf16(weight, (size_t)IC * (size_t)OC) : NULL;
    const int ok = dout32 && (!dweight || inp32) && (!dinp || weight32);
    if (ok)
        lm_cpu_matmul_backward(dinp, dweight, dbias, dout32, inp32, weight32, N, IC, OC, layout, dinp_store,
                               dparam_store);
    free(weight32);
    free(inp32);
    free(dout32);
    return ok ? 0 : -1;
}

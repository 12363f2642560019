/* lmkernels — GPT-2's c_fc + GELU and its backward on bf16 storage
 * (matmul_gelu_forward_bf16, gelu_matmul_backward_bf16): references, not
 * fast paths.  The fp32 fused ops (matmul_gelu.c, gelu_matmul.c) run on the
 * widened operands and their bf16 outputs are rounded once, so the GELU
 * reads the unrounded product and dbias_pre sums the unrounded gradient, as
 * the cuBLASLt epilogues do (backend_ops.def).  fp32 scratch is allocated
 * per call; without memory the op returns -1, writes nothing, and the
 * backend keeps the failure. */
#include <stdlib.h>

#include "cpu_internal.h"
#include "kernels.h"

int lm_cpu_matmul_gelu_forward_bf16(uint16_t *out, uint16_t *pre_gelu, const uint16_t *inp, const uint16_t *weight,
                                    const float *bias, int N, int IC, int OC, lm_weight_layout layout) {
    const size_t n_out = (size_t)N * (size_t)OC;
    float *inp32 = lm_cpu_widened_bf16(inp, (size_t)N * (size_t)IC);
    float *weight32 = lm_cpu_widened_bf16(weight, (size_t)IC * (size_t)OC);
    float *pre32 = malloc((n_out ? n_out : 1) * sizeof *pre32), *out32 = malloc((n_out ? n_out : 1) * sizeof *out32);
    const int ok = inp32 && weight32 && pre32 && out32;
    if (ok) {
        lm_cpu_matmul_gelu_forward(out32, pre32, inp32, weight32, bias, N, IC, OC, layout);
        lm_cpu_convert_to_bf16(pre_gelu, pre32, n_out);
        lm_cpu_convert_to_bf16(out, out32, n_out);
    }
    free(out32);
    free(pre32);
    free(weight32);
    free(inp32);
    return ok ? 0 : -1;
}

int lm_cpu_gelu_matmul_backward_bf16(uint16_t *dpre_gelu, float *dweight, float *dbias, float *dbias_pre,
                                     const uint16_t *dout, const uint16_t *gelu_out, const uint16_t *pre_gelu,
                                     const uint16_t *weight, int N, int IC, int OC, lm_weight_layout layout,
                                     lm_grad_store dparam_store) {
    const size_t n_in = (size_t)N * (size_t)IC;
    float *dout32 = lm_cpu_widened_bf16(dout, (size_t)N * (size_t)OC), *gelu32 = lm_cpu_widened_bf16(gelu_out, n_in);
    float *pre32 = lm_cpu_widened_bf16(pre_gelu, n_in);
    float *weight32 = lm_cpu_widened_bf16(weight, (size_t)IC * (size_t)OC);
    float *dpre32 = malloc((n_in ? n_in : 1) * sizeof *dpre32);
    const int ok = dout32 && gelu32 && pre32 && weight32 && dpre32;
    if (ok) {
        lm_cpu_gelu_matmul_backward(dpre32, dweight, dbias, dbias_pre, dout32, gelu32, pre32, weight32, N, IC, OC,
                                    layout, dparam_store);
        lm_cpu_convert_to_bf16(dpre_gelu, dpre32, n_in);
    }
    free(dpre32);
    free(weight32);
    free(pre32);
    free(gelu32);
    free(dout32);
    return ok ? 0 : -1;
}

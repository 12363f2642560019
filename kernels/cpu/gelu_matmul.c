/* lmkernels — the backward of a tanh GELU followed by a linear layer
 * (GPT-2's MLP: c_proj reads gelu(c_fc's output)): the CPU twin of the CUDA
 * op that puts the GELU gradient (and, written, c_fc's bias gradient) in the
 * GEMM's epilogue.  It is the composition GPT-2 ran before (matmul_backward
 * into a scratch, then gelu_backward, then c_fc's matmul_backward summing
 * the result for its bias), done in place in dpre_gelu, so the CPU trains to
 * the same bits without the scratch. */
#include "cpu_internal.h"
#include "kernels.h"

void lm_cpu_gelu_matmul_backward(float *dpre_gelu, float *dweight, float *dbias, float *dbias_pre,
                                 const float *dout, const float *gelu_out, const float *pre_gelu,
                                 const float *weight, int N, int IC, int OC, lm_weight_layout layout,
                                 lm_grad_store dparam_store) {
    lm_cpu_matmul_backward(dpre_gelu, dweight, dbias, dout, gelu_out, weight, N, IC, OC, layout, LM_GRAD_WRITE,
                           dparam_store);
    lm_cpu_gelu_backward(dpre_gelu, pre_gelu, dpre_gelu, (size_t)N * (size_t)IC, 1);
    /* matmul_backward's own column sum: the order of its additions is what
     * c_fc's bias gradient had when c_fc's matmul_backward summed it. */
    if (dbias_pre) lm_cpu_bias_backward(dbias_pre, dpre_gelu, N, IC, dparam_store);
}

/* lmkernels — the backward of a tanh GELU followed by a linear layer
 * (GPT-2's MLP: c_proj reads gelu(c_fc's output)): the CPU twin of the CUDA
 * op that puts the GELU gradient in the GEMM's epilogue.  It is the
 * composition GPT-2 ran before (matmul_backward into a scratch, then
 * gelu_backward), done in place in dpre_gelu, so the CPU trains to the same
 * bits without the scratch. */
#include "kernels.h"

void lm_cpu_gelu_matmul_backward(float *dpre_gelu, float *dweight, float *dbias, const float *dout,
                                 const float *gelu_out, const float *pre_gelu, const float *weight, int N, int IC,
                                 int OC, lm_weight_layout layout, lm_grad_store dparam_store) {
    lm_cpu_matmul_backward(dpre_gelu, dweight, dbias, dout, gelu_out, weight, N, IC, OC, layout, LM_GRAD_WRITE,
                           dparam_store);
    lm_cpu_gelu_backward(dpre_gelu, pre_gelu, dpre_gelu, (size_t)N * (size_t)IC, 1);
}

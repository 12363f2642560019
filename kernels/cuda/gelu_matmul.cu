/* The backward of a tanh GELU followed by a linear layer (GPT-2's MLP:
 * c_proj reads gelu(c_fc's output)) with the GELU gradient in cuBLASLt's
 * epilogue (CUBLASLT_EPILOGUE_DGELU): one GEMM writes
 * dpre_gelu = (dout·Wᵀ) ⊙ gelu'(pre_gelu), instead of a GEMM writing
 * dout·Wᵀ and a GELU kernel reading it and pre_gelu again.  The layouts map
 * as in matmul.cu (dX' = op'(W)·dY', IC x N, ld IC; pre_gelu the same
 * shape).  Where cuBLASLt cannot (pre_gelu not 16-byte aligned or IC not a
 * multiple of 8, no algorithm for the pointers) the two unfused ops run,
 * in place in dpre_gelu.  c_proj's weight and bias gradients are
 * matmul_backward's either way, written or added per dparam_store.
 *
 * dbias_pre (c_fc's bias gradient, Σ over rows of dpre_gelu = the row sums
 * of dX' over its N columns): when it is written (LM_GRAD_WRITE), the same
 * GEMM gives it with CUBLASLT_EPILOGUE_DGELU_BGRAD, the bias pointer being
 * its output, where dbias_pre is 16-byte aligned and cuBLASLt has an
 * algorithm; otherwise (and always when it is added: an epilogue
 * overwrites) the deterministic column reduction of dpre_gelu writes or
 * adds it after whichever GEMM ran.  A refused attempt queues nothing. */
#include "column_reduce.cuh"
#include "gemm.cuh"

extern "C" void lm_cuda_gelu_matmul_backward(lm_cuda_ctx *ctx, float *dpre_gelu, float *dweight, float *dbias,
                                             float *dbias_pre, const float *dout, const float *gelu_out,
                                             const float *pre_gelu, const float *weight, int N, int IC, int OC,
                                             lm_weight_layout layout, lm_grad_store dparam_store) {
    if (N <= 0 || IC <= 0) return;
    const bool in_out = layout == LM_W_IN_OUT;
    const char *op = "gelu_matmul_backward";
    /* 1: DGELU_BGRAD queued (dbias_pre written), 0: not tried or refused. */
    int bias_done = 0;
    if (dbias_pre && dparam_store == LM_GRAD_WRITE) {
        bias_done = lm_cuda_gemm_dgelu(ctx, op, in_out, false, IC, N, OC, weight, in_out ? OC : IC, dout, OC,
                                       dpre_gelu, IC, pre_gelu, dbias_pre);
        if (bias_done < 0) return; /* a failure kept */
    }
    int done = bias_done;
    if (!done) {
        done = lm_cuda_gemm_dgelu(ctx, op, in_out, false, IC, N, OC, weight, in_out ? OC : IC, dout, OC, dpre_gelu,
                                  IC, pre_gelu, NULL);
        if (done < 0) return; /* a failure kept */
    }
    if (done == 0) {
        lm_cuda_matmul_backward(ctx, dpre_gelu, NULL, NULL, dout, gelu_out, weight, N, IC, OC, layout, LM_GRAD_WRITE,
                                LM_GRAD_ADD);
        lm_cuda_gelu_backward(ctx, dpre_gelu, pre_gelu, dpre_gelu, (size_t)N * (size_t)IC, 1);
    }
    if (dbias_pre && !bias_done) {
        lm_column_outputs<1> outs = {{dbias_pre}, dparam_store == LM_GRAD_WRITE};
        lm_stored_column<float> value = {dpre_gelu, IC};
        lm_column_reduce<1>(ctx, "gelu_matmul_backward (dbias_pre)", outs, value, N, IC);
    }
    lm_cuda_matmul_backward(ctx, NULL, dweight, dbias, dout, gelu_out, weight, N, IC, OC, layout, LM_GRAD_WRITE,
                            dparam_store);
}

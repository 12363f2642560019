/* Linear layers y = x·W + b through cuBLASLt, for both weight layouts.
 *
 * Row-major buffers seen column-major (what cuBLAS sees):
 *   inp  [N, IC]  -> X'  = IC x N  (ld IC)
 *   out  [N, OC]  -> Y'  = OC x N  (ld OC)
 *   W IN_OUT [IC, OC] -> OC x IC (ld OC) = Wᵀ of the math  y = x·W
 *   W OUT_IN [OC, IC] -> IC x OC (ld IC) = W  of the math  y = x·Wᵀ (torch)
 * Forward  Y' = op(W)·X' with op = N (IN_OUT) or T (OUT_IN), bias per row of Y'.
 * dinp     dX' = (or +=, per dinp_store: beta 0 or 1) op'(W)·dY' with op' = T (IN_OUT) or N (OUT_IN).
 * dweight  IN_OUT: [OC x IC] (+)= dY'·X'ᵀ ; OUT_IN: [IC x OC] (+)= X'·dY'ᵀ (per dparam_store: beta 0 or 1).
 * dbias    Σ over rows of dout: the deterministic column reduction, written or added; when written
 *          with dweight, the dweight GEMM's epilogue instead (BGRADA: the rows of dY' summed over
 *          k = N, IN_OUT; BGRADB: the columns of dY'ᵀ, OUT_IN), where cuBLASLt can. */
#include "column_reduce.cuh"
#include "gemm.cuh"

extern "C" void lm_cuda_matmul_forward(lm_cuda_ctx *ctx, float *out, const float *inp, const float *weight,
                                       const float *bias, int N, int IC, int OC, lm_weight_layout layout) {
    if (layout == LM_W_IN_OUT) {
        lm_cuda_gemm(ctx, "matmul_forward", false, false, OC, N, IC, 1.0f, weight, OC, inp, IC, 0.0f, out, OC, bias);
    } else {
        lm_cuda_gemm(ctx, "matmul_forward", true, false, OC, N, IC, 1.0f, weight, IC, inp, IC, 0.0f, out, OC, bias);
    }
}

extern "C" void lm_cuda_matmul_backward(lm_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                        const float *dout, const float *inp, const float *weight, int N, int IC,
                                        int OC, lm_weight_layout layout, lm_grad_store dinp_store,
                                        lm_grad_store dparam_store) {
    const bool in_out = layout == LM_W_IN_OUT;
    /* beta = 0: cuBLAS(Lt) never reads dinp (dweight), so it needs no zeroing pass. */
    const float dinp_beta = dinp_store == LM_GRAD_WRITE ? 0.0f : 1.0f;
    const float dweight_beta = dparam_store == LM_GRAD_WRITE ? 0.0f : 1.0f;
    if (dinp) {
        if (in_out) {
            lm_cuda_gemm(ctx, "matmul_backward (dinp)", true, false, IC, N, OC, 1.0f, weight, OC, dout, OC, dinp_beta,
                         dinp, IC, NULL);
        } else {
            lm_cuda_gemm(ctx, "matmul_backward (dinp)", false, false, IC, N, OC, 1.0f, weight, IC, dout, OC,
                         dinp_beta, dinp, IC, NULL);
        }
    }
    /* The first micro-batch writes dbias: the dweight GEMM's epilogue can sum dout for it. */
    int dbias_done = 0;
    if (dweight && dbias && dparam_store == LM_GRAD_WRITE) {
        dbias_done = in_out ? lm_cuda_gemm_bgrad(ctx, "matmul_backward (dweight, dbias)", false, true, OC, IC, N,
                                                 dout, OC, inp, IC, dweight, OC, true, dbias)
                            : lm_cuda_gemm_bgrad(ctx, "matmul_backward (dweight, dbias)", false, true, IC, OC, N,
                                                 inp, IC, dout, OC, dweight, IC, false, dbias);
        if (dbias_done < 0) return; /* a failure kept */
    }
    if (dweight && !dbias_done) {
        if (in_out) {
            lm_cuda_gemm(ctx, "matmul_backward (dweight)", false, true, OC, IC, N, 1.0f, dout, OC, inp, IC,
                         dweight_beta, dweight, OC, NULL);
        } else {
            lm_cuda_gemm(ctx, "matmul_backward (dweight)", false, true, IC, OC, N, 1.0f, inp, IC, dout, OC,
                         dweight_beta, dweight, IC, NULL);
        }
    }
    if (dbias && !dbias_done) {
        lm_column_outputs<1> outs = {{dbias}, dparam_store == LM_GRAD_WRITE};
        lm_stored_column<float> value = {dout, OC};
        lm_column_reduce<1>(ctx, "matmul_backward (dbias)", outs, value, N, OC);
    }
}

/* The backward of GPT-2's GELU then c_proj on bf16 storage
 * (gelu_matmul_backward_bf16): gelu_matmul.cu's op with bf16 dout,
 * gelu_out, pre_gelu, weight and dpre_gelu, and fp32 parameter gradients.
 *
 * dpre_gelu = bf16((dout·Wᵀ) ⊙ gelu'(pre_gelu)), written, from one cuBLASLt
 * call (lm_cuda_gemm_dgelu_bf16: CUBLASLT_EPILOGUE_DGELU with the bf16
 * pre_gelu as its aux matrix, true fp32 compute): the gradient is formed on
 * the fp32 accumulator and rounded once, as the contract says.  When
 * dbias_pre is written (LM_GRAD_WRITE), the same call gives it
 * (DGELU_BGRAD, an fp32 bias gradient: the sums of the UNROUNDED values, as
 * the CPU twin's); added (LM_GRAD_ADD), or where that call is refused, the
 * column reduction of the widened bf16 dpre_gelu writes or adds it: the sums
 * of the ROUNDED values, each term off by at most half a bf16 step
 * (|Σ bf16(g) - Σ g| <= 2^-8·Σ|g|).
 *
 * Where cuBLASLt cannot run DGELU at all (pre_gelu not 16-byte aligned, IC
 * not a multiple of 8, no algorithm): dout·Wᵀ into dpre_gelu (bf16, rounded
 * once), then the GELU gradient in place on it (bf16 in, bf16 out, rounded
 * again).  Each value is then rounded twice: within 1.5 bf16 steps of the
 * exact gradient against the contract's half step, so at most two steps
 * from the twin's (one in practice).  NOTES_bf16_storage.md, point 8.
 *
 * c_proj's dweight (fp32, from bf16 gelu_out and dout) and dbias (Σ dout,
 * the column reduction of the widened dout) are matmul_backward_bf16's,
 * written or added per dparam_store. */
#include "column_reduce.cuh"
#include "gelu_math.cuh"
#include "gemm.cuh"
#include "pointwise_map.cuh"

extern "C" void lm_cuda_gelu_matmul_backward_bf16(lm_cuda_ctx *ctx, uint16_t *dpre_gelu, float *dweight, float *dbias,
                                                  float *dbias_pre, const uint16_t *dout, const uint16_t *gelu_out,
                                                  const uint16_t *pre_gelu, const uint16_t *weight, int N, int IC,
                                                  int OC, lm_weight_layout layout, lm_grad_store dparam_store) {
    if (N <= 0 || IC <= 0) return;
    const bool in_out = layout == LM_W_IN_OUT;
    const char *op = "gelu_matmul_backward_bf16";
    /* 1: DGELU_BGRAD queued (dbias_pre written), 0: not tried or refused. */
    int bias_done = 0;
    if (dbias_pre && dparam_store == LM_GRAD_WRITE) {
        bias_done = lm_cuda_gemm_dgelu_bf16(ctx, op, in_out, false, IC, N, OC, weight, in_out ? OC : IC, dout, OC,
                                            dpre_gelu, IC, pre_gelu, dbias_pre);
        if (bias_done < 0) return; /* a failure kept */
    }
    int done = bias_done;
    if (!done) {
        done = lm_cuda_gemm_dgelu_bf16(ctx, op, in_out, false, IC, N, OC, weight, in_out ? OC : IC, dout, OC,
                                       dpre_gelu, IC, pre_gelu, NULL);
        if (done < 0) return; /* a failure kept */
    }
    if (done == 0) {
        lm_cuda_gemm_bf16(ctx, "gelu_matmul_backward_bf16 (dinp)", in_out, false, IC, N, OC, weight,
                          in_out ? OC : IC, dout, OC, 0.0f, dpre_gelu, true, IC, NULL);
        lm_pointwise_map(ctx, "gelu_matmul_backward_bf16 (gelu')", dpre_gelu, pre_gelu, (const uint16_t *)dpre_gelu,
                         (size_t)N * (size_t)IC, lm_gelu_backward_op{1});
    }
    if (dbias_pre && !bias_done) {
        lm_column_outputs<1> outs = {{dbias_pre}, dparam_store == LM_GRAD_WRITE};
        lm_stored_column<uint16_t> value = {dpre_gelu, IC};
        lm_column_reduce<1>(ctx, "gelu_matmul_backward_bf16 (dbias_pre)", outs, value, N, IC);
    }
    lm_cuda_matmul_backward_bf16(ctx, NULL, dweight, dbias, dout, gelu_out, weight, N, IC, OC, layout, LM_GRAD_WRITE,
                                 dparam_store);
}

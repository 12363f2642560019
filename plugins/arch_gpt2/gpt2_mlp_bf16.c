/* GPT-2's MLP block with its activations stored in bf16
 * (activation_dtype=bf16; kernels/cuda/NOTES_bf16_storage.md):
 *
 *   proj = c_proj(gelu_new(c_fc(ln_2(h))))
 *
 * The block's [N, 4C] activations (c_fc's output and its GELU) are half a
 * layer's stored bytes; here they are uint16_t, and so is c_fc's input kept
 * for backward (ln_2's output, which ln_2 writes in bf16 only:
 * layernorm_forward_bf16; cuBLASLt's A and B share one type).
 * The GEMMs read their weights from the model's BF16 params_copy, which
 * the optimizer rewrites after each update, and compute in fp32: the
 * output that joins the residual stream (c_proj's) and the gradient sent
 * back to ln_2 are fp32, as are every parameter gradient.  The ops are the
 * bf16 twins of the fp32 path's (backend_ops.def, "the feed-forward block
 * in bf16"), so the block keeps the fp32 path's shape: c_fc and its GELU in
 * one op, c_proj's backward and the GELU's in one, c_fc's bias gradient
 * from the latter.
 *
 * Under recompute=activations fch_gelu and ln2's rounding are one
 * buffer for all layers: the forward makes fch_gelu with the op backward
 * rebuilds it with (matmul_forward_bf16 then gelu_forward_bf16, not the
 * fused op, whose GELU reads the unrounded product), so both agree to the
 * bit, as the fp32 path does. */
#include "gpt2.h"

#define W(l, k) model_tensor(b, b->buffers.params, GPT2_LAYER_TENSOR(l, k))
#define WB(l, k) model_tensor_bf16(b, GPT2_LAYER_TENSOR(l, k))
#define DW(l, k) model_tensor(b, b->buffers.grads, GPT2_LAYER_TENSOR(l, k))

void gpt2_mlp_forward_bf16(gpt2_model *m, gpt2_layer_acts *la, int l, int N) {
    model_base *b = &m->base;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    const int C = m->config.n_embd, H = m->config.n_inner;
    /* ln2_bf16: ln_2 wrote it (gpt2_forward.c). */
    if (b->device.recompute >= MODEL_RECOMPUTE_ACTIVATIONS) {
        ops->matmul_forward_bf16(be, la->fch_bf16, la->ln2_bf16, WB(l, GPT2_FC_W), W(l, GPT2_FC_B), N, C, H,
                                 LM_W_IN_OUT);
        ops->gelu_forward_bf16(be, la->fch_gelu_bf16, la->fch_bf16, (size_t)N * (size_t)H, 1);
    } else {
        ops->matmul_gelu_forward_bf16(be, la->fch_gelu_bf16, la->fch_bf16, la->ln2_bf16, WB(l, GPT2_FC_W),
                                      W(l, GPT2_FC_B), N, C, H, LM_W_IN_OUT);
    }
    ops->matmul_forward_bf16_to_fp32(be, m->acts.proj, la->fch_gelu_bf16, WB(l, GPT2_FCPROJ_W), W(l, GPT2_FCPROJ_B),
                                     N, H, C, LM_W_IN_OUT);
}

void gpt2_mlp_backward_bf16(gpt2_model *m, gpt2_layer_acts *la, int l, const float *dbranch, lm_grad_store grads) {
    model_base *b = &m->base;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    gpt2_acts *a = &m->acts;
    const int N = b->B * b->T, C = m->config.n_embd, H = m->config.n_inner;
    const size_t NC = (size_t)N * (size_t)C;
    const int recompute = b->device.recompute >= MODEL_RECOMPUTE_ACTIVATIONS;
    /* c_proj's backward GEMM reads its dout in bf16, as it reads fch_gelu. */
    ops->convert_to_bf16(be, a->dbranch_bf16, dbranch, NC);
    if (recompute) ops->gelu_forward_bf16(be, la->fch_gelu_bf16, la->fch_bf16, (size_t)N * (size_t)H, 1);
    /* dfch written in bf16; c_proj's weight and bias gradients and c_fc's
     * bias gradient (the sum of the unrounded dfch) in fp32. */
    ops->gelu_matmul_backward_bf16(be, a->dfch_bf16, DW(l, GPT2_FCPROJ_W), DW(l, GPT2_FCPROJ_B), DW(l, GPT2_FC_B),
                                   a->dbranch_bf16, la->fch_gelu_bf16, la->fch_bf16, WB(l, GPT2_FCPROJ_W), N, H, C,
                                   LM_W_IN_OUT, grads);
    if (recompute) {
        ops->layernorm_forward_bf16(be, la->ln2_bf16, NULL, la->ln2_mean, la->ln2_rstd, la->residual2,
                                    W(l, GPT2_LN2_W), W(l, GPT2_LN2_B), N, C, (float)m->config.layer_norm_epsilon);
    }
    /* c_fc: no dbias, gelu_matmul_backward_bf16 gave it. */
    ops->matmul_backward_bf16(be, a->dln, DW(l, GPT2_FC_W), NULL, a->dfch_bf16, la->ln2_bf16, WB(l, GPT2_FC_W), N, C,
                              H, LM_W_IN_OUT, LM_GRAD_WRITE, grads);
}

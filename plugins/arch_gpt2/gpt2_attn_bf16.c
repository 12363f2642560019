/* GPT-2's attention block with its activations stored in bf16
 * (activation_dtype=bf16; kernels/cuda/NOTES_bf16_storage.md, point 9):
 *
 *   proj = c_proj(attn(c_attn(ln_1(x))))
 *
 * What backward reads of the block is uint16_t here: c_attn's input (ln_1's
 * output, rounded: cuBLASLt's A and B share one type), its output qkv
 * ([N, 3C]: q, k and v of every head) and the attention's output (c_proj's
 * input).  The attention ops are the bf16 twins of the fp32 ones
 * (backend_ops.def, "the attention block in bf16"): they read bf16 q/k/v
 * and keep the probabilities (eager) or the log-sum-exp (sdpa) in fp32, and
 * add their gradients into the fp32 dqkv, which is rounded once for
 * c_attn's backward GEMM.  The GEMMs read their weights from the model's
 * BF16 params_copy and compute in fp32: the output that joins the residual
 * stream (c_proj's), the gradient sent back to ln_1 and every parameter
 * gradient are fp32.
 *
 * ln_1 writes its output in bf16 only (layernorm_forward_bf16: the fp32
 * value rounded once, no fp32 buffer).  Under recompute=activations that
 * rounding is one buffer for all layers (with ln2's): backward rebuilds it
 * with the same op on the layer's input, so both agree to the bit; what the attention rebuilds
 * (recompute=attention, or the dropped probabilities) is the fp32 path's
 * rule, in model_attention.c, on the same bf16 q/k/v. */
#include "gpt2.h"

#define W(l, k) model_tensor(b, b->buffers.params, GPT2_LAYER_TENSOR(l, k))
#define WB(l, k) model_tensor_bf16(b, GPT2_LAYER_TENSOR(l, k))
#define DW(l, k) model_tensor(b, b->buffers.grads, GPT2_LAYER_TENSOR(l, k))

void gpt2_attn_forward_bf16(gpt2_model *m, gpt2_layer_acts *la, int l, int N) {
    model_base *b = &m->base;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    const int C = m->config.n_embd;
    /* ln1_bf16: ln_1 wrote it (gpt2_forward.c). */
    ops->matmul_forward_bf16(be, la->qkv_bf16, la->ln1_bf16, WB(l, GPT2_QKV_W), W(l, GPT2_QKV_B), N, C, 3 * C,
                             LM_W_IN_OUT);
    model_attention_forward_bf16(b, la->atty_bf16, la->preatt, la->att, la->qkv_bf16, la->qkv_bf16 + C,
                                 la->qkv_bf16 + 2 * C, 3 * C, m->attn_p, l);
    ops->matmul_forward_bf16_to_fp32(be, m->acts.proj, la->atty_bf16, WB(l, GPT2_ATTPROJ_W), W(l, GPT2_ATTPROJ_B),
                                     N, C, C, LM_W_IN_OUT);
}

void gpt2_attn_backward_bf16(gpt2_model *m, gpt2_layer_acts *la, int l, const float *dbranch,
                             const float *block_input, lm_grad_store grads) {
    model_base *b = &m->base;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    gpt2_acts *a = &m->acts;
    const int N = b->B * b->T, C = m->config.n_embd;
    const size_t NC = (size_t)N * (size_t)C;
    /* c_proj's backward GEMMs read their dout in bf16, as they read atty. */
    ops->convert_to_bf16(be, a->dbranch_bf16, dbranch, NC);
    ops->matmul_backward_bf16(be, a->datty, DW(l, GPT2_ATTPROJ_W), DW(l, GPT2_ATTPROJ_B), a->dbranch_bf16,
                              la->atty_bf16, WB(l, GPT2_ATTPROJ_W), N, C, C, LM_W_IN_OUT, LM_GRAD_WRITE, grads);
    /* Zeroed: the attention backwards add (gpt2_backward.c says why).  The
     * rebuilt output of recompute=attention goes to dbranch_bf16 ([N,C]
     * bf16, read by c_proj's backward above and free until the next
     * layer's branch). */
    ops->zero(be, a->dqkv, 3 * NC * sizeof(float));
    model_attention_backward_bf16(b, a->dqkv, a->dqkv + C, a->dqkv + 2 * C, a->datt_scratch, a->dbranch_bf16,
                                  a->datty, la->atty_bf16, la->preatt, la->att, la->qkv_bf16, la->qkv_bf16 + C,
                                  la->qkv_bf16 + 2 * C, 3 * C, m->attn_p, l);
    ops->convert_to_bf16(be, a->dqkv_bf16, a->dqkv, 3 * NC);
    if (b->device.recompute >= MODEL_RECOMPUTE_ACTIVATIONS) {
        ops->layernorm_forward_bf16(be, la->ln1_bf16, NULL, la->ln1_mean, la->ln1_rstd, block_input,
                                    W(l, GPT2_LN1_W), W(l, GPT2_LN1_B), N, C, (float)m->config.layer_norm_epsilon);
    }
    ops->matmul_backward_bf16(be, a->dln, DW(l, GPT2_QKV_W), DW(l, GPT2_QKV_B), a->dqkv_bf16, la->ln1_bf16,
                              WB(l, GPT2_QKV_W), N, C, 3 * C, LM_W_IN_OUT, LM_GRAD_WRITE, grads);
}

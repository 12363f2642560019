/* BERT's feed-forward block with its activations stored in bf16
 * (activation_dtype=bf16; kernels/cuda/NOTES_bf16_storage.md):
 *
 *   proj = output.dense(gelu(intermediate.dense(ln1)))
 *
 * The block's [N, I] activations (intermediate.dense's output and its
 * GELU) are uint16_t here, and so is its input kept for backward (ln1,
 * attention.output.LayerNorm's output, which it also writes rounded:
 * cuBLASLt's A and B share one type).  The GEMMs read their weights from
 * the model's BF16 params_copy, which the optimizer rewrites after each
 * update, and compute in fp32: output.dense's output, which joins the
 * residual stream, the gradient sent back to ln1 and every parameter
 * gradient are fp32.  BERT's
 * GELU is the exact-erf one (or tanh, per hidden_act), which cuBLASLt's
 * epilogue lacks, so the block keeps the fp32 path's separate ops:
 * matmul_forward_bf16, gelu_forward_bf16, matmul_forward_bf16_to_fp32, and
 * backward matmul_backward_bf16 (fp32 d gelu), gelu_backward_bf16 (bf16
 * d inter), matmul_backward_bf16.
 *
 * Under recompute=activations inter_gelu is one buffer for all layers,
 * rebuilt by backward with the op that made it (gelu_forward_bf16 on the
 * layer's own inter), so both agree to the bit. */
#include "bert.h"

#define W(l, k) model_tensor(b, b->buffers.params, BERT_LAYER_TENSOR(l, k))
#define WB(l, k) model_tensor_bf16(b, BERT_LAYER_TENSOR(l, k))
#define DW(l, k) model_tensor(b, b->buffers.grads, BERT_LAYER_TENSOR(l, k))

void bert_ffn_forward_bf16(bert_model *m, bert_layer_acts *la, int l, int N) {
    model_base *b = &m->base;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    const int C = m->config.hidden_size, I = m->config.intermediate_size;
    /* ln1_bf16: the LayerNorm before the block wrote it (bert_forward.c). */
    ops->matmul_forward_bf16(be, la->inter_bf16, la->ln1_bf16, WB(l, BERT_INTER_W), W(l, BERT_INTER_B), N, C, I,
                             LM_W_OUT_IN);
    ops->gelu_forward_bf16(be, la->inter_gelu_bf16, la->inter_bf16, (size_t)N * (size_t)I, m->config.gelu_tanh);
    ops->matmul_forward_bf16_to_fp32(be, m->acts.proj, la->inter_gelu_bf16, WB(l, BERT_OUT_W), W(l, BERT_OUT_B), N,
                                     I, C, LM_W_OUT_IN);
}

void bert_ffn_backward_bf16(bert_model *m, bert_layer_acts *la, int l, const float *dbranch, float *dln1,
                            lm_grad_store grads) {
    model_base *b = &m->base;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    bert_acts *a = &m->acts;
    const int N = b->B * b->T, C = m->config.hidden_size, I = m->config.intermediate_size;
    const size_t NI = (size_t)N * (size_t)I;
    /* output.dense's backward GEMMs read their dout in bf16, as they read inter_gelu. */
    ops->convert_to_bf16(be, a->dbranch_bf16, dbranch, (size_t)N * (size_t)C);
    if (b->device.recompute >= MODEL_RECOMPUTE_ACTIVATIONS)
        ops->gelu_forward_bf16(be, la->inter_gelu_bf16, la->inter_bf16, NI, m->config.gelu_tanh);
    ops->matmul_backward_bf16(be, a->dinter_gelu, DW(l, BERT_OUT_W), DW(l, BERT_OUT_B), a->dbranch_bf16,
                              la->inter_gelu_bf16, WB(l, BERT_OUT_W), N, I, C, LM_W_OUT_IN, LM_GRAD_WRITE, grads);
    ops->gelu_backward_bf16(be, a->dinter_bf16, la->inter_bf16, a->dinter_gelu, NI, m->config.gelu_tanh);
    /* dln1 (the residual path's share, already there) += the branch's. */
    ops->matmul_backward_bf16(be, dln1, DW(l, BERT_INTER_W), DW(l, BERT_INTER_B), a->dinter_bf16, la->ln1_bf16,
                              WB(l, BERT_INTER_W), N, C, I, LM_W_OUT_IN, LM_GRAD_ADD, grads);
}

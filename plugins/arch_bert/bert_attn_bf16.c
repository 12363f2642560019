/* BERT's attention block with its activations stored in bf16
 * (activation_dtype=bf16; kernels/cuda/NOTES_bf16_storage.md, point 9):
 *
 *   proj = attention.output.dense(attention(query(x), key(x), value(x)))
 *
 * What backward reads of the block is uint16_t here: the Q/K/V GEMMs'
 * input (the layer's input x, the previous layer's post-LN output, rounded:
 * cuBLASLt's A and B share one type; x itself stays fp32, the residual
 * add's input), q, k, v (three [N, C] buffers, as in fp32) and the
 * attention's context (output.dense's input).  The attention ops are the
 * bf16 twins of the fp32 ones (backend_ops.def, "the attention block in
 * bf16"), with BERT's key mask: they keep the probabilities (eager) or the
 * log-sum-exp (sdpa) in fp32 and add their gradients into the fp32 dqkv,
 * which is rounded once for the three GEMMs' backward.  The GEMMs read
 * their weights from the model's BF16 params_copy and compute in fp32: the
 * output that joins the residual stream, the gradient sent back to x (the
 * three projections' shares added to the residual path's, as in fp32) and
 * every parameter gradient are fp32.
 *
 * Under recompute=activations input_bf16 is one buffer for all layers,
 * rebuilt by backward from the layer's own (kept) input with the
 * forward's conversion, so both agree to the bit; what the attention
 * rebuilds is the fp32 path's rule (model_attention.c) on the same bf16
 * q/k/v. */
#include "bert.h"

#define W(l, k) model_tensor(b, b->buffers.params, BERT_LAYER_TENSOR(l, k))
#define WB(l, k) model_tensor_bf16(b, BERT_LAYER_TENSOR(l, k))
#define DW(l, k) model_tensor(b, b->buffers.grads, BERT_LAYER_TENSOR(l, k))

/* The layer's input (a LayerNorm's output: the embeddings' or the previous
 * layer's, after dropout) rounded into the GEMMs' bf16 input: the one place
 * the forward and recompute's rebuild do it. */
static void round_input(bert_model *m, bert_layer_acts *la, const float *x, int N) {
    lm_backend *be = m->base.backend;
    be->ops->convert_to_bf16(be, la->input_bf16, x, (size_t)N * (size_t)m->config.hidden_size);
}

void bert_attn_forward_bf16(bert_model *m, bert_layer_acts *la, int l, const float *x, int N) {
    model_base *b = &m->base;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    const int C = m->config.hidden_size;
    round_input(m, la, x, N);
    ops->matmul_forward_bf16(be, la->q_bf16, la->input_bf16, WB(l, BERT_Q_W), W(l, BERT_Q_B), N, C, C, LM_W_OUT_IN);
    ops->matmul_forward_bf16(be, la->k_bf16, la->input_bf16, WB(l, BERT_K_W), W(l, BERT_K_B), N, C, C, LM_W_OUT_IN);
    ops->matmul_forward_bf16(be, la->v_bf16, la->input_bf16, WB(l, BERT_V_W), W(l, BERT_V_B), N, C, C, LM_W_OUT_IN);
    model_attention_forward_bf16(b, la->atty_bf16, la->preatt, la->att, la->q_bf16, la->k_bf16, la->v_bf16, C,
                                 m->attn_p, l);
    ops->matmul_forward_bf16_to_fp32(be, m->acts.proj, la->atty_bf16, WB(l, BERT_ATTOUT_W), W(l, BERT_ATTOUT_B), N,
                                     C, C, LM_W_OUT_IN);
}

void bert_attn_backward_bf16(bert_model *m, bert_layer_acts *la, int l, const float *dbranch, const float *x,
                             float *dx, lm_grad_store grads) {
    model_base *b = &m->base;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    bert_acts *a = &m->acts;
    const int N = b->B * b->T, C = m->config.hidden_size;
    const size_t NC = (size_t)N * (size_t)C;
    /* output.dense's backward GEMMs read their dout in bf16, as they read the context. */
    ops->convert_to_bf16(be, a->dbranch_bf16, dbranch, NC);
    ops->matmul_backward_bf16(be, a->datty, DW(l, BERT_ATTOUT_W), DW(l, BERT_ATTOUT_B), a->dbranch_bf16,
                              la->atty_bf16, WB(l, BERT_ATTOUT_W), N, C, C, LM_W_OUT_IN, LM_GRAD_WRITE, grads);
    /* Zeroed: the attention backwards add (gpt2_backward.c says why).  The
     * rebuilt context of recompute=attention goes to dbranch_bf16 ([N,C]
     * bf16, read above and free until the next layer's branch). */
    ops->zero(be, a->dqkv, 3 * NC * sizeof(float));
    model_attention_backward_bf16(b, a->dqkv, a->dqkv + NC, a->dqkv + 2 * NC, a->datt_scratch, a->dbranch_bf16,
                                  a->datty, la->atty_bf16, la->preatt, la->att, la->q_bf16, la->k_bf16, la->v_bf16, C,
                                  m->attn_p, l);
    ops->convert_to_bf16(be, a->dqkv_bf16, a->dqkv, 3 * NC);
    if (b->device.recompute >= MODEL_RECOMPUTE_ACTIVATIONS) round_input(m, la, x, N);
    static const int weight_of[3] = {BERT_Q_W, BERT_K_W, BERT_V_W};
    /* dx (the residual path's share) += the three projections'. */
    for (int j = 0; j < 3; j++)
        ops->matmul_backward_bf16(be, dx, DW(l, weight_of[j]), DW(l, weight_of[j] + 1), a->dqkv_bf16 + (size_t)j * NC,
                                  la->input_bf16, WB(l, weight_of[j]), N, C, C, LM_W_OUT_IN, LM_GRAD_ADD, grads);
}

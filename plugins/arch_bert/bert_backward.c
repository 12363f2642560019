/* BERT backward pass (through the backend op table).
 *
 * Walks the forward in reverse for the batch of the last forward.
 * Parameter gradients are written on the first micro-batch of a step
 * (grads_store LM_GRAD_WRITE, backward(accumulate = 0): no memset of the
 * buffer) and added on the others (LM_GRAD_ADD).  Every tensor has one
 * first writer: the head's, each layer's and the embeddings' GEMMs and
 * LayerNorms write theirs; the word embeddings are written whole by the
 * tied decoder (bert_head.c), then the lookup adds its rows; the position
 * and token-type tables, which the lookup only scatter-adds into, are
 * zeroed first (tests/models/test_written_param_grads.c checks every
 * element).  An activation-gradient buffer is either written by the one op
 * that fills it (datty, dinter_gelu, dinter: matmul_backward with
 * LM_GRAD_WRITE, gelu_backward; with bf16 activations dinter_bf16 and
 * dbranch_bf16, by gelu_backward_bf16 and a conversion: bert_ffn_bf16.c;
 * dqkv_bf16 by a conversion: bert_attn_bf16.c;
 * dres_a/dres_b: the post-LN LayerNorm
 * backwards with LM_GRAD_WRITE; the dropout backwards) or zeroed right
 * before ops that add into it (attention's dqkv, the head's scatter into
 * dres_a).  The exact-erf GELU has no cuBLASLt epilogue, so BERT keeps
 * matmul_backward + gelu_backward where GPT-2 runs gelu_matmul_backward
 * (a tanh-GELU config could use it: not done).  Post-LN layers make the
 * residual gradient pass through the LayerNorms, so two buffers alternate:
 * dres_a holds the gradient of a layer's output, dres_b the gradient of its
 * inner LayerNorm's output (written by it, then the intermediate GEMM adds
 * its share), and dres_a (written again by the attention LayerNorm, then
 * the Q/K/V GEMMs add) ends as the gradient of the layer's input.  The MLM
 * head (bert_head.c) goes first and leaves the gradient of the encoder
 * output in dres_a; its logits buffer receives dlogits in place, so
 * logits() is only valid between forward and backward.
 *
 * The word embeddings receive two gradients: the decoder's (tied head) and
 * the lookup's.  nn.Embedding(padding_idx=pad_token_id) gives the padding
 * row no lookup gradient, so that row is saved (on the device: a step reads
 * nothing back) before the embedding backward and put back after it (only
 * when the batch contains the id). */
#include "bert.h"
#include "model_dropout.h"

/* Embedding backward that leaves the padding row of the word embeddings'
 * gradient as it was. */
static void embedding_backward(bert_model *m, const float *demb, lm_grad_store grads_store) {
    const bert_config *c = &m->config;
    model_base *b = &m->base;
    lm_backend *be = b->backend;
    bert_acts *a = &m->acts;
    float *grads = b->buffers.grads;
    const size_t C = (size_t)c->hidden_size;
    float *pad_row = NULL;
    /* A dropout with p = 0 is an exact copy on every backend. */
    if (m->batch_has_pad && c->pad_token_id >= 0) {
        pad_row = model_tensor(b, grads, BERT_WORD_EMB) + (size_t)c->pad_token_id * C;
        be->ops->dropout_forward(be, a->pad_grad, pad_row, C, 0.0f, NULL, 0);
    }
    /* The lookup only adds, into the rows it saw: the word embeddings were
     * written by the tied decoder (bert_head.c), the position and token-type
     * tables are zeroed first when this backward writes. */
    if (grads_store == LM_GRAD_WRITE) {
        model_grads_zero_tensor(b, BERT_POS_EMB);
        model_grads_zero_tensor(b, BERT_TYPE_EMB);
    }
    be->ops->embedding_backward(be, model_tensor(b, grads, BERT_WORD_EMB), model_tensor(b, grads, BERT_POS_EMB),
                                model_tensor(b, grads, BERT_TYPE_EMB), demb, b->ids,
                                m->has_type_ids ? a->type_ids : NULL, b->B, b->T, c->hidden_size);
    if (pad_row) be->ops->dropout_forward(be, pad_row, a->pad_grad, C, 0.0f, NULL, 0);
}

void bert_backward(model_base *b, float loss_scale, lm_grad_store grads_store) {
    bert_model *m = bert_of(b);
    const bert_config *c = &m->config;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    const int N = b->B * b->T, C = c->hidden_size, I = c->intermediate_size, L = c->num_hidden_layers;
    const int tanh_gelu = c->gelu_tanh;
    const size_t NC = (size_t)N * (size_t)C, NI = (size_t)N * (size_t)I;
    const lm_step_state *key = b->key;
    const int recompute = b->device.recompute >= MODEL_RECOMPUTE_ACTIVATIONS;
    bert_acts *a = &m->acts;
    float *params = b->buffers.params, *grads = b->buffers.grads;
#define P(index) model_tensor(b, params, (index))
#define G(index) model_tensor(b, grads, (index))

    bert_head_backward(m, loss_scale, grads_store);
    model_grads_final_from(b, BERT_HEAD_TENSOR(L, 0)); /* the head; the tied decoder's word embeddings come last */
    const float *x0 = m->hidden_p > 0.0f ? a->x0 : a->emb_ln;

    float *dqkv[3] = {a->dqkv, a->dqkv + NC, a->dqkv + 2 * NC};
    for (int l = L - 1; l >= 0; l--) {
        bert_layer_acts *la = &a->layers[l];
        const float *layer_input = l > 0 ? a->layers[l - 1].ln2 : x0;
#define W(k) P(BERT_LAYER_TENSOR(l, k))
#define DW(k) G(BERT_LAYER_TENSOR(l, k))
        /* Feed-forward: ln2 = LN(ln1 + dropout(out(gelu(inter(ln1))))); dres_a = d ln2. */
        ops->layernorm_backward(be, a->dres_b, DW(BERT_OUTLN_W), DW(BERT_OUTLN_B), a->dres_a, la->res2,
                                W(BERT_OUTLN_W), la->ln2_mean, la->ln2_rstd, N, C, LM_GRAD_WRITE, grads_store);
        const float *dbranch = model_dropout_backward_or_identity(be, a->dbranch, a->dres_b, NC, m->hidden_p, key,
                                                                  MODEL_DROPOUT_FFN_OUT, l);
        if (b->activations_bf16) {
            bert_ffn_backward_bf16(m, la, l, dbranch, a->dres_b, grads_store); /* as below (bert_ffn_bf16.c) */
        } else {
            /* Buffers shared by all layers under `recompute` hold a later
             * layer's values: rebuild this layer's with the op that made
             * them (bert.h). */
            if (recompute) ops->gelu_forward(be, la->inter_gelu, la->inter, NI, tanh_gelu);
            ops->matmul_backward(be, a->dinter_gelu, DW(BERT_OUT_W), DW(BERT_OUT_B), dbranch, la->inter_gelu,
                                 W(BERT_OUT_W), N, I, C, LM_W_OUT_IN, LM_GRAD_WRITE, grads_store);
            ops->gelu_backward(be, a->dinter, la->inter, a->dinter_gelu, NI, tanh_gelu);
            /* dres_b (the residual path's share, already read above) += the branch's. */
            ops->matmul_backward(be, a->dres_b, DW(BERT_INTER_W), DW(BERT_INTER_B), a->dinter, la->ln1,
                                 W(BERT_INTER_W), N, C, I, LM_W_OUT_IN, LM_GRAD_ADD, grads_store);
        }

        /* Attention: ln1 = LN(x + dropout(attout(attention(q(x), k(x), v(x))))); dres_b = d ln1. */
        ops->layernorm_backward(be, a->dres_a, DW(BERT_ATTLN_W), DW(BERT_ATTLN_B), a->dres_b, la->res1,
                                W(BERT_ATTLN_W), la->ln1_mean, la->ln1_rstd, N, C, LM_GRAD_WRITE, grads_store);
        dbranch = model_dropout_backward_or_identity(be, a->dbranch, a->dres_a, NC, m->hidden_p, key,
                                                     MODEL_DROPOUT_ATTENTION_OUT, l);
        if (b->activations_bf16) {
            bert_attn_backward_bf16(m, la, l, dbranch, layer_input, a->dres_a, grads_store); /* bert_attn_bf16.c */
        } else {
            ops->matmul_backward(be, a->datty, DW(BERT_ATTOUT_W), DW(BERT_ATTOUT_B), dbranch, la->atty,
                                 W(BERT_ATTOUT_W), N, C, C, LM_W_OUT_IN, LM_GRAD_WRITE, grads_store);
            /* Zeroed: the attention backwards add (gpt2_backward.c says why). */
            ops->zero(be, a->dqkv, 3 * NC * sizeof(float));
            model_attention_backward(b, dqkv[0], dqkv[1], dqkv[2], a->datt_scratch, a->proj, a->datty, la->atty,
                                     la->preatt, la->att, la->q, la->k, la->v, C, m->attn_p, l);
            static const int weight_of[3] = {BERT_Q_W, BERT_K_W, BERT_V_W};
            /* dres_a (the residual path's share) += the three projections'. */
            for (int j = 0; j < 3; j++)
                ops->matmul_backward(be, a->dres_a, DW(weight_of[j]), DW(weight_of[j] + 1), dqkv[j], layer_input,
                                     W(weight_of[j]), N, C, C, LM_W_OUT_IN, LM_GRAD_ADD, grads_store);
        }
        model_grads_final_from(b, BERT_LAYER_TENSOR(l, 0)); /* this layer is done: a data-parallel caller reduces it */
#undef W
#undef DW
    }

    /* Embeddings: x0 = dropout(LN(emb)). */
    const float *demb_ln = model_dropout_backward_or_identity(be, a->dbranch, a->dres_a, NC, m->hidden_p, key,
                                                              MODEL_DROPOUT_EMBEDDINGS, 0);
    ops->layernorm_backward(be, a->dres_b, G(BERT_EMB_LN_W), G(BERT_EMB_LN_B), demb_ln, a->emb, P(BERT_EMB_LN_W),
                            a->emb_ln_mean, a->emb_ln_rstd, N, C, LM_GRAD_WRITE, grads_store);
#undef P
#undef G
    embedding_backward(m, a->dres_b, grads_store);
}

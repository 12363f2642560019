/* GPT-2 backward pass (llm.c's gpt2_backward, through the backend op table).
 *
 * Walks the forward in reverse for the batch of the last forward.
 * Parameter gradients are written on the first micro-batch of a step
 * (grads_store LM_GRAD_WRITE, backward(accumulate = 0): no memset of the
 * buffer) and added on the others (LM_GRAD_ADD).  Every tensor has one
 * first writer: each layer's GEMMs and LayerNorms write theirs; wte (the
 * tied head) is written whole by the head's GEMM, then the lookup adds its
 * rows; wpe, which the lookup only scatter-adds into (positions T.. get
 * nothing), is zeroed first (tests/models/test_written_param_grads.c checks
 * every element).  The activation-gradient scratches dln, datty and dfch
 * are each filled by one op that writes them (matmul_backward with
 * LM_GRAD_WRITE, gelu_matmul_backward, which also gives c_fc's bias
 * gradient: c_fc's matmul_backward takes none; with bf16 activations
 * dfch_bf16 and dbranch_bf16, by gelu_matmul_backward_bf16 and a
 * conversion: gpt2_mlp_bf16.c; dqkv_bf16 by a conversion:
 * gpt2_attn_bf16.c), the dropout backwards write theirs, and
 * ln_f's LayerNorm backward writes dresidual, so none is zeroed; only dqkv
 * is, because the attention backwards add (below, why).
 * One buffer, dresidual, carries the gradient of the residual stream from
 * the top of the network down to the embeddings: the residual adds pass it
 * through unchanged and the blocks' LayerNorm backwards add their branch's
 * contribution to it.  The logits buffer receives dlogits in place (llm.c),
 * so logits() is only valid between forward and backward, and not at all
 * after forward_train, whose loss op wrote them already. */
#include "gpt2.h"
#include "model_dropout.h"

void gpt2_backward(model_base *b, float loss_scale, lm_grad_store grads_store) {
    gpt2_model *m = gpt2_of(b);
    const gpt2_config *c = &m->config;
    lm_backend *be = b->backend;
    const lm_backend_ops *ops = be->ops;
    const int B = b->B, T = b->T, N = B * T;
    const int C = c->n_embd, H = c->n_inner, L = c->n_layer;
    const size_t NC = (size_t)N * (size_t)C, NH4 = (size_t)N * (size_t)H;
    const lm_step_state *key = b->key;
    const float eps = (float)c->layer_norm_epsilon;
    const int recompute = b->device.recompute >= MODEL_RECOMPUTE_ACTIVATIONS;
    gpt2_acts *a = &m->acts;
    float *params = b->buffers.params, *grads = b->buffers.grads;
#define P(index) model_tensor(b, params, (index))
#define G(index) model_tensor(b, grads, (index))

    /* d(mean loss * loss_scale)/dlogits, written over the logits (already,
     * by a training forward's fused classifier). */
    model_loss_backward(b, a->logits, a->labels, N, loss_scale);

    /* The tied head's GEMM is wte's first writer (all vocab_rows rows: dlogits
     * is 0 in the padding columns, so the padding rows' gradient is 0); the
     * lookup adds its rows last. */
    model_head_backward(b, a->dln, GPT2_WTE, NULL, a->logits, a->lnf, a->lnf_bf16, N, grads_store);
    const float *block0_input = m->embd_p > 0.0f ? a->x0 : a->encoded;
    const float *last = L > 0 ? a->layers[L - 1].residual3 : block0_input;
    /* ln_f's share is the first of dresidual's, written (no zeroing pass);
     * every block's LayerNorms then add theirs. */
    ops->layernorm_backward(be, a->dresidual, G(GPT2_LNF_W(L)), G(GPT2_LNF_B(L)), a->dln, last, P(GPT2_LNF_W(L)),
                            a->lnf_mean, a->lnf_rstd, N, C, LM_GRAD_WRITE, grads_store);
    model_grads_final_from(b, GPT2_LNF_W(L)); /* ln_f; wte (the tied head) gets its lookup's share last */

    for (int l = L - 1; l >= 0; l--) {
        gpt2_layer_acts *la = &a->layers[l];
        const float *block_input = l > 0 ? a->layers[l - 1].residual3 : block0_input;
#define W(k) P(GPT2_LAYER_TENSOR(l, k))
#define DW(k) G(GPT2_LAYER_TENSOR(l, k))
        /* MLP branch: residual3 = residual2 + dropout(c_proj(gelu(c_fc(ln_2(residual2))))). */
        const float *dbranch = model_dropout_backward_or_identity(be, a->dproj, a->dresidual, NC, m->resid_p, key,
                                                                  MODEL_DROPOUT_FFN_OUT, l);
        if (b->activations_bf16) {
            gpt2_mlp_backward_bf16(m, la, l, dbranch, grads_store); /* into dln, as below (gpt2_mlp_bf16.c) */
        } else {
            /* Buffers shared by all layers under `recompute` hold a later
             * layer's values: rebuild this layer's with the op that made
             * them (gpt2.h). */
            if (recompute) ops->gelu_forward(be, la->fch_gelu, la->fch, NH4, 1);
            /* c_proj's backward, the GELU's and c_fc's bias gradient (Σ dfch)
             * in one op: dfch written (on a GPU the GELU gradient in the
             * GEMM's epilogue, and c_fc's written bias gradient with it). */
            ops->gelu_matmul_backward(be, a->dfch, DW(GPT2_FCPROJ_W), DW(GPT2_FCPROJ_B), DW(GPT2_FC_B), dbranch,
                                      la->fch_gelu, la->fch, W(GPT2_FCPROJ_W), N, H, C, LM_W_IN_OUT, grads_store);
            if (recompute)
                ops->layernorm_forward(be, la->ln2, la->ln2_mean, la->ln2_rstd, la->residual2, W(GPT2_LN2_W),
                                       W(GPT2_LN2_B), N, C, eps);
            /* c_fc: no dbias, gelu_matmul_backward gave it. */
            ops->matmul_backward(be, a->dln, DW(GPT2_FC_W), NULL, a->dfch, la->ln2, W(GPT2_FC_W), N, C, H,
                                 LM_W_IN_OUT, LM_GRAD_WRITE, grads_store);
        }
        ops->layernorm_backward(be, a->dresidual, DW(GPT2_LN2_W), DW(GPT2_LN2_B), a->dln, la->residual2,
                                W(GPT2_LN2_W), la->ln2_mean, la->ln2_rstd, N, C, LM_GRAD_ADD, grads_store);

        /* Attention branch: residual2 = input + dropout(c_proj(attn(c_attn(ln_1(input))))). */
        dbranch = model_dropout_backward_or_identity(be, a->dproj, a->dresidual, NC, m->resid_p, key,
                                                     MODEL_DROPOUT_ATTENTION_OUT, l);
        if (b->activations_bf16) {
            gpt2_attn_backward_bf16(m, la, l, dbranch, block_input, grads_store); /* into dln (gpt2_attn_bf16.c) */
        } else {
            ops->matmul_backward(be, a->datty, DW(GPT2_ATTPROJ_W), DW(GPT2_ATTPROJ_B), dbranch, la->atty,
                                 W(GPT2_ATTPROJ_W), N, C, C, LM_W_IN_OUT, LM_GRAD_WRITE, grads_store);
            /* Zeroed: the attention backwards add into dq/dk/dv.  The fused
             * one (sdpa) must: a tile of queries adds its share to dk/dv of
             * every key it sees, a tile of keys its share to dq.  The eager
             * one adds with one GEMM per (row, head) and could write, but
             * both keep the one contract (backend_ops.def). */
            ops->zero(be, a->dqkv, 3 * NC * sizeof(float));
            model_attention_backward(b, a->dqkv, a->dqkv + C, a->dqkv + 2 * C, a->datt_scratch, a->proj, a->datty,
                                     la->atty, la->preatt, la->att, la->qkv, la->qkv + C, la->qkv + 2 * C, 3 * C,
                                     m->attn_p, l);
            if (recompute)
                ops->layernorm_forward(be, la->ln1, la->ln1_mean, la->ln1_rstd, block_input, W(GPT2_LN1_W),
                                       W(GPT2_LN1_B), N, C, eps);
            ops->matmul_backward(be, a->dln, DW(GPT2_QKV_W), DW(GPT2_QKV_B), a->dqkv, la->ln1, W(GPT2_QKV_W), N, C,
                                 3 * C, LM_W_IN_OUT, LM_GRAD_WRITE, grads_store);
        }
        ops->layernorm_backward(be, a->dresidual, DW(GPT2_LN1_W), DW(GPT2_LN1_B), a->dln, block_input,
                                W(GPT2_LN1_W), la->ln1_mean, la->ln1_rstd, N, C, LM_GRAD_ADD, grads_store);
        model_grads_final_from(b, GPT2_LAYER_TENSOR(l, 0)); /* this layer is done: a data-parallel caller reduces it */
#undef W
#undef DW
    }

    const float *dencoded = model_dropout_backward_or_identity(be, a->dproj, a->dresidual, NC, m->embd_p, key,
                                                               MODEL_DROPOUT_EMBEDDINGS, 0);
    /* The lookup only adds, into the rows of the ids and positions it saw:
     * wte was written by the head, wpe (positions T.. get nothing) is
     * zeroed first when this backward writes. */
    if (grads_store == LM_GRAD_WRITE) model_grads_zero_tensor(b, GPT2_WPE);
    ops->embedding_backward(be, G(GPT2_WTE), G(GPT2_WPE), NULL, dencoded, b->ids, NULL, B, T, C);
#undef P
#undef G
}

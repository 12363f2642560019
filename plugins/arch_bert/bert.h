/* BERT for masked language modelling (Hugging Face BertForMaskedLM) over the
 * kernel backend table.
 *
 * Internal to the arch_bert plugin.  The model is written once as calls to
 * lm_backend_ops (kernels/backend.h), so the same code runs on the CPU and on
 * CUDA; nothing here touches a device API directly.  The vtable slots that
 * every architecture shares are the skeleton's (plugins/common/model/
 * model_plugin.h); this plugin supplies its descriptor (bert_plugin.c). */
#ifndef LM_ARCH_BERT_H
#define LM_ARCH_BERT_H

#include <stddef.h>
#include <stdint.h>

#include "model_plugin.h"

/* The rows the sparse MLM head runs on in a forward with labels (the
 * mlm_head_rows key; bert_head.c). */
typedef enum bert_head_rows {
    BERT_HEAD_ROWS_AUTO = 0,  /* "auto": padded where the device captures CUDA graphs, exact elsewhere */
    BERT_HEAD_ROWS_EXACT = 1, /* "exact": the M scored rows, no more (the CPU's default: the least work) */
    BERT_HEAD_ROWS_PADDED = 2 /* "padded": M rounded up to a bucket (bert_head_rows_for), the extra rows
                                 unscored: the head's shapes, hence a captured graph, serve many batches */
} bert_head_rows;

/* The Hugging Face BertConfig fields we honour (the device keys are in the
 * model_base). */
typedef struct bert_config {
    int32_t vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size;
    int32_t max_position_embeddings, type_vocab_size;
    int32_t pad_token_id; /* -1: none (null in config.json) */
    char hidden_act[32];  /* "gelu" (erf), "gelu_new" or "gelu_pytorch_tanh" (tanh) */
    int gelu_tanh;        /* 1 for the tanh approximation */
    double hidden_dropout_prob, attention_probs_dropout_prob;
    double layer_norm_eps, initializer_range;
    bert_head_rows head_rows; /* mlm_head_rows: lmcore's, not written to config.json */
} bert_config;

/* Tensors of one encoder layer, in Hugging Face order. */
enum {
    BERT_Q_W, BERT_Q_B, BERT_K_W, BERT_K_B, BERT_V_W, BERT_V_B,
    BERT_ATTOUT_W, BERT_ATTOUT_B, BERT_ATTLN_W, BERT_ATTLN_B,
    BERT_INTER_W, BERT_INTER_B, BERT_OUT_W, BERT_OUT_B, BERT_OUTLN_W, BERT_OUTLN_B,
    BERT_TENSORS_PER_LAYER
};
/* Declaration indices (BertForMaskedLM.named_parameters() order): the
 * embeddings, the layers, then the MLM head.  The decoder weight is tied to
 * the word embeddings and its bias is cls.predictions.bias. */
#define BERT_WORD_EMB 0
#define BERT_POS_EMB 1
#define BERT_TYPE_EMB 2
#define BERT_EMB_LN_W 3
#define BERT_EMB_LN_B 4
#define BERT_LAYER_TENSOR(l, k) (5 + (l) * BERT_TENSORS_PER_LAYER + (k))
#define BERT_HEAD_TENSOR(L, k) (5 + (L) * BERT_TENSORS_PER_LAYER + (k))
enum { BERT_HEAD_BIAS, BERT_HEAD_DENSE_W, BERT_HEAD_DENSE_B, BERT_HEAD_LN_W, BERT_HEAD_LN_B, BERT_HEAD_TENSORS };

/* Activations kept from forward for backward, for the (B, T) in use.  The
 * buffers marked (R) are shared by all layers under the `recompute` setting
 * (model_device.h), and backward rebuilds a layer's before using it: att
 * and inter_gelu (input_bf16, inter_gelu_bf16 with bf16 activations) with
 * recompute=activations, preatt too with recompute=attention. */
typedef struct bert_layer_acts {
    float *q, *k, *v;                 /* [N,C] each; NULL with bf16 activations */
    float *preatt;                    /* [B,NH,T,T] probabilities before dropout (R: attention);
                                         fused attention: [B,NH,T] log-sum-exp (model_attention_carve) */
    float *att;                       /* [B,NH,T,T] after dropout (R; unused when attention dropout is 0) */
    float *atty;                      /* [N,C] attention context; NULL with bf16 activations */
    /* activation_dtype=bf16 (model_base.activations_bf16; else NULL): the
     * attention block's stored activations in bf16 (bert_attn_bf16.c): the
     * layer's input rounded (the Q/K/V GEMMs' input; the fp32 input stays
     * the residual's), q, k, v and the context. */
    uint16_t *input_bf16;             /* [N,C] (R) */
    uint16_t *q_bf16, *k_bf16, *v_bf16, *atty_bf16; /* [N,C] each */
    float *res1;                      /* [N,C] input + dropout(attention.output.dense) */
    float *ln1, *ln1_mean, *ln1_rstd; /* attention.output.LayerNorm (ln1: one fp32 scratch for all layers
                                         with bf16 activations, which keep ln1_bf16 for backward) */
    float *inter, *inter_gelu;        /* [N,I] intermediate.dense output, before and after GELU (R: inter_gelu);
                                         NULL with bf16 activations */
    /* activation_dtype=bf16 (model_base.activations_bf16; else NULL): the
     * feed-forward block's stored activations in bf16, in place of ln1 (for
     * backward: intermediate.dense's input, rounded), inter and inter_gelu. */
    uint16_t *ln1_bf16;               /* [N,C] */
    uint16_t *inter_bf16, *inter_gelu_bf16; /* [N,I] (R: inter_gelu_bf16) */
    float *res2;                      /* [N,C] ln1 + dropout(output.dense) */
    float *ln2, *ln2_mean, *ln2_rstd; /* output.LayerNorm = the layer's output */
} bert_layer_acts;

typedef struct bert_acts {
    bert_layer_acts *layers;                /* num_hidden_layers entries (model_base.layer_acts) */
    float *emb;                             /* [N,C] word + type + position */
    float *emb_ln, *emb_ln_mean, *emb_ln_rstd;
    float *x0;                              /* [N,C] emb_ln after dropout */
    float *proj;                            /* [N,C] scratch: dense outputs before dropout */
    /* MLM head over its rows (bert_head.c): the scored rows when the batch
     * has labels (padded to a bucket with mlm_head_rows=padded), else all N;
     * buffers hold N rows, the first head_n used. */
    float *head_in;                         /* [N,C] gathered encoder-output rows */
    float *zero_row, *junk_row;             /* [C] the gather's zero "position" row, its gradient sink */
    float *pad_grad;                        /* [C] the padding row's gradient, kept across the embedding backward */
    float *head_dense, *head_gelu;          /* [N,C] */
    float *head_ln, *head_ln_mean, *head_ln_rstd;
    uint16_t *head_ln_bf16;                 /* [N,C] head_ln rounded, the bf16 decoder's input (logits_dtype=bf16) */
    void *logits;                           /* [head_n,V] in the logits dtype (own allocation); holds dlogits
                                               after backward */
    float *losses;                          /* [N] */
    /* backward scratch */
    float *dres_a, *dres_b; /* [N,C] gradients of the residual stream (alternating) */
    float *dbranch;         /* [N,C] gradient through a dropout */
    float *datty;           /* [N,C] */
    float *dqkv;            /* [3,N,C] (the attention backwards add in fp32) */
    uint16_t *dqkv_bf16;    /* [3,N,C] dqkv rounded, the Q/K/V GEMMs' backward dout (bf16 activations; else NULL) */
    float *dinter, *dinter_gelu; /* [N,I] (dinter NULL with bf16 activations) */
    uint16_t *dbranch_bf16, *dinter_bf16; /* [N,C] a branch's gradient rounded (the feed-forward's, then the
                                             attention's), [N,I] (bf16) */
    float *datt_scratch;    /* [B,NH,T,T] ([B,NH,T] with the fused attention) */
    int32_t *type_ids;                      /* [N] on the device (ids and key mask: model_base) */
    int32_t *head_rows, *head_labels;       /* [N] scored rows (ascending) and their labels; padding rows
                                               after them: an unscored row, label -100 */
} bert_acts;

typedef struct bert_model {
    model_base base; /* first: the skeleton's part (model_plugin.h) */
    bert_config config;
    bert_acts acts;
    int32_t *host_head_rows, *host_head_labels; /* [N] host side of head_rows / head_labels */
    size_t host_capacity;                       /* int32s in each */
    void *logits_memory;                        /* acts.logits */
    size_t logits_capacity;                     /* rows */
    float *full_head_memory;                    /* logits() after a sparse forward (bert_head.c) */
    size_t full_head_capacity;                  /* floats */

    /* What the last forward did, for backward. */
    int head_sparse;          /* the head ran on the scored rows only */
    int32_t head_n;           /* rows the head ran on (the scored ones, and padding rows when padded) */
    const float *encoder_out; /* [N,C] the last layer's output (inside the activation memory) */
    int has_type_ids;
    int batch_has_pad;        /* an input id equals pad_token_id (its embedding row gets no gradient) */
    float hidden_p, attn_p;   /* dropout probabilities used */
} bert_model;

static inline bert_model *bert_of(model_base *m) { return (bert_model *)m; }

/* The architecture's half of the plugin: bert_config.c, bert_forward.c,
 * bert_backward.c. */
lm_status bert_read_config(model_base *m, lm_config *cfg);
lm_status bert_write_hf_config(const model_base *m, lm_buffer *out);
size_t bert_carve_acts(model_base *m, float *base, int B, int T);
lm_status bert_acts_ready(model_base *m, int B, int T);
lm_status bert_forward(model_base *m, const lm_batch *batch, lm_step_state *state);
lm_status bert_upload_batch(model_base *m, const lm_batch *batch, int64_t n_targets, uint64_t *signature_extra);
void bert_backward(model_base *m, float loss_scale, lm_grad_store grads);

/* The feed-forward block with bf16 activations (activation_dtype=bf16;
 * bert_ffn_bf16.c).  Forward: from layer l's ln1_bf16 (which the
 * LayerNorm wrote with ln1), intermediate.dense into inter_bf16, the GELU into
 * inter_gelu_bf16, output.dense's fp32 output into acts.proj.  Backward:
 * from the branch gradient dbranch (fp32 [N,C], after the dropout's
 * backward), d ln1 ADDED into dln1 (the residual path's share is there),
 * the block's parameter gradients per grads; under recompute it first
 * rebuilds inter_gelu_bf16, which the layers share. */
void bert_ffn_forward_bf16(bert_model *m, bert_layer_acts *la, int l, int N);
void bert_ffn_backward_bf16(bert_model *m, bert_layer_acts *la, int l, const float *dbranch, float *dln1,
                            lm_grad_store grads);

/* The attention block with bf16 activations (activation_dtype=bf16;
 * bert_attn_bf16.c).  Forward: layer l's input x (fp32) rounded into
 * input_bf16, query/key/value into q_bf16/k_bf16/v_bf16, the attention
 * (eager or fused, with the key mask) into atty_bf16,
 * attention.output.dense's fp32 output into acts.proj.  Backward: from
 * the branch gradient dbranch (fp32 [N,C], after the dropout's backward),
 * the three projections' d x ADDED into dx (the residual path's share is
 * there), the block's parameter gradients per grads; under recompute it
 * first rebuilds input_bf16 from x, which the layers share. */
void bert_attn_forward_bf16(bert_model *m, bert_layer_acts *la, int l, const float *x, int N);
void bert_attn_backward_bf16(bert_model *m, bert_layer_acts *la, int l, const float *dbranch, const float *x,
                             float *dx, lm_grad_store grads);

/* The MLM head (bert_head.c).  Forward: with labels, on the n_targets
 * scored rows of encoder_out (and padding rows, mlm_head_rows), writing
 * their mean loss to state->loss (when state is given); without, logits for
 * every row.  Backward: leaves
 * d(encoder output) [N,C] in acts.dres_a.  download_logits: the [B,T,V]
 * logits of the last forward (the logits slot). */
/* The head's staging: its rows and scored labels uploaded, its logits buffer sized. */
lm_status bert_head_upload_batch(bert_model *m, const lm_batch *batch, int64_t n_targets, uint64_t *signature_extra);
lm_status bert_head_forward(bert_model *m, lm_step_state *state);
/* The rows a padded head runs on for `scored` scored rows of a batch of N
 * (1 <= scored <= N): scored rounded up to a multiple of a granule that
 * grows with N, at most N. */
int32_t bert_head_rows_for(int64_t scored, int32_t N);
void bert_head_backward(bert_model *m, float loss_scale, lm_grad_store grads);
lm_status bert_head_download_logits(model_base *m, float *out, size_t count);
/* Frees the head's buffers and the host row lists (free_extra). */
void bert_head_free(model_base *m);

#endif

/* GPT-2 (Hugging Face GPT2LMHeadModel) over the kernel backend table.
 *
 * Internal to the arch_gpt2 plugin.  The model is written once as calls to
 * lm_backend_ops (kernels/backend.h), so the same code runs on the CPU and on
 * CUDA; nothing here touches a device API directly.  The vtable slots that
 * every architecture shares are the skeleton's (plugins/common/model/
 * model_plugin.h); this plugin supplies its descriptor (gpt2_plugin.c). */
#ifndef LM_ARCH_GPT2_H
#define LM_ARCH_GPT2_H

#include <stddef.h>
#include <stdint.h>

#include "model_plugin.h"

/* The Hugging Face GPT2Config fields we honour (the device keys are in the
 * model_base). */
typedef struct gpt2_config {
    int32_t vocab_size, n_positions, n_embd, n_layer, n_head;
    int32_t n_inner;   /* resolved: 4 * n_embd when the config says null */
    int n_inner_given; /* 0: written back as null */
    double embd_pdrop, attn_pdrop, resid_pdrop;
    double layer_norm_epsilon, initializer_range;
    int64_t bos_token_id, eos_token_id; /* -1: null */
} gpt2_config;

/* Tensors of one transformer block, in Hugging Face order. */
enum {
    GPT2_LN1_W, GPT2_LN1_B, GPT2_QKV_W, GPT2_QKV_B, GPT2_ATTPROJ_W, GPT2_ATTPROJ_B,
    GPT2_LN2_W, GPT2_LN2_B, GPT2_FC_W, GPT2_FC_B, GPT2_FCPROJ_W, GPT2_FCPROJ_B,
    GPT2_TENSORS_PER_LAYER
};
/* Declaration indices: wte, wpe, then the blocks, then ln_f. */
#define GPT2_WTE 0
#define GPT2_WPE 1
#define GPT2_LAYER_TENSOR(l, k) (2 + (l) * GPT2_TENSORS_PER_LAYER + (k))
#define GPT2_LNF_W(L) (2 + (L) * GPT2_TENSORS_PER_LAYER)
#define GPT2_LNF_B(L) (GPT2_LNF_W(L) + 1)

/* Activations kept from forward for backward, for the (B, T) in use.
 * Per-layer arrays point into one allocation (llm.c style).  The buffers
 * marked (R) are shared by all layers under the `recompute` setting
 * (model_device.h), and backward rebuilds a layer's before using it:
 * ln1, ln2, fch_gelu and att (with bf16 activations ln1_bf16 and
 * ln2_bf16, one buffer, and fch_gelu_bf16 instead) with recompute=activations,
 * preatt too with recompute=attention. */
typedef struct gpt2_layer_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* [N,C] (R; NULL with bf16 activations: ln1_bf16 only) [N] [N] */
    float *qkv;                       /* [N,3C]; NULL with bf16 activations */
    float *atty;                      /* [N,C]; NULL with bf16 activations */
    /* activation_dtype=bf16 (model_base.activations_bf16; else NULL): the
     * attention block's stored activations in bf16, in place of ln1 (for
     * backward: c_attn's input, rounded), qkv and atty (gpt2_attn_bf16.c). */
    uint16_t *ln1_bf16;               /* [N,C] (R) */
    uint16_t *qkv_bf16;               /* [N,3C] */
    uint16_t *atty_bf16;              /* [N,C] */
    float *preatt;                    /* [B,NH,T,T] probabilities before dropout (R: attention);
                                         fused attention: [B,NH,T] log-sum-exp (model_attention_carve) */
    float *att;                       /* [B,NH,T,T] after dropout (R; unused when attn_p = 0) */
    float *residual2;                 /* [N,C] */
    float *ln2, *ln2_mean, *ln2_rstd; /* (R; NULL with bf16 activations: ln2_bf16 only) */
    float *fch, *fch_gelu;            /* [N,H] before and after GELU (R: fch_gelu); NULL with bf16 activations */
    /* activation_dtype=bf16 (model_base.activations_bf16; else NULL): the
     * feed-forward block's stored activations in bf16, in place of ln2 (for
     * backward: c_fc's input, rounded), fch and fch_gelu. */
    uint16_t *ln2_bf16;               /* [N,C] (R) */
    uint16_t *fch_bf16, *fch_gelu_bf16; /* [N,H] (R: fch_gelu_bf16) */
    float *residual3;                 /* [N,C] = the block's output */
} gpt2_layer_acts;

typedef struct gpt2_acts {
    float *encoded;  /* [N,C] embeddings before dropout */
    float *x0;       /* [N,C] embeddings after dropout = input of block 0 */
    gpt2_layer_acts *layers;
    float *proj;     /* [N,C] scratch: c_proj outputs before dropout */
    float *lnf, *lnf_mean, *lnf_rstd;
    void *logits;    /* [N,V] in the logits dtype (fp32, or bf16 uint16_t); holds dlogits after backward */
    uint16_t *lnf_bf16; /* [N,C] ln_f's output rounded, the bf16 head's input (logits_dtype=bf16; else NULL) */
    float *losses;   /* [N] */
    /* backward scratch */
    float *dresidual;    /* [N,C] gradient of the residual stream */
    float *dproj;        /* [N,C] */
    float *dln;          /* [N,C] */
    float *datty;        /* [N,C] */
    float *dqkv;         /* [N,3C] (the attention backwards add in fp32) */
    uint16_t *dqkv_bf16; /* [N,3C] dqkv rounded, c_attn's backward dout (bf16 activations; else NULL) */
    float *dfch;         /* [N,H] (gelu_matmul_backward: no scratch for d gelu(fch)); NULL with bf16 activations */
    uint16_t *dbranch_bf16, *dfch_bf16; /* [N,C] a branch's gradient rounded (the MLP's, then the
                                           attention's), [N,H] (bf16 activations) */
    float *datt_scratch; /* [B,NH,T,T] ([B,NH,T] with the fused attention) */
    int32_t *labels;     /* [N] on the device (ids and key mask: model_base) */
} gpt2_acts;

/* Incremental decoding of one sequence (gpt2_generate.c): per-layer key and
 * value caches plus the activations of up to max_tokens new positions, in
 * one allocation that only grows; the attention probabilities of a step
 * ([NH, n, pos+n]) in a second one, grown when a long prompt needs it. */
typedef struct gpt2_generation {
    int32_t max_tokens; /* of the last generate_reset; 0: none, or invalidated */
    int32_t pos;        /* positions in the caches */
    float *memory;
    size_t capacity;    /* floats */
    float *k_cache, *v_cache;   /* [L, max_tokens, C] */
    float *x, *h;               /* [max_tokens, C] residual stream: block input, after attention */
    float *ln, *mean, *rstd;    /* [max_tokens, C], [max_tokens] x 2 */
    float *qkv;                 /* [max_tokens, 3C] */
    float *atty, *proj;         /* [max_tokens, C] */
    float *fch, *fch_gelu;      /* [max_tokens, H] */
    float *logits;              /* [V] of the last position */
    float *att;                 /* [NH, n, pos+n] */
    size_t att_capacity;        /* floats */
    int32_t *ids;               /* [max_tokens] */
    size_t ids_capacity;        /* int32s */
} gpt2_generation;

typedef struct gpt2_model {
    model_base base; /* first: the skeleton's part (model_plugin.h) */
    gpt2_config config;
    gpt2_acts acts;
    float embd_p, attn_p, resid_p; /* dropout probabilities of the last forward */
    gpt2_generation gen;           /* separate from the training activations */
} gpt2_model;

static inline gpt2_model *gpt2_of(model_base *m) { return (gpt2_model *)m; }

/* The architecture's half of the plugin: gpt2_config.c, gpt2_forward.c,
 * gpt2_backward.c. */
lm_status gpt2_read_config(model_base *m, lm_config *cfg);
lm_status gpt2_write_hf_config(const model_base *m, lm_buffer *out);
size_t gpt2_carve_acts(model_base *m, float *base, int B, int T);
lm_status gpt2_forward(model_base *m, const lm_batch *batch, lm_step_state *state);
lm_status gpt2_upload_batch(model_base *m, const lm_batch *batch, int64_t n_targets, uint64_t *signature_extra);
void gpt2_backward(model_base *m, float loss_scale, lm_grad_store grads);

/* The MLP block with bf16 activations (activation_dtype=bf16;
 * gpt2_mlp_bf16.c).  Forward: from layer l's ln2_bf16 (which ln_2 wrote),
 * c_fc + GELU into fch_bf16 / fch_gelu_bf16, c_proj's fp32
 * output into acts.proj.  Backward: from the branch gradient dbranch (fp32
 * [N,C], after the dropout's backward) to d ln2 in acts.dln (written),
 * c_fc's and c_proj's parameter gradients per grads; under recompute it
 * first rebuilds what the layers share (fch_gelu_bf16 and ln2_bf16). */
void gpt2_mlp_forward_bf16(gpt2_model *m, gpt2_layer_acts *la, int l, int N);
void gpt2_mlp_backward_bf16(gpt2_model *m, gpt2_layer_acts *la, int l, const float *dbranch, lm_grad_store grads);

/* The attention block with bf16 activations (activation_dtype=bf16;
 * gpt2_attn_bf16.c).  Forward: from layer l's ln1_bf16 (which ln_1 wrote),
 * c_attn into qkv_bf16, the attention (eager or fused) into
 * atty_bf16, c_proj's fp32 output into acts.proj.  Backward: from the
 * branch gradient dbranch (fp32 [N,C], after the dropout's backward) to
 * d ln1 in acts.dln (written), c_attn's and c_proj's parameter gradients
 * per grads; under recompute it rebuilds ln1_bf16, which the layers share,
 * from block_input (the layer's input). */
void gpt2_attn_forward_bf16(gpt2_model *m, gpt2_layer_acts *la, int l, int N);
void gpt2_attn_backward_bf16(gpt2_model *m, gpt2_layer_acts *la, int l, const float *dbranch,
                             const float *block_input, lm_grad_store grads);

/* The ABI 1.1 generate_reset / generate_step slots (gpt2_generate.c). */
lm_status gpt2_generate_reset(void *self, int32_t max_tokens);
lm_status gpt2_generate_step(void *self, const int32_t *ids, int32_t n, float *logits);
/* The weights changed: the caches no longer match them (reset required). */
void gpt2_generate_invalidate(model_base *m);
void gpt2_generate_free(model_base *m);

#endif

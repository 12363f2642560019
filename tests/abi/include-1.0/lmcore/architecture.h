/* lmcore — the architecture plugin interface (kind LM_KIND_ARCHITECTURE).
 *
 * A model owns its parameters, gradients and AdamW moments as four flat
 * float32 buffers of n_params elements each (on the host or the device),
 * carved into named tensors described by lm_param_desc.  Names and layouts
 * follow Hugging Face, so the core can write model.safetensors that
 * `transformers` loads unchanged.  The training step is driven by the core:
 * zero_grad, forward (loss), backward, grad_norm, optimizer_step. */
#ifndef LMCORE_ARCHITECTURE_H
#define LMCORE_ARCHITECTURE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LM_IGNORE_INDEX (-100)

typedef struct lm_arch_info {
    const char *model_type; /* Hugging Face model_type: "gpt2", "bert" */
    int causal;             /* 1: position t attends to positions <= t only */
    int uses_token_types;   /* reads lm_batch.token_type_ids */
    int32_t vocab_size;
    int32_t max_positions;
    int64_t n_params;       /* floats in each flat buffer */
    const char *device;     /* "cpu" or "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" */
    const char *precision;  /* "fp32", "tf32", "bf16" */
} lm_arch_info;

/* One batch of B sequences of T positions, prepared by an objective.
 * labels[i] is the target id of position i (already shifted for causal LM),
 * or LM_IGNORE_INDEX.  The loss is the mean cross-entropy over the
 * n_targets positions whose label is not ignored. */
typedef struct lm_batch {
    int32_t B, T;
    int32_t *input_ids;      /* [B*T] */
    int32_t *labels;         /* [B*T] or NULL (inference)          */
    int32_t *attention_mask; /* [B*T] 1 = token, 0 = padding; NULL = all tokens */
    int32_t *token_type_ids; /* [B*T] or NULL = all zeros          */
    int64_t n_targets;       /* labels != LM_IGNORE_INDEX          */
    uint64_t seed;           /* dropout: masks are f(seed, step, element) */
    uint64_t step;           /* distinct for every micro-batch of a run */
} lm_batch;

/* One AdamW update (Loshchilov & Hutter; PyTorch's torch.optim.AdamW). */
typedef struct lm_optim_params {
    float lr;
    float beta1, beta2, eps;
    float weight_decay; /* applied to tensors whose desc.weight_decay is 1 */
    float grad_scale;   /* gradients are multiplied by this first (clipping) */
    int64_t t;          /* 1-based step count, for bias correction */
} lm_optim_params;

typedef enum lm_param_buffer {
    LM_BUFFER_PARAMS = 0,
    LM_BUFFER_GRADS = 1,
    LM_BUFFER_ADAM_M = 2,
    LM_BUFFER_ADAM_V = 3
} lm_param_buffer;

/* A named tensor inside the flat buffers. */
typedef struct lm_param_desc {
    const char *name;  /* "transformer.h.0.attn.c_attn.weight" */
    int32_t ndim;
    int64_t shape[4];
    size_t offset;     /* in floats from the start of the flat buffer */
    int weight_decay;  /* 0 for biases, LayerNorm weights and embeddings' norms */
} lm_param_desc;

typedef struct lm_architecture_vtable {
    /* Required.  cfg: the Hugging Face config fields of the model, plus
     * device (cpu|cuda|auto), precision (fp32|tf32|bf16), and hf_config (path
     * of a config.json to read the fields from, as saved by hf_config()). */
    lm_status (*create)(void **self, lm_config *cfg);
    void (*destroy)(void *self);
    lm_status (*info)(void *self, lm_arch_info *out);
    lm_status (*params)(void *self, const lm_param_desc **list, size_t *n);
    /* Hugging Face initialisation from a seed (same weights on CPU and GPU). */
    lm_status (*init_weights)(void *self, uint64_t seed);
    lm_status (*set_training)(void *self, int training); /* dropout on/off */
    /* Runs the model; with labels, *loss receives the mean cross-entropy.
     * Activations for the batch's (B, T) are (re)allocated as needed. */
    lm_status (*forward)(void *self, const lm_batch *batch, float *loss);
    /* Accumulates d(loss * loss_scale)/d(param) into the gradient buffer
     * for the batch of the last forward (loss_scale: 1/accumulation steps). */
    lm_status (*backward)(void *self, float loss_scale);
    lm_status (*zero_grad)(void *self);
    lm_status (*grad_norm)(void *self, float *norm); /* global L2 norm */
    lm_status (*optimizer_step)(void *self, const lm_optim_params *p);
    /* Copies the logits of the last forward ([B, T, vocab] floats) to host. */
    lm_status (*logits)(void *self, float *out, size_t count);
    /* Whole flat buffers to / from host memory (n_params floats). */
    lm_status (*read_buffer)(void *self, lm_param_buffer which, float *dst);
    lm_status (*write_buffer)(void *self, lm_param_buffer which, const float *src);
    /* Appends the Hugging Face config.json text for this model. */
    lm_status (*hf_config)(void *self, lm_buffer *out);
} lm_architecture_vtable;

#ifdef __cplusplus
}
#endif
#endif

/* lmcore — the architecture plugin interface (kind LM_KIND_ARCHITECTURE).
 *
 * A model owns its parameters and their gradients: two flat buffers of
 * n_params elements in the memory of its device, carved into named tensors
 * described by lm_param_desc.  Names and layouts follow Hugging Face, so the
 * core writes model.safetensors that `transformers` loads unchanged.  The
 * model computes (forward, backward, inference); everything else about
 * training belongs elsewhere: the optimizer and its state to an optimizer
 * plugin (optimizer.h), the per-step scalars to the step state (step.h),
 * the loop to the core.  A training step is
 *
 *     forward(batch, state)          loss -> state->loss, on the device
 *                                    (or forward_train(batch, state, scale))
 *     backward(scale, accumulate)    gradients written or added
 *     [device] step_clip, step_schedule; [optimizer] step; [device] step_finish
 *
 * and none of it waits for the device. */
#ifndef LMCORE_ARCHITECTURE_H
#define LMCORE_ARCHITECTURE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "device.h"
#include "status.h"
#include "step.h"
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
    int64_t n_params;       /* elements in each flat buffer */
    const char *device;     /* "cpu (2 threads)" or "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" */
    const char *precision;  /* "fp32", "tf32", "bf16" */
} lm_arch_info;

/* One batch of B sequences of T positions, made (and owned) by an objective.
 * labels[i] is the target id of position i (already shifted for causal LM),
 * or LM_IGNORE_INDEX.  The loss is the mean cross-entropy over the
 * n_targets positions whose label is not ignored.  Host memory. */
typedef struct lm_batch {
    uint32_t struct_size;          /* sizeof(lm_batch) of its maker: fields past it are absent (0: 2.0) */
    int32_t B, T;
    const int32_t *input_ids;      /* [B*T] */
    const int32_t *labels;         /* [B*T] or NULL (inference)          */
    const int32_t *attention_mask; /* [B*T] 1 = token, 0 = padding; NULL = all tokens */
    const int32_t *token_type_ids; /* [B*T] or NULL = all zeros          */
    int64_t n_targets;             /* labels != LM_IGNORE_INDEX          */
} lm_batch;

/* A named tensor inside the flat buffers. */
typedef struct lm_param_desc {
    const char *name;     /* "transformer.h.0.attn.c_attn.weight" */
    int32_t ndim;
    int32_t weight_decay; /* 1: AdamW decays it; 0 for biases and LayerNorm weights */
    int64_t shape[4];
    size_t offset;        /* in elements from the start of the flat buffers */
    size_t storage;       /* elements it occupies: its element count, or more when rows
                             beyond shape[0] pad it (they stay zero and are never saved) */
} lm_param_desc;

/* The parameters as an optimizer and the core see them.  Pointers are
 * device memory and stay valid as long as the model. */
typedef struct lm_param_set {
    uint32_t struct_size; /* sizeof(lm_param_set) */
    int32_t grad_dtype;   /* lm_dtype of grads: LM_F32 */
    lm_device *device;    /* where params, grads and anything beside them live */
    const lm_param_desc *descs;
    size_t n_descs;
    size_t n_params;      /* elements in params and grads */
    float *params;        /* fp32 master weights */
    void *grads;          /* gradients, grad_dtype */
    void *params_copy;    /* NULL, or a lower-precision copy of params (copy_dtype) that forward
                             reads: an optimizer rewrites it from params after each update */
    int32_t copy_dtype;   /* lm_dtype of params_copy */
    int32_t reserved0;
} lm_param_set;

/* ABI 2.1: told during backward that the gradients of elements [offset,
 * offset + count) of the flat gradient buffer are final for this backward
 * (set_grads_ready).  Ranges cover whole tensors, never overlap within one
 * backward, and together cover the buffer by the time backward returns.
 * On a device with a stream (CUDA) the range is final once the work queued
 * on lm_device.stream so far completes, not when the callback runs: a
 * consumer orders its work after it on that stream (record an event there,
 * or enqueue on it), it never reads the range from the host.  The callback
 * returns nothing: a consumer keeps its own failure and reports it after
 * backward returns. */
typedef void (*lm_grads_ready_fn)(void *user, size_t offset, size_t count);

typedef struct lm_architecture_vtable {
    /* Required.  cfg: the Hugging Face config fields of the model, plus
     * device (cpu|cuda|auto), precision (fp32|tf32|bf16), and hf_config (path
     * of a config.json to read the fields from, as saved by hf_config()). */
    lm_status (*create)(void **self, lm_config *cfg);
    void (*destroy)(void *self);
    lm_status (*info)(void *self, lm_arch_info *out);
    /* The parameters, their gradients, their descriptors and the device. */
    lm_status (*parameters)(void *self, lm_param_set *out);
    /* Hugging Face initialisation from a seed (same weights on CPU and GPU);
     * the gradients are zeroed. */
    lm_status (*init_weights)(void *self, uint64_t seed);
    lm_status (*set_training)(void *self, int training); /* dropout on/off */
    /* Runs the model on a batch, queued on the device.  `state` (device
     * memory, step.h) may be NULL for inference.  In training mode dropout
     * masks come from state->seed and state->micro_batch, read on the
     * device.  With labels and a state, the mean loss is written to
     * state->loss; nothing is read back.  Activations for the batch's
     * (B, T) are (re)allocated as needed. */
    lm_status (*forward)(void *self, const lm_batch *batch, lm_step_state *state);
    /* d(loss * loss_scale)/d(param) for the batch of the last forward with
     * labels, written into the gradient buffer (accumulate = 0) or added to
     * it (accumulate = 1, gradient accumulation).  Once per forward. */
    lm_status (*backward)(void *self, float loss_scale, int accumulate);
    /* Copies the logits of the last forward ([B, T, vocab] floats) to the
     * host: a host read.  Kept after an inference forward (state NULL); a
     * model may keep none after a training forward. */
    lm_status (*logits)(void *self, float *out, size_t count);
    /* Appends the Hugging Face config.json text for this model. */
    lm_status (*hf_config)(void *self, lm_buffer *out);

    /* Optional: incremental decoding for causal models.  generate_reset
     * prepares a key/value cache for one sequence of at most max_tokens
     * tokens (eval mode, dropout off) from the current weights.
     * generate_step appends n tokens at the next positions and writes the
     * logits of the last one ([vocab_size] floats, host memory) to `logits`.
     * Without these slots the core generates by re-running forward on the
     * whole sequence. */
    lm_status (*generate_reset)(void *self, int32_t max_tokens);
    lm_status (*generate_step)(void *self, const int32_t *ids, int32_t n, float *logits);

    /* Optional: the host wrote `params` through the device (loading
     * weights, resuming a checkpoint).  Rebuild what is derived from the
     * parameters (a params_copy, caches); a model that derives nothing
     * leaves it NULL.  (An optimizer rewrites params_copy itself.) */
    lm_status (*params_written)(void *self);

    /* Optional (ABI 2.1): calls fn(user, offset, count) during every later
     * backward as each range of gradients becomes final (lm_grads_ready_fn),
     * so that a data-parallel caller can start reducing them while the rest
     * of backward runs (PyTorch DDP's buckets).  fn NULL stops the calls (the
     * default: nothing is done for it).  A model without the slot is reduced
     * after backward. */
    lm_status (*set_grads_ready)(void *self, lm_grads_ready_fn fn, void *user);
    /* Optional (ABI 2.1): a training forward, which backward(loss_scale, ·)
     * follows.  forward's contract, and the model may compute the loss
     * gradient already (the built-ins do: loss and dlogits in one pass over
     * the logits, the fused classifier), so it keeps no logits (logits()
     * says so) and backward must get the same loss_scale (else
     * LM_ERR_INVALID).  The batch must have labels.  NULL: the trainer
     * calls forward. */
    lm_status (*forward_train)(void *self, const lm_batch *batch, lm_step_state *state, float loss_scale);
    /* Optional (ABI 2.1): the batch's host half of forward, ahead of it.
     * Checks the batch, makes the activations for its shape, and queues
     * its upload (ids, masks, labels, and whatever the model derives from
     * them on the host) into device buffers that stay put from batch to
     * batch of a shape; the next forward, which must get this same batch,
     * and its backward then queue kernels only: no upload, no allocation,
     * no host read, so that they can be captured into a CUDA graph
     * (lm_device_ops.graph_begin) and the graph replayed on later batches
     * staged the same way.  `signature` receives a value that is equal for
     * two batches exactly when their forward and backward (given the same
     * state and loss scale) queue the same kernels with the same arguments
     * (shape, which arrays are present, training mode, where the buffers
     * are; a count a kernel reads from device memory is not an argument):
     * the trainer keys its graphs by it.  A
     * NULL batch drops what was staged (the caller replayed a graph
     * instead of calling forward).  The slot NULL: the model cannot be
     * captured (the trainer runs its steps eagerly). */
    lm_status (*upload_batch)(void *self, const lm_batch *batch, uint64_t *signature);
} lm_architecture_vtable;

#ifdef __cplusplus
}
#endif
#endif

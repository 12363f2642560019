/* The architecture vtable written once: what every transformer plugin does
 * the same way, over a small descriptor of what it does its own way.
 *
 * An architecture plugin (GPT-2, BERT) supplies a model_arch: its sizes,
 * how it reads its configuration and declares its parameters, how it lays
 * out its activations, and its forward and backward.  The functions below
 * are the lm_architecture_vtable slots; the plugin's vtable points at them
 * (create through a one-line wrapper that names the descriptor).  They own
 * the backend, the parameter table and flat buffers, the activation memory
 * and the batch's ids on the device, and the state between forward and
 * backward, with the checks and messages that go with them.
 *
 * The architecture's model struct starts with a model_base (the skeleton's
 * part), so that the skeleton and the architecture see the same object.
 *
 * Plugin-internal (hidden visibility): not part of the lmcore API. */
#ifndef LM_PLUGIN_MODEL_PLUGIN_H
#define LM_PLUGIN_MODEL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "lmcore/architecture.h"
#include "lmcore/config.h"
#include "model_arena.h"
#include "model_batch.h"
#include "model_device.h"
#include "model_params.h"

typedef struct model_base model_base;

typedef struct model_arch {
    const char *name;  /* "gpt2": lm_arch_info.model_type and the prefix of messages */
    const char *label; /* "GPT-2": names allocations and the op profile */
    int causal, uses_token_types;  /* lm_arch_info */
    size_t model_size;             /* of the architecture's struct, which starts with its model_base */
    size_t layer_acts_size;        /* of one entry of the per-layer activation table */
    int extra_batch_arrays;        /* [N] int32 arrays on the device besides ids and the key mask */

    /* Reads and checks the configuration, and fills the model_base fields
     * it owns (limits, n_layer, width, n_head, dropout_configured, device). */
    lm_status (*read_config)(model_base *m, lm_config *cfg);
    /* Declares every tensor, in Hugging Face order (param_table_add_*);
     * the backend exists and m->vocab_rows is set: the tied word
     * embeddings (and a bias over the vocabulary) take vocab_rows rows
     * (param_table_pad_rows). */
    lm_status (*declare_params)(model_base *m);
    /* Lays the activations of a (B, T) batch out from `base` (only counts
     * when base is NULL) and returns the floats needed.  When assigning,
     * m->layer_acts and the batch arrays (m->extra_batch_ints) are ready. */
    size_t (*carve_acts)(model_base *m, float *base, int B, int T);
    /* The forward after the skeleton's checks: the batch is valid, B, T,
     * key, ids and key_mask of m are this batch's, and its count of scored
     * labels is in m->n_targets_device.  With labels it writes the mean loss
     * over them to state->loss (when state is given: model_forward_loss). */
    lm_status (*forward)(model_base *m, const lm_batch *batch, lm_step_state *state);
    /* The backward of the last forward (which had labels).  grads
     * LM_GRAD_ADD (accumulate = 1): every parameter gradient is added to.
     * LM_GRAD_WRITE (accumulate = 0): every tensor's gradient is written,
     * whatever the buffer held: its first writer stores it with
     * LM_GRAD_WRITE (a matmul's or LayerNorm's dweight/dbias), and a table
     * that backward only scatter-adds into (position, token type) is zeroed
     * first (model_grads_zero_tensor); the skeleton has zeroed the elements
     * outside every tensor (model_buffers_prepare_grads).  Checked by
     * tests/models/test_written_param_grads.c. */
    void (*backward)(model_base *m, float loss_scale, lm_grad_store grads);
    /* Appends config.json text in the Hugging Face format. */
    lm_status (*write_hf_config)(const model_base *m, lm_buffer *out);

    /* Optional (NULL: nothing to do). */
    /* The architecture's part of staging a batch (model_upload_batch):
     * uploads of its own arrays and what it derives from the batch on the
     * host, so that its forward and backward queue kernels only.  Adds to
     * *signature_extra whatever besides the skeleton's signature decides
     * their kernels (a host-side branch, a buffer of its own that moves). */
    lm_status (*upload_batch)(model_base *m, const lm_batch *batch, int64_t n_targets, uint64_t *signature_extra);
    /* After carve_acts assigned: what else a batch shape needs (host buffers, constants). */
    lm_status (*acts_ready)(model_base *m, int B, int T);
    /* The freshly drawn weights, on the host, before they are uploaded. */
    void (*adjust_initial_weights)(model_base *m, float *host);
    /* logits() after the skeleton's checks (NULL: download m->logits). */
    lm_status (*download_logits)(model_base *m, float *out, size_t count);
    /* The weights changed (init_weights, params_written): drop what was computed from them. */
    void (*weights_replaced)(model_base *m);
    /* Frees what the architecture allocated itself (destroy; the backend is still there, or NULL). */
    void (*free_extra)(model_base *m);
} model_arch;

struct model_base {
    const model_arch *arch;

    /* Filled by read_config. */
    model_device device;       /* device, precision, threads, profile_ops, recompute */
    model_batch_limits limits; /* the batch checks: vocab_size, max_positions, type_vocab_size */
    int32_t n_layer, width, n_head;
    /* The vocabulary inside the model: limits.vocab_size rounded up to
     * pad_vocab_to_multiple_of (model_device.h).  The tied word embeddings
     * have vocab_rows rows in the flat buffers (the ones after vocab_size
     * zero, outside the tensor's shape) and the logits vocab_rows columns,
     * so that the head is one GEMM of a tile-friendly width; the loss ops
     * score the first vocab_size (backend_ops.def), and logits() strips the
     * rest.  Equal to vocab_size when nothing is padded (the CPU's auto). */
    int32_t vocab_rows;
    /* logits_dtype resolved (model_device_stores_bf16): 1 when the logits
     * (and dlogits) are bf16 [N, vocab_rows] uint16_t, the head's GEMMs
     * reading the bf16 params_copy and a bf16 copy of their input
     * (model_head.c); 0: fp32, the head as it always was. */
    int logits_bf16;
    /* activation_dtype resolved (model_device_stores_bf16): 1 when the
     * activations backward reads are stored in bf16 (uint16_t), today the
     * feed-forward and attention blocks' (the architectures' forward and
     * backward), their GEMMs reading the bf16 params_copy; 0: fp32, as they
     * always were. */
    int activations_bf16;
    int dropout_configured;    /* any dropout p > 0: forward in training mode needs a step state */

    lm_backend *backend;
    param_table table;
    model_buffers buffers;
    char device_desc[160];

    /* Activations: one float and one int32 allocation, grown when a batch
     * needs more, carved for (act_B, act_T). */
    float *act_memory;
    size_t act_capacity; /* floats */
    int32_t *int_memory;
    size_t int_capacity; /* int32s */
    void *layer_acts;    /* n_layer entries of arch->layer_acts_size */
    int32_t act_B, act_T;
    int32_t *extra_batch_ints; /* arch->extra_batch_arrays arrays of batch_ints_stride int32s */
    size_t batch_ints_stride;

    /* The attention of the carved (B, T): 1 the fused ops (attention_fused_*),
     * 0 the eager ones (model_device.h's attn_implementation, decided per shape). */
    int attention_fused;

    /* What the last forward did, for backward and logits(). */
    int training;
    int32_t B, T;
    int32_t *ids;              /* [N] the input ids on the device */
    const int32_t *key_mask;   /* [N] the attention mask on the device; NULL: the batch had none */
    int32_t *key_mask_memory;  /* where key_mask is uploaded */
    const lm_step_state *key;  /* the dropout key (device memory) */
    int has_targets;           /* forward computed a loss: backward is possible (once) */
    /* The batch's count of scored labels, on the device (an int64 after the
     * batch arrays in int_memory), uploaded when a batch with labels is
     * staged: the loss ops read it there (backend_ops.def), so it is no
     * kernel argument and no part of a captured graph's key. */
    int64_t *n_targets_device;
    int logits_valid;          /* the logits of the last forward can be read */
    const char *logits_gone;   /* why not, when !logits_valid after a forward (NULL: backward overwrote them) */
    const void *logits;        /* [B*T, vocab_rows] (logits_bf16: uint16_t) where logits() downloads from,
                                  unless download_logits */

    /* The gradients-ready notification (ABI 2.1, set_grads_ready): NULL by
     * default, and then model_grads_final_from costs one test.  During a
     * backward, tensors with declaration index >= grads_final_from have
     * been reported final. */
    lm_grads_ready_fn grads_ready;
    void *grads_ready_user;
    size_t grads_final_from;
    size_t *grads_ready_scratch; /* table.count tensor indices, sorted by offset when reporting */
    /* The fused classifier (forward_train): during a training forward,
     * model_forward_loss computes the loss and its gradient in one op, with
     * the loss_scale backward will be given; backward then skips the
     * cross-entropy backward (model_loss_backward). */
    int forward_fuses_loss;    /* set while forward_train runs the architecture's forward */
    float fused_loss_scale;    /* its loss_scale */
    int dlogits_ready;         /* the last forward wrote d(loss * fused_loss_scale)/dlogits over the logits */
    /* The batch model_upload_batch staged for the next forward (NULL: none). */
    const lm_batch *staged;
    uint64_t staged_signature_extra;
};

/* The vtable slots.  create names the descriptor; the others find it in
 * the model.  An architecture's vtable is {.create = its_create,
 * MODEL_VTABLE_SLOTS, and any slot of its own (generate_*)}. */
#define MODEL_VTABLE_SLOTS                                                                                         \
    .destroy = model_destroy, .info = model_info, .parameters = model_parameters,                                  \
    .init_weights = model_init_weights, .set_training = model_set_training, .forward = model_forward,              \
    .backward = model_backward, .logits = model_logits, .hf_config = model_hf_config,                              \
    .params_written = model_params_written, .set_grads_ready = model_set_grads_ready,                              \
    .forward_train = model_forward_train, .upload_batch = model_upload_batch
lm_status model_create(const model_arch *arch, void **self, lm_config *cfg);
void model_destroy(void *self);
lm_status model_info(void *self, lm_arch_info *out);
lm_status model_parameters(void *self, lm_param_set *out);
lm_status model_init_weights(void *self, uint64_t seed);
lm_status model_set_training(void *self, int training);
lm_status model_forward(void *self, const lm_batch *batch, lm_step_state *state);
lm_status model_forward_train(void *self, const lm_batch *batch, lm_step_state *state, float loss_scale);
lm_status model_backward(void *self, float loss_scale, int accumulate);
lm_status model_logits(void *self, float *out, size_t count); /* model_head.c */
lm_status model_hf_config(void *self, lm_buffer *out);
lm_status model_params_written(void *self);
lm_status model_set_grads_ready(void *self, lm_grads_ready_fn fn, void *user);

/* For an architecture's backward: every tensor whose declaration index is
 * `first_tensor` or more has its final gradient now (queued on the device),
 * so the caller of set_grads_ready may start reducing it.  Call it where a
 * layer's backward ends (and after the head), with the layer's first
 * tensor; backward walks the layers in reverse, so the index only falls.
 * Tensors reported before are not reported again; the skeleton reports the
 * rest (index 0 on) when backward returns.  Nothing to do without a
 * callback, the default. */
void model_grads_report(model_base *m, size_t first_tensor);
static inline void model_grads_final_from(model_base *m, size_t first_tensor) {
    if (m->grads_ready) model_grads_report(m, first_tensor);
}
/* For an architecture's backward that writes its gradients: zeroes tensor
 * `index`'s gradient (its storage), before ops that only add into some of
 * its rows. */
void model_grads_zero_tensor(model_base *m, int index);
/* The upload_batch slot (lmcore/architecture.h): stages the batch for the
 * next forward, which must get this same batch. */
lm_status model_upload_batch(void *self, const lm_batch *batch, uint64_t *signature);

/* Float pointer of tensor `index` (declaration order) inside a flat buffer
 * (m->buffers.params or .grads). */
static inline float *model_tensor(const model_base *m, float *base, int index) {
    return base + m->table.descs[index].offset;
}

/* Tensor `index` in the BF16 params_copy (with_bf16_copy: logits_bf16 or
 * activations_bf16), which holds every tensor at its offset in the flat
 * buffer (lm_param_set.params_copy): the weights bf16 GEMMs read. */
static inline const uint16_t *model_tensor_bf16(const model_base *m, int index) {
    return m->buffers.params_copy + m->table.descs[index].offset;
}

/* Grows a backend buffer to at least `need` elements of element_size
 * bytes (the contents are not kept). */
lm_status model_buffer_grow(lm_backend *be, void **buffer, size_t *capacity, size_t need, size_t element_size,
                            const char *what);

/* ---- the tied classifier head (model_head.c) ---- */
/* Downloads `rows` rows of logits ([rows, vocab_rows] on the device, in
 * the model's logits dtype) as [rows, vocab_size] floats into out (count
 * floats: rows * vocab_size), the padding columns left out, bf16 widened
 * (logits() and BERT's head rows). */
lm_status model_download_logits(model_base *m, float *out, const void *logits, size_t count);
/* Arena floats (model_arena_take's unit) of `rows` rows of logits in the
 * model's dtype, and of the head input's bf16 copy (0 with fp32 logits:
 * none is taken). */
size_t model_logits_floats(const model_base *m, size_t rows);
size_t model_head_input_floats(const model_base *m, size_t rows);
/* logits[rows, vocab_rows] = x[rows, width] · Wᵀ (+ bias), W the tied word
 * embeddings (tensor weight_index, [vocab_rows, width]).  With bf16 logits,
 * x is first rounded into x_bf16 ([rows, width], kept for backward) and W
 * read from the params_copy: matmul_forward_bf16; else matmul_forward. */
void model_head_forward(model_base *m, void *logits, const float *x, uint16_t *x_bf16, int weight_index,
                        const float *bias, int rows);
/* Its backward from dlogits (what model_loss_backward left in logits): dx
 * written, the weight's gradient (and dbias, may be NULL) written or added
 * per grads (matmul_backward's contract; the bf16 op with bf16 logits,
 * reading x_bf16 and the params_copy). */
void model_head_backward(model_base *m, float *dx, int weight_index, float *dbias, const void *dlogits,
                         const float *x, const uint16_t *x_bf16, int rows, lm_grad_store grads);

/* The loss of the forward: per-row cross-entropies of `rows` logits rows
 * into `losses`, and their mean over the batch's scored labels (their count
 * read on the device: n_targets_device) to state->loss (when state is
 * given): a loss that is not finite is flagged there (step_micro_batch_end),
 * not read here.  In a training forward
 * (forward_train) the same op also writes d(mean loss * loss_scale)/dlogits
 * over the logits (crossentropy_forward_backward): the logits are gone. */
void model_forward_loss(model_base *m, float *losses, void *logits, const int32_t *labels, int rows,
                        lm_step_state *state);
/* The first step of backward: d(mean loss * loss_scale)/dlogits written
 * over the logits model_forward_loss scored, unless the forward already
 * wrote them (a training forward).  Either way the logits buffer then
 * holds dlogits. */
void model_loss_backward(model_base *m, void *logits, const int32_t *labels, int rows, float loss_scale);

/* ---- the attention of a layer (model_attention.c) ---- */
/* The attention buffers of a carve for (B, T) (model_arena.h): with the
 * eager attention, model_arena_probs_begin's [B,NH,T,T] probabilities and a
 * [B,NH,T,T] backward scratch; with the fused one, only each layer's
 * log-sum-exp [B,NH,T] (in the layer's preatt; never shared, att aliases it)
 * and a [B,NH,T] scratch.  `scratch_size` of the result sizes the scratch. */
model_arena_probs model_attention_carve(const model_base *m, model_arena *a, int dropout, int B, int T);

/* Self-attention of one layer of the last forward: q, k and v are rows of
 * `stride` floats; the probabilities before dropout go to preatt, after
 * it to att (unused when p = 0, when every user reads preatt: the layer's
 * attention_probs(), which both directions use). */
static inline float *model_attention_probs(float *preatt, float *att, float p) { return p > 0.0f ? att : preatt; }
void model_attention_forward(model_base *m, float *out, float *preatt, float *att, const float *q, const float *k,
                             const float *v, int stride, float p, int layer);
/* Its backward, into zeroed dq, dk, dv: first rebuilds what `recompute`
 * did not keep (att, and preatt with recompute=attention, whose output goes
 * to out_scratch, [N,C] that is free during backward).  out: the layer's
 * attention output of the forward (the fused backward reads it). */
void model_attention_backward(model_base *m, float *dq, float *dk, float *dv, float *scratch, float *out_scratch,
                              const float *dout, const float *out, float *preatt, float *att, const float *q,
                              const float *k, const float *v, int stride, float p, int layer);
/* The same two with bf16 activations (activation_dtype=bf16): q, k, v, out
 * and out_scratch bf16 (the attention ops' bf16 twins), the rest as above
 * (fp32 probabilities or lse, dout, scratch and dq/dk/dv).  The choice of
 * op and what recompute rebuilds are the fp32 entry points'. */
void model_attention_forward_bf16(model_base *m, uint16_t *out, float *preatt, float *att, const uint16_t *q,
                                  const uint16_t *k, const uint16_t *v, int stride, float p, int layer);
void model_attention_backward_bf16(model_base *m, float *dq, float *dk, float *dv, float *scratch,
                                   uint16_t *out_scratch, const float *dout, const uint16_t *out, float *preatt,
                                   float *att, const uint16_t *q, const uint16_t *k, const uint16_t *v, int stride,
                                   float p, int layer);

#endif

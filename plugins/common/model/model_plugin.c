/* The architecture vtable written once (model_plugin.h). */
#include "model_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_config.h"
#include "lmcore/hash.h"
#include "model_arena.h"

lm_status model_buffer_grow(lm_backend *be, void **buffer, size_t *capacity, size_t need, size_t element_size,
                            const char *what) {
    if (need <= *capacity) return LM_OK;
    if (*buffer) be->ops->free(be, *buffer);
    *buffer = NULL;
    *capacity = 0;
    LM_TRY(be->ops->alloc(be, buffer, need * element_size, what));
    *capacity = need;
    return LM_OK;
}

void model_destroy(void *self) {
    model_base *m = self;
    if (!m) return;
    if (m->arch->free_extra) m->arch->free_extra(m);
    if (m->backend) {
        if (m->act_memory) m->backend->ops->free(m->backend, m->act_memory);
        if (m->int_memory) m->backend->ops->free(m->backend, m->int_memory);
    }
    free(m->layer_acts);
    free(m->grads_ready_scratch);
    model_buffers_free(&m->buffers);
    param_table_free(&m->table);
    lm_backend_release(m->backend); /* destroyed now, or when the last optimizer bound to it lets go */
    free(m);
}

lm_status model_create(const model_arch *arch, void **self, lm_config *cfg) {
    *self = NULL;
    model_base *m = calloc(1, arch->model_size);
    if (!m) return lm_error_set(LM_ERR_NOMEM, "out of memory creating architecture '%s'", arch->name);
    m->arch = arch;
    lm_status status;
    LM_CHECK(arch->read_config(m, cfg));
    /* The backend first: pad_vocab_to_multiple_of=auto pads by its device. */
    LM_CHECK(model_device_create_backend(&m->device, arch->name, arch->label, &m->backend));
    m->vocab_rows = model_device_vocab_rows(&m->device, m->backend, m->limits.vocab_size);
    m->logits_bf16 = model_device_stores_bf16(m->device.logits_dtype, m->backend);
    m->activations_bf16 = model_device_stores_bf16(m->device.activation_dtype, m->backend);
    LM_CHECK(arch->declare_params(m));
    param_table_layout(&m->table);
    if (m->device.attention == MODEL_ATTENTION_SDPA && m->backend->device.type == LM_DEVICE_CUDA &&
        m->width / m->n_head > MODEL_ATTENTION_FUSED_MAX_HEAD_CUDA) {
        status = lm_error_set(LM_ERR_UNSUPPORTED, "architecture '%s': attn_implementation=sdpa on CUDA takes head "
                                                  "sizes up to %d, and this model's is %d (width %d / %d heads): use "
                                                  "attn_implementation=eager or auto",
                              arch->name, MODEL_ATTENTION_FUSED_MAX_HEAD_CUDA, (int)(m->width / m->n_head),
                              (int)m->width, (int)m->n_head);
        goto fail;
    }
    model_buffers_init(&m->buffers, m->backend, &m->table); /* allocated on first use */
    /* The bf16 GEMMs' weights: the head's (logits), the feed-forward and attention blocks' (activations). */
    m->buffers.with_bf16_copy = m->logits_bf16 || m->activations_bf16;
    snprintf(m->device_desc, sizeof m->device_desc, "%s", m->backend->ops->describe(m->backend));
    m->training = 1;
    *self = m;
    return LM_OK;
fail:
    model_destroy(m);
    return status;
}

lm_status model_info(void *self, lm_arch_info *out) {
    model_base *m = self;
    memset(out, 0, sizeof *out);
    out->model_type = m->arch->name;
    out->causal = m->arch->causal;
    out->uses_token_types = m->arch->uses_token_types;
    out->vocab_size = m->limits.vocab_size;
    out->max_positions = m->limits.max_positions;
    out->n_params = (int64_t)m->table.n_values; /* the padding rows are no parameters */
    out->device = m->device_desc;
    out->precision = hf_precision_name(m->backend->precision);
    return LM_OK;
}

/* In eval mode (a model loaded for inference) the gradients are not
 * allocated and `grads` stays NULL until the model is used for training:
 * a trainer or an optimizer asks in training mode, the default. */
lm_status model_parameters(void *self, lm_param_set *out) {
    model_base *m = self;
    LM_TRY(model_buffers_ensure_params(&m->buffers));
    if (m->training) LM_TRY(model_buffers_ensure_grads(&m->buffers));
    model_buffers_describe(&m->buffers, &m->table, out);
    return LM_OK;
}

lm_status model_set_training(void *self, int training) {
    ((model_base *)self)->training = training != 0;
    ((model_base *)self)->staged = NULL; /* staged for the other mode */
    return LM_OK;
}

lm_status model_hf_config(void *self, lm_buffer *out) {
    model_base *m = self;
    return m->arch->write_hf_config(m, out);
}

/* New weights: a saved forward, and whatever was computed from the old
 * weights (logits, a generation cache), no longer match them. */
lm_status model_params_written(void *self) {
    model_base *m = self;
    m->has_targets = 0;
    if (m->logits_valid) {
        m->logits_valid = 0;
        m->logits_gone = "the weights were replaced since the last forward: run forward again";
    }
    if (m->arch->weights_replaced) m->arch->weights_replaced(m);
    model_buffers_refresh_copy(&m->buffers); /* derived from the weights: rebuilt */
    return LM_OK;
}

/* Drawn on the host (param_table_init_host), so that the CPU and the GPU
 * start from the same weights; the gradients are zeroed. */
lm_status model_init_weights(void *self, uint64_t seed) {
    model_base *m = self;
    model_params_written(m);
    model_buffers *b = &m->buffers;
    lm_backend *be = m->backend;
    LM_TRY(model_buffers_ensure_params(b));
    char what[96];
    snprintf(what, sizeof what, "initial %s weights (host copy)", m->arch->label);
    float *host = NULL;
    LM_TRY(lm_alloc((void **)&host, b->n_params * sizeof(float), what));
    param_table_init_host(&m->table, host, seed);
    if (m->arch->adjust_initial_weights) m->arch->adjust_initial_weights(m, host);
    lm_status status = be->ops->upload(be, b->params, host, b->n_params * sizeof(float));
    lm_free(host); /* uploads are staged: the host copy may go at once */
    LM_TRY(status);
    model_buffers_refresh_copy(b);
    if (b->grads) be->ops->zero(be, b->grads, b->n_params * sizeof(float)); /* else zeroed when allocated */
    return be->ops->check(be);
}

/* attn_implementation for blocks of T tokens (model_device.h). */
static int attention_fused_for(const model_base *m, int T) {
    switch (m->device.attention) {
    case MODEL_ATTENTION_EAGER: return 0;
    case MODEL_ATTENTION_SDPA: return 1;
    case MODEL_ATTENTION_AUTO: break;
    }
    /* auto: the CPU keeps the eager attention (its trained numbers stay the
     * same to the bit); CUDA takes the fused one for long blocks. */
    return m->backend->device.type == LM_DEVICE_CUDA && T >= MODEL_ATTENTION_AUTO_MIN_T &&
           m->width / m->n_head <= MODEL_ATTENTION_FUSED_MAX_HEAD_CUDA;
}

/* Carves the activations and the batch arrays for (B, T), growing the two
 * allocations when the shape needs more (they never shrink, so alternating
 * batch shapes do not reallocate). */
static lm_status ensure_acts(model_base *m, int B, int T) {
    if (m->act_B == B && m->act_T == T) return LM_OK;
    const model_arch *arch = m->arch;
    lm_backend *be = m->backend;
    if (!m->layer_acts && m->n_layer > 0) {
        m->layer_acts = calloc((size_t)m->n_layer, arch->layer_acts_size);
        if (!m->layer_acts) return lm_error_set(LM_ERR_NOMEM, "out of memory for the %s layer table", arch->label);
    }
    m->act_B = m->act_T = 0;
    m->attention_fused = attention_fused_for(m, T);
    char what[96];
    snprintf(what, sizeof what, "%s activations for a batch of %d x %d tokens", arch->label, B, T);
    LM_TRY(model_buffer_grow(be, (void **)&m->act_memory, &m->act_capacity, arch->carve_acts(m, NULL, B, T),
                             sizeof(float), what));
    const size_t stride = model_arena_round((size_t)B * (size_t)T);
    snprintf(what, sizeof what, "%s batch ids", arch->label);
    /* The arrays, then the scored count (an int64: 2 int32s, 8-byte aligned
     * after arrays of multiples of 64). */
    const size_t arrays = (size_t)(2 + arch->extra_batch_arrays) * stride;
    LM_TRY(model_buffer_grow(be, (void **)&m->int_memory, &m->int_capacity, arrays + 2, sizeof(int32_t), what));
    m->ids = m->int_memory;
    m->key_mask_memory = m->int_memory + stride;
    m->extra_batch_ints = m->int_memory + 2 * stride;
    m->batch_ints_stride = stride;
    m->n_targets_device = (int64_t *)(void *)(m->int_memory + arrays);
    arch->carve_acts(m, m->act_memory, B, T);
    if (arch->acts_ready) LM_TRY(arch->acts_ready(m, B, T));
    m->act_B = B;
    m->act_T = T;
    return LM_OK;
}

/* The host half of a forward: the batch checked, the activations made for
 * its shape, its arrays uploaded (the architecture's own too).  Nothing
 * after it, until the forward's kernels, touches the host's batch. */
static lm_status stage_batch(model_base *m, const lm_batch *batch) {
    lm_backend *be = m->backend;
    int64_t n_targets = 0;
    m->staged = NULL;
    LM_TRY(model_batch_check(&m->limits, batch, &n_targets));
    LM_TRY(model_buffers_ensure_params(&m->buffers));
    LM_TRY(ensure_acts(m, batch->B, batch->T));
    const size_t id_bytes = (size_t)batch->B * (size_t)batch->T * sizeof(int32_t);
    LM_TRY(be->ops->upload(be, m->ids, batch->input_ids, id_bytes));
    if (batch->attention_mask) LM_TRY(be->ops->upload(be, m->key_mask_memory, batch->attention_mask, id_bytes));
    /* The loss ops read the count there (backend_ops.def): a kernel
     * argument would make it part of a captured graph. */
    if (batch->labels) LM_TRY(be->ops->upload(be, m->n_targets_device, &n_targets, sizeof n_targets));
    m->staged_signature_extra = 0;
    if (m->arch->upload_batch) LM_TRY(m->arch->upload_batch(m, batch, n_targets, &m->staged_signature_extra));
    m->staged = batch;
    return LM_OK;
}

/* What decides the kernels a forward and backward of the staged batch
 * queue, and their arguments: the shape, the arrays present, the mode, and
 * where the buffers are (a buffer that grew for a larger batch moved, and a
 * graph recorded before reads the old place).  Not the number of scored
 * labels: the loss ops read it on the device (n_targets_device), so batches
 * that differ only there share a graph. */
typedef struct staged_signature {
    int64_t B, T;
    int32_t has_mask, has_types, has_labels, training;
    const void *act_memory, *int_memory, *params, *grads;
    uint64_t arch_extra;
} staged_signature;

lm_status model_upload_batch(void *self, const lm_batch *batch, uint64_t *signature) {
    model_base *m = self;
    *signature = 0;
    if (!batch) { /* the caller ran the staged work another way (a graph replay): drop it */
        m->staged = NULL;
        return LM_OK;
    }
    LM_TRY(stage_batch(m, batch));
    staged_signature sig;
    memset(&sig, 0, sizeof sig); /* the padding too: the bytes are hashed */
    sig.B = batch->B;
    sig.T = batch->T;
    sig.has_mask = batch->attention_mask != NULL;
    sig.has_types = batch->token_type_ids != NULL;
    sig.has_labels = batch->labels != NULL;
    sig.training = m->training;
    sig.act_memory = m->act_memory;
    sig.int_memory = m->int_memory;
    sig.params = m->buffers.params;
    sig.grads = m->buffers.grads;
    sig.arch_extra = m->staged_signature_extra;
    *signature = lm_hash64(&sig, sizeof sig, 0x6c6d677261706831ull);
    return LM_OK;
}

/* forward and forward_train: fuse_loss says whether the loss gradient is
 * computed with the loss (at loss_scale). */
static lm_status run_forward(model_base *m, const lm_batch *batch, lm_step_state *state, int fuse_loss,
                             float loss_scale) {
    lm_backend *be = m->backend;
    m->has_targets = 0;
    m->logits_valid = 0;
    m->dlogits_ready = 0;
    /* A batch upload_batch staged is used once, by the forward right after
     * it; any other forward stages its batch now. */
    const int staged = batch && m->staged == batch;
    if (!staged) LM_TRY(stage_batch(m, batch));
    m->staged = NULL; /* used once */
    if (m->training && !state && m->dropout_configured)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': forward in training mode needs a step state (its "
                                            "dropout key); pass one, or set_training(0) for inference",
                            m->arch->name);
    m->key_mask = batch->attention_mask ? m->key_mask_memory : NULL;
    m->B = batch->B;
    m->T = batch->T;
    m->key = state;
    m->forward_fuses_loss = fuse_loss;
    m->fused_loss_scale = loss_scale;
    lm_status status = m->arch->forward(m, batch, state);
    m->forward_fuses_loss = 0;
    LM_TRY(status);
    m->logits_valid = !m->dlogits_ready;
    m->logits_gone = m->dlogits_ready ? "a training forward (forward_train) wrote the loss gradient over the "
                                        "logits: run forward (not forward_train) to read them"
                                      : NULL;
    if (batch->labels) m->has_targets = 1;
    return be->ops->check(be);
}

lm_status model_forward(void *self, const lm_batch *batch, lm_step_state *state) {
    return run_forward(self, batch, state, 0, 0.0f);
}

/* A forward that backward(loss_scale) will follow: the loss and its
 * gradient in one pass over the logits (the fused classifier), so backward
 * starts from dlogits and no softmax is computed twice. */
lm_status model_forward_train(void *self, const lm_batch *batch, lm_step_state *state, float loss_scale) {
    model_base *m = self;
    if (!batch || !batch->labels) {
        m->has_targets = 0;
        m->logits_valid = 0;
        m->logits_gone = "the last forward_train failed: run forward again";
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': forward_train needs a batch with labels (it computes "
                                            "the loss and its gradient); use forward for inference",
                            m->arch->name);
    }
    return run_forward(m, batch, state, 1, loss_scale);
}

void model_forward_loss(model_base *m, float *losses, void *logits, const int32_t *labels, int rows,
                        lm_step_state *state) {
    lm_backend *be = m->backend;
    const int V = m->limits.vocab_size, stride = m->vocab_rows;
    if (m->logits_bf16) {
        if (m->forward_fuses_loss) {
            be->ops->crossentropy_forward_backward_bf16(be, losses, logits, labels, m->fused_loss_scale,
                                                        m->n_targets_device, rows, V, stride);
            m->dlogits_ready = 1;
        } else {
            be->ops->crossentropy_forward_bf16(be, losses, logits, labels, rows, V, stride);
        }
    } else if (m->forward_fuses_loss) {
        /* The dloss backward would compute: the same float expression, on the device. */
        be->ops->crossentropy_forward_backward(be, losses, logits, labels, m->fused_loss_scale, m->n_targets_device,
                                               rows, V, stride);
        m->dlogits_ready = 1;
    } else {
        be->ops->crossentropy_forward(be, losses, logits, labels, rows, V, stride);
    }
    if (state) be->ops->loss_mean(be, &state->loss, losses, (size_t)rows, m->n_targets_device);
}

void model_loss_backward(model_base *m, void *logits, const int32_t *labels, int rows, float loss_scale) {
    if (m->dlogits_ready) return;
    lm_backend *be = m->backend;
    if (m->logits_bf16)
        be->ops->crossentropy_backward_bf16(be, logits, logits, labels, loss_scale, m->n_targets_device, rows,
                                            m->limits.vocab_size, m->vocab_rows);
    else
        be->ops->crossentropy_backward(be, logits, logits, labels, loss_scale, m->n_targets_device, rows,
                                       m->limits.vocab_size, m->vocab_rows);
}

lm_status model_backward(void *self, float loss_scale, int accumulate) {
    model_base *m = self;
    if (!m->has_targets)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': backward needs a forward with labels first (and "
                                            "runs once per forward)",
                            m->arch->name);
    /* Bits, not ==: a -0 scale is another gradient, and NaN must not pass. */
    if (m->dlogits_ready && memcmp(&loss_scale, &m->fused_loss_scale, sizeof loss_scale) != 0)
        return lm_error_set(LM_ERR_INVALID, "architecture '%s': backward(loss_scale=%g) after forward_train(loss_scale="
                                            "%g), which computed the loss gradient already: pass backward the same "
                                            "loss_scale, or run forward instead of forward_train",
                            m->arch->name, (double)loss_scale, (double)m->fused_loss_scale);
    m->has_targets = 0;
    m->logits_valid = 0;
    m->logits_gone = NULL;
    LM_TRY(model_buffers_ensure_grads(&m->buffers)); /* a pointer test after the first backward */
    /* The first micro-batch writes its gradients (no memset of the buffer:
     * 124M floats at GPT-2 124M); the others add. */
    const lm_grad_store grads = accumulate ? LM_GRAD_ADD : LM_GRAD_WRITE;
    model_buffers_prepare_grads(&m->buffers, grads);
    m->grads_final_from = m->table.count;
    m->arch->backward(m, loss_scale, grads);
    model_grads_final_from(m, 0); /* whatever the architecture did not report: all of it is final now */
    m->dlogits_ready = 0;
    lm_status status = m->backend->ops->check(m->backend);
    if (status != LM_OK) lm_error_prefix("architecture '%s' backward: ", m->arch->name);
    return status;
}

void model_grads_zero_tensor(model_base *m, int index) {
    m->backend->ops->zero(m->backend, model_tensor(m, m->buffers.grads, index),
                          m->table.descs[index].storage * sizeof(float));
}

lm_status model_set_grads_ready(void *self, lm_grads_ready_fn fn, void *user) {
    model_base *m = self;
    if (fn && !m->grads_ready_scratch) {
        m->grads_ready_scratch = malloc((m->table.count ? m->table.count : 1) * sizeof *m->grads_ready_scratch);
        if (!m->grads_ready_scratch)
            return lm_error_set(LM_ERR_NOMEM, "architecture '%s': out of memory for the gradients-ready ranges",
                                m->arch->name);
    }
    m->grads_ready = fn;
    m->grads_ready_user = fn ? user : NULL;
    return LM_OK;
}

/* Tensors [first, grads_final_from) in declaration order are spread over
 * the flat buffer (decayed matrices first, then the vectors): reported as
 * the fewest ranges, each a run of tensors adjacent in the buffer (a
 * transformer layer gives two: its matrices and its vectors). */
void model_grads_report(model_base *m, size_t first_tensor) {
    if (first_tensor >= m->grads_final_from) return;
    const lm_param_desc *d = m->table.descs;
    size_t *idx = m->grads_ready_scratch, n = 0;
    for (size_t i = first_tensor; i < m->grads_final_from; i++) {
        /* insertion by offset: a layer has a dozen tensors */
        size_t j = n++;
        while (j > 0 && d[idx[j - 1]].offset > d[i].offset) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    m->grads_final_from = first_tensor;
    size_t start = d[idx[0]].offset, end = start + d[idx[0]].storage;
    for (size_t k = 1; k < n; k++) {
        if (d[idx[k]].offset != end) {
            m->grads_ready(m->grads_ready_user, start, end - start);
            start = d[idx[k]].offset;
        }
        end = d[idx[k]].offset + d[idx[k]].storage;
    }
    m->grads_ready(m->grads_ready_user, start, end - start);
}

/* Flat-buffer parameter tables for architecture plugins (GPT-2, BERT).
 *
 * A model declares its tensors once, in Hugging Face order and with Hugging
 * Face names, each with its shape, whether AdamW decays it, and how it is
 * initialised.  param_table_layout() then places every weight-decayed tensor
 * first and the others after, so that an optimizer can update the flat
 * buffers in two ranges: [0, n_decay) with weight decay, [n_decay,
 * n_params) without.
 *
 * model_buffers_* own the two flat buffers (parameters and gradients) on a
 * backend (host memory for the CPU, device memory for CUDA) and implement
 * the parameters slot (model_plugin.c implements the others).  The
 * optimizer and its state live in optimizer plugins.
 *
 * Plugin-internal (hidden visibility): not part of the lmcore API. */
#ifndef LM_PLUGIN_COMMON_MODEL_PARAMS_H
#define LM_PLUGIN_COMMON_MODEL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "lmcore/architecture.h"
#include "lmcore/status.h"

typedef enum param_init_kind {
    PARAM_INIT_NORMAL = 0, /* N(0, std²) from lm_rng_normal */
    PARAM_INIT_ZEROS = 1,
    PARAM_INIT_ONES = 2
} param_init_kind;

typedef struct param_table {
    lm_param_desc *descs;   /* count entries, in declaration (Hugging Face) order */
    param_init_kind *inits; /* parallel to descs */
    float *init_stds;       /* parallel to descs, for PARAM_INIT_NORMAL */
    size_t count, cap;
    size_t n_decay;  /* floats in the weight-decayed prefix of the buffers */
    size_t n_params; /* floats in each flat buffer */
    size_t n_values; /* floats the tensors hold: n_params less the padding rows (param_table_pad_rows) */
} param_table;

/* Append a tensor named by the printf-style name_fmt.  Offsets are assigned
 * by param_table_layout() once every tensor is declared.  The two kinds a
 * transformer has, weight decay as the Hugging Face Trainer applies it: a
 * matrix (a Linear or Embedding weight) is decayed and drawn from
 * N(0, init_std²); a vector (a bias, a LayerNorm weight) is not decayed and
 * starts as zeros or ones. */
lm_status param_table_add_matrix(param_table *t, float init_std, int64_t rows, int64_t cols, const char *name_fmt,
                                 ...) LM_PRINTF(5, 6);
lm_status param_table_add_vector(param_table *t, param_init_kind init, int64_t size, const char *name_fmt, ...)
    LM_PRINTF(4, 5);
/* Gives the last tensor declared `rows` rows in the flat buffers (its
 * storage, lm_param_desc.storage) while its shape keeps shape[0]: the rows
 * after shape[0] are padding, zero from the allocation, never initialised,
 * saved or loaded (everything outside the model sees the shape), and
 * stepped by the optimizer with the tensor (their gradient must be written
 * 0, so they stay 0).  The vocabulary padded inside the model
 * (pad_vocab_to_multiple_of) is the one use. */
void param_table_pad_rows(param_table *t, int64_t rows);
/* Places decayed tensors first (in declaration order), then the others,
 * each taking its storage. */
void param_table_layout(param_table *t);
/* The tensor called `name`, or NULL. */
const lm_param_desc *param_table_find(const param_table *t, const char *name);
int64_t param_desc_numel(const lm_param_desc *d);
void param_table_free(param_table *t);

/* Fills a host buffer of n_params floats with the initial values: tensor i
 * (declaration index) element j gets std * lm_rng_normal(seed,
 * LM_RNG_STREAM_INIT + (i << 16), j), or 0 / 1.  Pure function of the seed,
 * so the CPU and the GPU start from the same weights. */
void param_table_init_host(const param_table *t, float *host, uint64_t seed);

/* Elements [begin, end) of the flat buffers. */
typedef struct param_range {
    size_t begin, end;
} param_range;

/* The ranges of [0, n_params) that hold no tensor's elements: gaps between
 * tensors' [offset, offset + numel) and rows padding a tensor's storage
 * beyond shape[0] (nothing assumes the descriptors tile the buffer).  In
 * offset order; returns how many there are, and fills the first `cap` of
 * them into `out` (out may be NULL when cap is 0). */
size_t param_table_uncovered(const param_table *t, size_t n_params, param_range *out, size_t cap);

typedef struct model_buffers {
    lm_backend *backend;       /* not owned */
    const param_table *table;  /* not owned: the model's, final when the buffers are initialised */
    float *params, *grads;
    /* The BF16 copy of the whole parameter buffer (lm_param_set.params_copy)
     * when the model asks for one (model_buffers_init's with_bf16_copy:
     * logits_dtype=bf16 or activation_dtype=bf16, whose GEMMs read their
     * weights there: set
     * with_bf16_copy after model_buffers_init), allocated with params; NULL
     * otherwise.  Rebuilt from params by
     * model_buffers_refresh_copy, and by the optimizer after each update. */
    uint16_t *params_copy;
    int with_bf16_copy;
    size_t n_params, n_decay;
    /* The ranges no backward op writes (param_table_uncovered), found when
     * the gradients are allocated: zeroed before a backward that writes. */
    param_range *uncovered;
    size_t n_uncovered;
} model_buffers;

/* Buffers are allocated on first use, not when the model is created: a
 * model being loaded has its config.json checked against the weights file
 * before anything big exists, and a model used only for inference never
 * allocates gradients (their memory is the size of the parameters'). */
void model_buffers_init(model_buffers *b, lm_backend *backend, const param_table *t);
/* Allocate (zeroed) on the first call; later calls do nothing.  The BF16
 * copy, when there is one, comes with the parameters. */
lm_status model_buffers_ensure_params(model_buffers *b);
lm_status model_buffers_ensure_grads(model_buffers *b);
void model_buffers_free(model_buffers *b);
/* The parameters slot: the buffers, the table's descriptors, the device. */
void model_buffers_describe(const model_buffers *b, const param_table *t, lm_param_set *out);
/* Before a backward.  `store` LM_GRAD_WRITE (backward(accumulate = 0)):
 * the architecture's backward writes every tensor's gradient, each by its
 * first writer (kernels/backend_ops.def), so no whole-buffer memset runs;
 * only the elements outside every tensor (the uncovered ranges) are zeroed
 * here, which keeps the whole buffer the gradient, as a memset then adding
 * made it.  LM_GRAD_ADD: nothing (the backward adds). */
void model_buffers_prepare_grads(model_buffers *b, lm_grad_store store);
/* params_copy = bf16(params), queued on the device (convert_to_bf16); a
 * no-op without a copy or before the parameters exist.  After the host
 * wrote the parameters: initialisation, loading, resuming. */
void model_buffers_refresh_copy(model_buffers *b);

#endif

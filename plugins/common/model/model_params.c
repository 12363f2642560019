/* Flat-buffer parameter tables: see model_params.h. */
#include "model_params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/rng.h"
#include "lmcore/tensor.h"

int64_t param_desc_numel(const lm_param_desc *d) {
    int64_t n = 1;
    for (int32_t i = 0; i < d->ndim; i++) n *= d->shape[i];
    return n;
}

static lm_status add_tensor(param_table *t, int weight_decay, param_init_kind init, float init_std, int ndim,
                            const int64_t *shape, const char *name_fmt, va_list ap) {
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        lm_param_desc *descs = realloc(t->descs, cap * sizeof *descs);
        if (!descs) return lm_error_set(LM_ERR_NOMEM, "out of memory for the parameter table");
        t->descs = descs;
        param_init_kind *inits = realloc(t->inits, cap * sizeof *inits);
        if (!inits) return lm_error_set(LM_ERR_NOMEM, "out of memory for the parameter table");
        t->inits = inits;
        float *stds = realloc(t->init_stds, cap * sizeof *stds);
        if (!stds) return lm_error_set(LM_ERR_NOMEM, "out of memory for the parameter table");
        t->init_stds = stds;
        t->cap = cap;
    }
    char name[256];
    int len = vsnprintf(name, sizeof name, name_fmt, ap);
    if (len < 0 || (size_t)len >= sizeof name) return lm_error_set(LM_ERR_INTERNAL, "parameter name too long");
    char *owned = malloc((size_t)len + 1);
    if (!owned) return lm_error_set(LM_ERR_NOMEM, "out of memory for the parameter table");
    memcpy(owned, name, (size_t)len + 1);

    lm_param_desc *d = &t->descs[t->count];
    memset(d, 0, sizeof *d);
    d->name = owned;
    d->ndim = ndim;
    for (int i = 0; i < ndim; i++) d->shape[i] = shape[i];
    d->weight_decay = weight_decay;
    d->storage = (size_t)param_desc_numel(d);
    t->inits[t->count] = init;
    t->init_stds[t->count] = init_std;
    t->count++;
    return LM_OK;
}

lm_status param_table_add_matrix(param_table *t, float init_std, int64_t rows, int64_t cols, const char *name_fmt,
                                 ...) {
    const int64_t shape[2] = {rows, cols};
    va_list ap;
    va_start(ap, name_fmt);
    lm_status status = add_tensor(t, 1, PARAM_INIT_NORMAL, init_std, 2, shape, name_fmt, ap);
    va_end(ap);
    return status;
}

lm_status param_table_add_vector(param_table *t, param_init_kind init, int64_t size, const char *name_fmt, ...) {
    va_list ap;
    va_start(ap, name_fmt);
    lm_status status = add_tensor(t, 0, init, 0.0f, 1, &size, name_fmt, ap);
    va_end(ap);
    return status;
}

void param_table_pad_rows(param_table *t, int64_t rows) {
    if (t->count == 0) return;
    lm_param_desc *d = &t->descs[t->count - 1];
    if (rows <= d->shape[0]) return;
    d->storage = (size_t)(param_desc_numel(d) / d->shape[0] * rows);
}

void param_table_layout(param_table *t) {
    size_t offset = 0;
    t->n_values = 0;
    for (int pass = 1; pass >= 0; pass--) {
        for (size_t i = 0; i < t->count; i++) {
            if ((t->descs[i].weight_decay != 0) != (pass == 1)) continue;
            t->descs[i].offset = offset;
            offset += t->descs[i].storage;
            t->n_values += (size_t)param_desc_numel(&t->descs[i]);
        }
        if (pass == 1) t->n_decay = offset;
    }
    t->n_params = offset;
}

const lm_param_desc *param_table_find(const param_table *t, const char *name) {
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->descs[i].name, name) == 0) return &t->descs[i];
    return NULL;
}

void param_table_free(param_table *t) {
    for (size_t i = 0; i < t->count; i++) free((char *)t->descs[i].name);
    free(t->descs);
    free(t->inits);
    free(t->init_stds);
    memset(t, 0, sizeof *t);
}

void param_table_init_host(const param_table *t, float *host, uint64_t seed) {
    for (size_t i = 0; i < t->count; i++) {
        float *dst = host + t->descs[i].offset;
        int64_t n = param_desc_numel(&t->descs[i]);
        uint64_t stream = (uint64_t)LM_RNG_STREAM_INIT + ((uint64_t)i << 16);
        float std = t->init_stds[i];
        switch (t->inits[i]) {
        case PARAM_INIT_NORMAL:
#pragma omp parallel for schedule(static)
            for (int64_t j = 0; j < n; j++) dst[j] = std * lm_rng_normal(seed, stream, (uint64_t)j);
            break;
        case PARAM_INIT_ONES:
            for (int64_t j = 0; j < n; j++) dst[j] = 1.0f;
            break;
        case PARAM_INIT_ZEROS:
            memset(dst, 0, (size_t)n * sizeof *dst);
            break;
        }
    }
}

size_t param_table_uncovered(const param_table *t, size_t n_params, param_range *out, size_t cap) {
    /* A sweep from 0: past the tensor that holds `at`, or else to the next
     * tensor's start (a gap).  Quadratic in the tensor count, which is a few
     * hundred, once per model: no sorting buffer to allocate. */
    size_t count = 0, at = 0;
    while (at < n_params) {
        size_t next = n_params; /* where the next tensor after `at` starts */
        int inside = 0;
        for (size_t i = 0; i < t->count && !inside; i++) {
            const size_t begin = t->descs[i].offset, end = begin + (size_t)param_desc_numel(&t->descs[i]);
            if (begin <= at && at < end) {
                at = end;
                inside = 1;
            } else if (begin > at && begin < next) {
                next = begin;
            }
        }
        if (inside) continue;
        if (count < cap) out[count] = (param_range){at, next};
        count++;
        at = next;
    }
    return count;
}

void model_buffers_init(model_buffers *b, lm_backend *backend, const param_table *t) {
    memset(b, 0, sizeof *b);
    b->backend = backend;
    b->table = t;
    b->n_params = t->n_params;
    b->n_decay = t->n_decay;
}

lm_status model_buffers_ensure_params(model_buffers *b) {
    if (b->params) return LM_OK;
    /* The copy first: params is what says both exist. */
    if (b->with_bf16_copy && !b->params_copy)
        LM_TRY(b->backend->ops->alloc(b->backend, (void **)&b->params_copy, b->n_params * sizeof(uint16_t),
                                      "the BF16 copy of the model parameters (logits_dtype or activation_dtype bf16)"));
    return b->backend->ops->alloc(b->backend, (void **)&b->params, b->n_params * sizeof(float), "model parameters");
}

void model_buffers_refresh_copy(model_buffers *b) {
    if (b->params_copy && b->params) b->backend->ops->convert_to_bf16(b->backend, b->params_copy, b->params, b->n_params);
}

lm_status model_buffers_ensure_grads(model_buffers *b) {
    if (b->grads) return LM_OK;
    /* The ranges no tensor holds, once (an earlier call may have found them
     * and then failed to allocate the gradients). */
    const size_t n = param_table_uncovered(b->table, b->n_params, NULL, 0);
    if (n > 0 && !b->uncovered) {
        b->uncovered = malloc(n * sizeof *b->uncovered);
        if (!b->uncovered) return lm_error_set(LM_ERR_NOMEM, "out of memory for the gradient buffer's gaps");
        b->n_uncovered = param_table_uncovered(b->table, b->n_params, b->uncovered, n);
    }
    return b->backend->ops->alloc(b->backend, (void **)&b->grads, b->n_params * sizeof(float),
                                  "parameter gradients");
}

void model_buffers_free(model_buffers *b) {
    if (!b->backend) return; /* never initialised */
    if (b->params) b->backend->ops->free(b->backend, b->params);
    if (b->grads) b->backend->ops->free(b->backend, b->grads);
    if (b->params_copy) b->backend->ops->free(b->backend, b->params_copy);
    free(b->uncovered);
    memset(b, 0, sizeof *b);
}

void model_buffers_describe(const model_buffers *b, const param_table *t, lm_param_set *out) {
    memset(out, 0, sizeof *out);
    out->struct_size = (uint32_t)sizeof *out;
    out->grad_dtype = LM_F32;
    out->device = &b->backend->device;
    out->descs = t->descs;
    out->n_descs = t->count;
    out->n_params = b->n_params;
    out->params = b->params;
    out->grads = b->grads;
    out->params_copy = b->params_copy;
    out->copy_dtype = b->params_copy ? LM_BF16 : LM_F32;
}

void model_buffers_prepare_grads(model_buffers *b, lm_grad_store store) {
    if (store != LM_GRAD_WRITE) return;
    for (size_t i = 0; i < b->n_uncovered; i++) {
        const param_range r = b->uncovered[i];
        b->backend->ops->zero(b->backend, b->grads + r.begin, (r.end - r.begin) * sizeof(float));
    }
}

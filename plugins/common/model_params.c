/* Flat-buffer parameter tables: see model_params.h. */
#include "model_params.h"

#include <math.h>
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

lm_status param_table_add(param_table *t, int weight_decay, param_init_kind init, float init_std, int ndim,
                          const int64_t *shape, const char *name_fmt, ...) {
    if (ndim < 1 || ndim > 4) return lm_error_set(LM_ERR_INTERNAL, "parameter with %d dimensions", ndim);
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
    va_list ap;
    va_start(ap, name_fmt);
    int len = vsnprintf(name, sizeof name, name_fmt, ap);
    va_end(ap);
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
    t->inits[t->count] = init;
    t->init_stds[t->count] = init_std;
    t->count++;
    return LM_OK;
}

void param_table_layout(param_table *t) {
    size_t offset = 0;
    for (int pass = 1; pass >= 0; pass--) {
        for (size_t i = 0; i < t->count; i++) {
            if ((t->descs[i].weight_decay != 0) != (pass == 1)) continue;
            t->descs[i].offset = offset;
            offset += (size_t)param_desc_numel(&t->descs[i]);
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

lm_status model_buffers_alloc(model_buffers *b, lm_backend *backend, const param_table *t) {
    memset(b, 0, sizeof *b);
    b->backend = backend;
    b->n_params = t->n_params;
    b->n_decay = t->n_decay;
    size_t bytes = t->n_params * sizeof(float);
    const lm_backend_ops *ops = backend->ops;
    lm_status status;
    LM_CHECK(ops->alloc(backend, (void **)&b->params, bytes, "model parameters"));
    LM_CHECK(ops->alloc(backend, (void **)&b->grads, bytes, "parameter gradients"));
    LM_CHECK(ops->alloc(backend, (void **)&b->adam_m, bytes, "AdamW first moments"));
    LM_CHECK(ops->alloc(backend, (void **)&b->adam_v, bytes, "AdamW second moments"));
    return LM_OK;
fail:
    model_buffers_free(b);
    return status;
}

void model_buffers_free(model_buffers *b) {
    if (!b->backend) return;
    float *all[4] = {b->params, b->grads, b->adam_m, b->adam_v};
    for (int i = 0; i < 4; i++)
        if (all[i]) b->backend->ops->free(b->backend, all[i]);
    memset(b, 0, sizeof *b);
}

lm_status model_buffers_init_weights(model_buffers *b, const param_table *t, uint64_t seed) {
    float *host = NULL;
    LM_TRY(lm_alloc((void **)&host, b->n_params * sizeof(float), "initial weights (host copy)"));
    param_table_init_host(t, host, seed);
    lm_status status = model_buffers_write(b, LM_BUFFER_PARAMS, host);
    lm_free(host);
    LM_TRY(status);
    size_t bytes = b->n_params * sizeof(float);
    b->backend->ops->zero(b->backend, b->grads, bytes);
    b->backend->ops->zero(b->backend, b->adam_m, bytes);
    b->backend->ops->zero(b->backend, b->adam_v, bytes);
    return b->backend->ops->check(b->backend);
}

static float *buffer_of(model_buffers *b, lm_param_buffer which) {
    switch (which) {
    case LM_BUFFER_PARAMS: return b->params;
    case LM_BUFFER_GRADS: return b->grads;
    case LM_BUFFER_ADAM_M: return b->adam_m;
    case LM_BUFFER_ADAM_V: return b->adam_v;
    }
    return NULL;
}

lm_status model_buffers_read(model_buffers *b, lm_param_buffer which, float *dst) {
    float *src = buffer_of(b, which);
    if (!src || !dst) return lm_error_set(LM_ERR_INVALID, "read_buffer: unknown buffer %d or NULL destination", which);
    return b->backend->ops->download(b->backend, dst, src, b->n_params * sizeof(float));
}

lm_status model_buffers_write(model_buffers *b, lm_param_buffer which, const float *src) {
    float *dst = buffer_of(b, which);
    if (!dst || !src) return lm_error_set(LM_ERR_INVALID, "write_buffer: unknown buffer %d or NULL source", which);
    return b->backend->ops->upload(b->backend, dst, src, b->n_params * sizeof(float));
}

lm_status model_buffers_zero_grad(model_buffers *b) {
    b->backend->ops->zero(b->backend, b->grads, b->n_params * sizeof(float));
    return b->backend->ops->check(b->backend);
}

lm_status model_buffers_grad_norm(model_buffers *b, float *norm) {
    double sum = 0.0;
    LM_TRY(b->backend->ops->sum_squares_to_host(b->backend, b->grads, b->n_params, &sum));
    if (!isfinite(sum))
        return lm_error_set(LM_ERR_NUMERIC, "the gradient norm is not finite (%g): the loss diverged; lower the "
                                            "learning rate or check the data", sum);
    *norm = (float)sqrt(sum);
    return LM_OK;
}

lm_status model_buffers_adamw(model_buffers *b, const lm_optim_params *p) {
    if (p->t < 1) return lm_error_set(LM_ERR_INVALID, "optimizer_step: the step count t must start at 1, got %lld",
                                      (long long)p->t);
    lm_backend *be = b->backend;
    if (b->n_decay > 0)
        be->ops->adamw(be, b->params, b->grads, b->adam_m, b->adam_v, b->n_decay, p->lr, p->beta1, p->beta2, p->eps,
                       p->weight_decay, p->grad_scale, p->t);
    size_t rest = b->n_params - b->n_decay;
    if (rest > 0)
        be->ops->adamw(be, b->params + b->n_decay, b->grads + b->n_decay, b->adam_m + b->n_decay,
                       b->adam_v + b->n_decay, rest, p->lr, p->beta1, p->beta2, p->eps, 0.0f, p->grad_scale, p->t);
    return be->ops->check(be);
}

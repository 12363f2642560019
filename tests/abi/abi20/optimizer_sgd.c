/* An optimizer plugin compiled against the frozen ABI 2.0 headers
 * (tests/abi/include-2.0): every later 2.x core must load and run it
 * unchanged (tests/abi/test_abi_compat.c).  It reads what an optimizer
 * reads through the ABI — lm_param_set and its descriptors, the model's
 * lm_device and its operations, the step state — so a layout change in
 * any of them shows up as wrong numbers.
 *
 * torch.optim.SGD with momentum and (coupled) weight decay, on CPU devices:
 *   g = grad * clip_scale (+ weight_decay * param where the tensor decays)
 *   buf = g on the first update, momentum * buf + g after
 *   param -= lr * buf
 * and nothing at all once state->bad_step is set. */
#include <stdlib.h>
#include <string.h>

#include <lmcore/lmcore.h>

#if LM_ABI_MAJOR != 2 || LM_ABI_MINOR != 0
#error "tests/abi/abi20 must be built against tests/abi/include-2.0"
#endif

typedef struct sgd {
    double momentum, weight_decay;
    lm_param_set params; /* a copy of what bind() was given */
    float *buf;          /* momentum buffer, device memory, n_params floats */
    const lm_step_state *state;
} sgd;

static lm_status sgd_create(void **self, lm_config *cfg) {
    sgd *o = calloc(1, sizeof *o);
    if (!o) return lm_error_set(LM_ERR_NOMEM, "optimizer 'abi20_sgd': out of memory");
    o->momentum = lm_config_number(cfg, "momentum", 0.9);
    o->weight_decay = lm_config_number(cfg, "weight_decay", 0.0);
    *self = o;
    return LM_OK;
}

/* The device may outlive the model (whoever closes first): free the state,
 * then drop the hold bind() took. */
static void sgd_destroy(void *self) {
    sgd *o = self;
    if (o->buf) {
        lm_device *dev = o->params.device;
        dev->ops->free(dev, o->buf);
        dev->ops->release(dev);
    }
    free(o);
}

/* A device operation the device's build has: struct_size says which. */
#define HAS_OP(ops, slot) ((ops)->struct_size >= offsetof(lm_device_ops, slot) + sizeof(void *) && (ops)->slot)

static lm_status sgd_bind(void *self, const lm_param_set *params) {
    sgd *o = self;
    if (params->struct_size < sizeof(lm_param_set))
        return lm_error_set(LM_ERR_UNSUPPORTED, "optimizer 'abi20_sgd': lm_param_set of %u bytes", params->struct_size);
    if (params->grad_dtype != LM_F32)
        return lm_error_set(LM_ERR_UNSUPPORTED, "optimizer 'abi20_sgd': F32 gradients only, not %s",
                            lm_dtype_name((lm_dtype)params->grad_dtype));
    const lm_device *dev = params->device;
    if (dev->type != LM_DEVICE_CPU || !HAS_OP(dev->ops, parallel_for))
        return lm_error_set(LM_ERR_UNSUPPORTED, "optimizer 'abi20_sgd': runs on the CPU only, not on %s",
                            dev->description);
    LM_TRY(dev->ops->alloc(params->device, (void **)&o->buf, params->n_params * sizeof(float), "SGD momentum"));
    o->params = *params;
    dev->ops->retain(params->device); /* the state lives on it until destroy */
    return LM_OK;
}

typedef struct sgd_range {
    sgd *o;
    size_t offset;
    float lr, clip, decay;
    int first;
} sgd_range;

static void sgd_task(void *ctx, long begin, long end) {
    const sgd_range *r = ctx;
    float *p = r->o->params.params + r->offset, *b = r->o->buf + r->offset;
    const float *g = (const float *)r->o->params.grads + r->offset;
    const float momentum = (float)r->o->momentum;
    for (long i = begin; i < end; i++) {
        float d = g[i] * r->clip + r->decay * p[i];
        b[i] = r->first ? d : momentum * b[i] + d;
        p[i] -= r->lr * b[i];
    }
}

static lm_status sgd_step(void *self, const lm_step_state *state) {
    sgd *o = self;
    if (!o->buf) return lm_error_set(LM_ERR_INVALID, "optimizer 'abi20_sgd': step before bind");
    /* CPU device memory is host memory: the state can be read in place. */
    if (state->bad_step != 0) return LM_OK;
    lm_device *dev = o->params.device;
    for (size_t t = 0; t < o->params.n_descs; t++) {
        const lm_param_desc *desc = &o->params.descs[t];
        sgd_range r = {o, desc->offset, (float)state->lr, state->clip_scale,
                       desc->weight_decay ? (float)o->weight_decay : 0.0f, state->step == 0};
        dev->ops->parallel_for(dev, (long)desc->storage, 1024, sgd_task, &r);
    }
    return LM_OK;
}

static lm_status sgd_state_count(void *self, size_t *n) {
    *n = ((sgd *)self)->buf ? 1 : 0;
    return LM_OK;
}

static lm_status sgd_state_at(void *self, size_t index, lm_optimizer_state *out) {
    sgd *o = self;
    if (!o->buf || index != 0) return lm_error_set(LM_ERR_INVALID, "optimizer 'abi20_sgd': no state %zu", index);
    memset(out, 0, sizeof *out);
    out->name = "momentum_buffer";
    out->data = o->buf;
    out->count = o->params.n_params;
    out->per_parameter = 1;
    return LM_OK;
}

static lm_status sgd_settings_json(void *self, lm_buffer *out) {
    sgd *o = self;
    return lm_buffer_appendf(out, "\"momentum\": %.17g, \"weight_decay\": %.17g", o->momentum, o->weight_decay);
}

static const lm_optimizer_vtable sgd_vtable = {
    .create = sgd_create,
    .destroy = sgd_destroy,
    .bind = sgd_bind,
    .step = sgd_step,
    .state_count = sgd_state_count,
    .state_at = sgd_state_at,
    .settings_json = sgd_settings_json,
};
LM_PLUGIN_DEFINE(LM_KIND_OPTIMIZER, "abi20_sgd", "2.0.0", "SGD with momentum on the CPU, for ABI 2.0 (tests/abi)",
                 lm_optimizer_vtable, sgd_vtable)

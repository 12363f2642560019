/* The sgd optimizer plugin: torch.optim.SGD (single-tensor path), with
 * momentum, dampening, L2 weight decay added to the gradient of the tensors
 * whose lm_param_desc.weight_decay is set, and Nesterov momentum; maximize
 * is not supported.
 *
 * Settings (torch's defaults): momentum 0, dampening 0, weight_decay 0,
 * nesterov false.  State: "momentum_buffer", per parameter, only with
 * momentum (torch keeps none without). */
#include <math.h>
#include <stdlib.h>

#include "lmcore/plugin.h"
#include "sgd.h"

typedef struct sgd_optimizer {
    double momentum, dampening, weight_decay; /* as given, for settings_json */
    int nesterov;
    sgd_hparams h; /* as the update uses them */
    lm_opt_params params;
    float *momentum_buffer; /* NULL without momentum */
} sgd_optimizer;

static lm_status sgd_create(void **self, lm_config *cfg) {
    sgd_optimizer *o = calloc(1, sizeof *o);
    if (!o) return lm_error_set(LM_ERR_NOMEM, "optimizer 'sgd': out of memory");
    lm_status status = lm_opt_number(cfg, "sgd", "momentum", 0.0, 0.0, 0, INFINITY, 0, &o->momentum);
    if (status == LM_OK) status = lm_opt_number(cfg, "sgd", "dampening", 0.0, 0.0, 0, 1.0, 1, &o->dampening);
    if (status == LM_OK)
        status = lm_opt_number(cfg, "sgd", "weight_decay", 0.0, 0.0, 0, INFINITY, 0, &o->weight_decay);
    o->nesterov = lm_config_bool(cfg, "nesterov", 0);
    /* Read so that it is refused with a reason rather than as an unknown key. */
    const int maximize = lm_config_bool(cfg, "maximize", 0);
    if (status == LM_OK && maximize)
        status = lm_error_set(LM_ERR_UNSUPPORTED, "optimizer 'sgd': config key 'maximize' is not supported (it "
                                                  "minimises the loss, as torch does by default)");
    /* torch.optim.SGD's own rule. */
    if (status == LM_OK && o->nesterov && (o->momentum <= 0.0 || o->dampening != 0.0))
        status = lm_error_set(LM_ERR_INVALID, "optimizer 'sgd': nesterov needs momentum > 0 and dampening 0 (got "
                                              "momentum %g, dampening %g)",
                              o->momentum, o->dampening);
    if (status != LM_OK) {
        free(o);
        return status;
    }
    o->h = (sgd_hparams){(float)o->momentum, (float)(1.0 - o->dampening), (float)o->weight_decay, o->nesterov};
    *self = o;
    return LM_OK;
}

static void sgd_destroy(void *self) {
    sgd_optimizer *o = self;
    if (!o) return;
    lm_opt_free_state(&o->params, o->momentum_buffer);
    lm_opt_release(&o->params);
    free(o);
}

static int has_buffer(const sgd_optimizer *o) { return o->momentum != 0.0; }

static lm_status sgd_bind(void *self, const lm_param_set *params) {
    sgd_optimizer *o = self;
    const lm_opt_state_slot state[] = {{&o->momentum_buffer, "SGD's momentum_buffer"}};
    return lm_opt_bind_with_state(&o->params, "sgd", params, state, has_buffer(o) ? 1 : 0);
}

static lm_status sgd_step(void *self, const lm_step_state *state) {
    sgd_optimizer *o = self;
    LM_TRY(lm_opt_check_step(&o->params, "sgd", state));
#if defined(LM_OPT_HAVE_CUDA)
    if (o->params.on_gpu) {
        sgd_cuda_step(&o->params, o->momentum_buffer, &o->h, state);
        lm_opt_refresh_copy(&o->params, state);
        return LM_OK;
    }
#endif
    sgd_cpu_step(&o->params, o->momentum_buffer, &o->h, state);
    lm_opt_refresh_copy(&o->params, state);
    return LM_OK;
}

static lm_status sgd_state_count(void *self, size_t *n) {
    sgd_optimizer *o = self;
    LM_TRY(lm_opt_check_bound(&o->params, "sgd", "state_count"));
    *n = has_buffer(o) ? 1 : 0;
    return LM_OK;
}

static lm_status sgd_state_at(void *self, size_t index, lm_optimizer_state *out) {
    sgd_optimizer *o = self;
    LM_TRY(lm_opt_check_bound(&o->params, "sgd", "state_at"));
    if (!has_buffer(o) || index != 0)
        return lm_error_set(LM_ERR_INVALID, "optimizer 'sgd': state buffer %zu asked for; it has %s", index,
                            has_buffer(o) ? "1 (momentum_buffer)" : "none (momentum is 0)");
    lm_opt_describe_state(&o->params, "momentum_buffer", o->momentum_buffer, out);
    return LM_OK;
}

/* torch.optim.SGD's names: "momentum": 0.9, "dampening": 0, "weight_decay": 0, "nesterov": false. */
static lm_status sgd_settings_json(void *self, lm_buffer *out) {
    const sgd_optimizer *o = self;
    LM_TRY(lm_opt_json_number(out, 1, "momentum", o->momentum));
    LM_TRY(lm_opt_json_number(out, 0, "dampening", o->dampening));
    LM_TRY(lm_opt_json_number(out, 0, "weight_decay", o->weight_decay));
    return lm_opt_json_bool(out, 0, "nesterov", o->nesterov);
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

LM_PLUGIN_DEFINE(LM_KIND_OPTIMIZER, "sgd", "1.0.0",
                 "torch.optim.SGD: momentum, dampening, Nesterov, L2 weight decay on the tensors that take it",
                 lm_optimizer_vtable, sgd_vtable)

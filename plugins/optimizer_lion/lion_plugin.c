/* The lion optimizer plugin: Lion (Chen et al. 2023, "Symbolic Discovery of
 * Optimization Algorithms"), as lion_pytorch.Lion computes it: the sign of
 * an interpolation of momentum and gradient as the update, decoupled weight
 * decay for the tensors whose lm_param_desc.weight_decay is set.
 *
 *   p *= 1 - lr·wd;  c = β1·m + (1-β1)·g;  p -= lr·sign(c);  m = β2·m + (1-β2)·g
 *
 * Settings (lion_pytorch's defaults): beta1 0.9, beta2 0.99, weight_decay 0.
 * Lion wants a learning rate 3-10x smaller than AdamW's and a weight decay
 * 3-10x larger (the paper).  State: "exp_avg", per parameter. */
#include <math.h>
#include <stdlib.h>

#include "lion.h"
#include "lmcore/plugin.h"

typedef struct lion_optimizer {
    double beta1, beta2, weight_decay; /* as given, for settings_json */
    lion_hparams h;                    /* as the update uses them */
    lm_opt_params params;
    float *exp_avg;
} lion_optimizer;

static lm_status lion_create(void **self, lm_config *cfg) {
    lion_optimizer *o = calloc(1, sizeof *o);
    if (!o) return lm_error_set(LM_ERR_NOMEM, "optimizer 'lion': out of memory");
    /* lion_pytorch accepts 0 <= beta <= 1. */
    lm_status status = lm_opt_number(cfg, "lion", "beta1", 0.9, 0.0, 0, 1.0, 1, &o->beta1);
    if (status == LM_OK) status = lm_opt_number(cfg, "lion", "beta2", 0.99, 0.0, 0, 1.0, 1, &o->beta2);
    if (status == LM_OK)
        status = lm_opt_number(cfg, "lion", "weight_decay", 0.0, 0.0, 0, INFINITY, 0, &o->weight_decay);
    if (status != LM_OK) {
        free(o);
        return status;
    }
    o->h = (lion_hparams){(float)o->beta1, (float)(1.0 - o->beta1), (float)o->beta2, (float)(1.0 - o->beta2),
                          o->weight_decay};
    *self = o;
    return LM_OK;
}

static void lion_destroy(void *self) {
    lion_optimizer *o = self;
    if (!o) return;
    lm_opt_free_state(&o->params, o->exp_avg);
    lm_opt_release(&o->params);
    free(o);
}

static lm_status lion_bind(void *self, const lm_param_set *params) {
    lion_optimizer *o = self;
    const lm_opt_state_slot state[] = {{&o->exp_avg, "Lion's exp_avg"}};
    return lm_opt_bind_with_state(&o->params, "lion", params, state, 1);
}

static lm_status lion_step(void *self, const lm_step_state *state) {
    lion_optimizer *o = self;
    LM_TRY(lm_opt_check_step(&o->params, "lion", state));
#if defined(LM_OPT_HAVE_CUDA)
    if (o->params.on_gpu) {
        lion_cuda_step(&o->params, o->exp_avg, &o->h, state);
        lm_opt_refresh_copy(&o->params, state);
        return LM_OK;
    }
#endif
    lion_cpu_step(&o->params, o->exp_avg, &o->h, state);
    lm_opt_refresh_copy(&o->params, state);
    return LM_OK;
}

static lm_status lion_state_count(void *self, size_t *n) {
    lion_optimizer *o = self;
    LM_TRY(lm_opt_check_bound(&o->params, "lion", "state_count"));
    *n = 1;
    return LM_OK;
}

static lm_status lion_state_at(void *self, size_t index, lm_optimizer_state *out) {
    lion_optimizer *o = self;
    LM_TRY(lm_opt_check_bound(&o->params, "lion", "state_at"));
    if (index != 0)
        return lm_error_set(LM_ERR_INVALID, "optimizer 'lion': state buffer %zu asked for; it has 1 (exp_avg)",
                            index);
    lm_opt_describe_state(&o->params, "exp_avg", o->exp_avg, out);
    return LM_OK;
}

/* lion_pytorch.Lion's names: "betas": [0.9, 0.99], "weight_decay": 0. */
static lm_status lion_settings_json(void *self, lm_buffer *out) {
    const lion_optimizer *o = self;
    LM_TRY(lm_opt_json_pair(out, 1, "betas", o->beta1, o->beta2));
    return lm_opt_json_number(out, 0, "weight_decay", o->weight_decay);
}

static const lm_optimizer_vtable lion_vtable = {
    .create = lion_create,
    .destroy = lion_destroy,
    .bind = lion_bind,
    .step = lion_step,
    .state_count = lion_state_count,
    .state_at = lion_state_at,
    .settings_json = lion_settings_json,
};

LM_PLUGIN_DEFINE(LM_KIND_OPTIMIZER, "lion", "1.0.0",
                 "Lion (Chen et al. 2023): sign of interpolated momentum, decoupled weight decay (as lion_pytorch)",
                 lm_optimizer_vtable, lion_vtable)

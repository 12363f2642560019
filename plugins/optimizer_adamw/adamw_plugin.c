/* The adamw optimizer plugin: torch.optim.AdamW (single-tensor path,
 * amsgrad off, maximize off), decoupled weight decay for the tensors whose
 * lm_param_desc.weight_decay is set (the Hugging Face Trainer's groups).
 *
 * Settings (torch's defaults): weight_decay 0.01, beta1 0.9, beta2 0.999,
 * eps 1e-8.  State: "exp_avg" and "exp_avg_sq", per parameter.  The update
 * is lmcore 1.x's, bit for bit (adamw_cpu.c; adamw_cuda.cu on a GPU, which
 * agrees with the CPU bit for bit). */
#include <math.h>
#include <stdlib.h>

#include "adamw.h"
#include "lmcore/plugin.h"

typedef struct adamw_optimizer {
    double beta1, beta2, eps, weight_decay; /* as given, for settings_json */
    adamw_hparams h;                        /* as the update uses them */
    lm_opt_params params;
    float *exp_avg, *exp_avg_sq;
} adamw_optimizer;

static lm_status adamw_create(void **self, lm_config *cfg) {
    adamw_optimizer *o = calloc(1, sizeof *o);
    if (!o) return lm_error_set(LM_ERR_NOMEM, "optimizer 'adamw': out of memory");
    lm_status status = lm_opt_number(cfg, "adamw", "weight_decay", 0.01, 0.0, 0, INFINITY, 1, &o->weight_decay);
    if (status == LM_OK) status = lm_opt_number(cfg, "adamw", "beta1", 0.9, 0.0, 0, 1.0, 0, &o->beta1);
    if (status == LM_OK) status = lm_opt_number(cfg, "adamw", "beta2", 0.999, 0.0, 0, 1.0, 0, &o->beta2);
    if (status == LM_OK) status = lm_opt_number(cfg, "adamw", "eps", 1e-8, 0.0, 1, INFINITY, 1, &o->eps);
    if (status != LM_OK) {
        free(o);
        return status;
    }
    o->h = (adamw_hparams){(float)o->beta1, (float)o->beta2, (float)o->eps, (float)o->weight_decay};
    *self = o;
    return LM_OK;
}

static void adamw_destroy(void *self) {
    adamw_optimizer *o = self;
    if (!o) return;
    lm_opt_free_state(&o->params, o->exp_avg);
    lm_opt_free_state(&o->params, o->exp_avg_sq);
    lm_opt_release(&o->params);
    free(o);
}

static lm_status adamw_bind(void *self, const lm_param_set *params) {
    adamw_optimizer *o = self;
    const lm_opt_state_slot state[] = {{&o->exp_avg, "AdamW's exp_avg"}, {&o->exp_avg_sq, "AdamW's exp_avg_sq"}};
    return lm_opt_bind_with_state(&o->params, "adamw", params, state, 2);
}

static lm_status adamw_step(void *self, const lm_step_state *state) {
    adamw_optimizer *o = self;
    LM_TRY(lm_opt_check_step(&o->params, "adamw", state));
#if defined(LM_OPT_HAVE_CUDA)
    if (o->params.on_gpu) {
        adamw_cuda_step(&o->params, o->exp_avg, o->exp_avg_sq, &o->h, state);
        lm_opt_refresh_copy(&o->params, state);
        return LM_OK;
    }
#endif
    adamw_cpu_step(&o->params, o->exp_avg, o->exp_avg_sq, &o->h, state);
    lm_opt_refresh_copy(&o->params, state);
    return LM_OK;
}

static lm_status adamw_state_count(void *self, size_t *n) {
    adamw_optimizer *o = self;
    LM_TRY(lm_opt_check_bound(&o->params, "adamw", "state_count"));
    *n = 2;
    return LM_OK;
}

static lm_status adamw_state_at(void *self, size_t index, lm_optimizer_state *out) {
    adamw_optimizer *o = self;
    LM_TRY(lm_opt_check_bound(&o->params, "adamw", "state_at"));
    if (index >= 2)
        return lm_error_set(LM_ERR_INVALID, "optimizer 'adamw': state buffer %zu asked for; it has 2 (exp_avg, "
                                            "exp_avg_sq)",
                            index);
    if (index == 0) lm_opt_describe_state(&o->params, "exp_avg", o->exp_avg, out);
    else lm_opt_describe_state(&o->params, "exp_avg_sq", o->exp_avg_sq, out);
    return LM_OK;
}

/* torch.optim.AdamW's names: "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.01. */
static lm_status adamw_settings_json(void *self, lm_buffer *out) {
    const adamw_optimizer *o = self;
    LM_TRY(lm_opt_json_pair(out, 1, "betas", o->beta1, o->beta2));
    LM_TRY(lm_opt_json_number(out, 0, "eps", o->eps));
    return lm_opt_json_number(out, 0, "weight_decay", o->weight_decay);
}

static const lm_optimizer_vtable adamw_vtable = {
    .create = adamw_create,
    .destroy = adamw_destroy,
    .bind = adamw_bind,
    .step = adamw_step,
    .state_count = adamw_state_count,
    .state_at = adamw_state_at,
    .settings_json = adamw_settings_json,
};

LM_PLUGIN_DEFINE(LM_KIND_OPTIMIZER, "adamw", "2.0.0",
                 "torch.optim.AdamW: decoupled weight decay on the tensors that take it, bias-corrected moments",
                 lm_optimizer_vtable, adamw_vtable)

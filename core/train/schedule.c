/* Learning-rate schedules (see schedule.h); the formulas are in
 * lmcore/step.h, shared with the device kernels. */
#include <math.h>
#include <string.h>

#include "schedule.h"

static const char *const names[LM_SCHEDULE_KIND_COUNT] = {
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt",
    "host"};

#define KNOWN_NAMES                                                                                                \
    "linear, cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup, inverse_sqrt, or a Lua "    \
    "function (step, total_steps) -> learning rate"

const char *lm_schedule_name(int kind) { return kind >= 0 && kind < LM_SCHEDULE_KIND_COUNT ? names[kind] : NULL; }

lm_status lm_schedule_make(lm_schedule *out, const char *name, double base_lr, int64_t total_steps,
                           int64_t warmup_steps, double warmup_ratio, lm_config *kwargs) {
    memset(out, 0, sizeof *out);
    int kind = -1;
    for (int k = 0; k < LM_SCHEDULE_KIND_COUNT && name; k++)
        if (strcmp(name, names[k]) == 0) kind = k;
    if (kind < 0)
        return lm_error_set(LM_ERR_INVALID, "lr_scheduler_type '%s' is unknown: use " KNOWN_NAMES,
                            name ? name : "(null)");
    if (!(base_lr > 0) || !isfinite(base_lr))
        return lm_error_set(LM_ERR_INVALID, "learning_rate must be a positive number, got %g", base_lr);
    if (total_steps < 1)
        return lm_error_set(LM_ERR_INVALID, "the schedule needs at least one step, got %lld", (long long)total_steps);
    if (warmup_steps < 0)
        return lm_error_set(LM_ERR_INVALID, "warmup_steps must be >= 0, got %lld", (long long)warmup_steps);
    if (!(warmup_ratio >= 0 && warmup_ratio <= 1))
        return lm_error_set(LM_ERR_INVALID, "warmup_ratio must be in [0, 1], got %g", warmup_ratio);
    if (warmup_steps > 0 && warmup_ratio > 0)
        return lm_error_set(LM_ERR_INVALID, "give warmup_steps (%lld) or warmup_ratio (%g), not both",
                            (long long)warmup_steps, warmup_ratio);
    /* transformers' get_warmup_steps: ceil(num_training_steps * warmup_ratio). */
    int64_t warmup = warmup_steps > 0 ? warmup_steps : (int64_t)ceil((double)total_steps * warmup_ratio);
    if (kind == LM_SCHEDULE_CONSTANT && warmup > 0)
        return lm_error_set(LM_ERR_INVALID, "lr_scheduler_type 'constant' has no warmup (as in Hugging Face): use "
                                            "'constant_with_warmup', or drop warmup_steps / warmup_ratio");
    out->kind = kind;
    out->base_lr = base_lr;
    out->total_steps = total_steps;
    out->warmup_steps = warmup;
    out->num_cycles = kind == LM_SCHEDULE_COSINE_WITH_RESTARTS ? 1.0 : 0.5;
    out->power = 1.0;
    out->lr_end = 1e-7;
    out->timescale = warmup > 0 ? (double)warmup : 10000.0;
    if (!kwargs) return kind == LM_SCHEDULE_POLYNOMIAL && !(out->lr_end < base_lr)
                           ? lm_error_set(LM_ERR_INVALID, "lr_scheduler_type 'polynomial': the learning rate (%g) "
                                                          "must be above lr_end (%g)", base_lr, out->lr_end)
                           : LM_OK;
    /* Each schedule reads only its own keys: any other is refused by
     * lm_config_validate, which names the keys it does take. */
    if (kind == LM_SCHEDULE_COSINE || kind == LM_SCHEDULE_COSINE_WITH_RESTARTS)
        out->num_cycles = lm_config_number(kwargs, "num_cycles", out->num_cycles);
    if (kind == LM_SCHEDULE_POLYNOMIAL) {
        out->power = lm_config_number(kwargs, "power", out->power);
        out->lr_end = lm_config_number(kwargs, "lr_end", out->lr_end);
    }
    if (kind == LM_SCHEDULE_INVERSE_SQRT) out->timescale = lm_config_number(kwargs, "timescale", out->timescale);
    LM_TRY(lm_config_validate(kwargs));
    if (!(out->num_cycles > 0) || !isfinite(out->num_cycles))
        return lm_error_set(LM_ERR_INVALID, "lr_scheduler_kwargs: num_cycles must be > 0, got %g", out->num_cycles);
    if (!(out->power > 0) || !isfinite(out->power))
        return lm_error_set(LM_ERR_INVALID, "lr_scheduler_kwargs: power must be > 0, got %g", out->power);
    if (kind == LM_SCHEDULE_POLYNOMIAL && (!(out->lr_end >= 0) || !(out->lr_end < base_lr)))
        return lm_error_set(LM_ERR_INVALID,
                            "lr_scheduler_kwargs: lr_end (%g) must be >= 0 and below the learning rate (%g)",
                            out->lr_end, base_lr);
    if (!(out->timescale > 0) || !isfinite(out->timescale))
        return lm_error_set(LM_ERR_INVALID, "lr_scheduler_kwargs: timescale must be > 0, got %g", out->timescale);
    return LM_OK;
}

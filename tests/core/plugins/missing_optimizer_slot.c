/* An optimizer without its step function: must be refused naming the slot
 * (every optimizer slot is required). */
#include "lmcore/lmcore.h"
static lm_status c(void **s, lm_config *cfg) { (void)cfg; *s = (void *)1; return LM_OK; }
static void d(void *s) { (void)s; }
static lm_status b(void *s, const lm_param_set *p) { (void)s; (void)p; return LM_OK; }
static lm_status n(void *s, size_t *count) { (void)s; *count = 0; return LM_OK; }
static lm_status a(void *s, size_t i, lm_optimizer_state *out) { (void)s; (void)i; (void)out; return LM_ERR_INVALID; }
static lm_status j(void *s, lm_buffer *out) { (void)s; (void)out; return LM_OK; }
static const lm_optimizer_vtable vtable = {
    .create = c, .destroy = d, .bind = b, .step = NULL, .state_count = n, .state_at = a, .settings_json = j};
LM_PLUGIN_DEFINE(LM_KIND_OPTIMIZER, "no_step", "1.0", "an optimizer that forgot step", lm_optimizer_vtable, vtable)

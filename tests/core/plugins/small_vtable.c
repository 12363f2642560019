/* A vtable that stops before the optional flush slot (an older minor): accepted, flush reads NULL. */
#include <stddef.h>

#include "lmcore/lmcore.h"
static lm_status c(void **s, lm_config *cfg) { (void)cfg; *s = (void *)1; return LM_OK; }
static void d(void *s) { (void)s; }
static lm_status l(void *s, const lm_event *e) { (void)s; (void)e; return LM_OK; }
static lm_status f(void *s) { (void)s; return LM_OK; }
/* flush is set, but vtable_size says the table ends before it. */
static const lm_logger_vtable vtable = {c, d, l, f};
LM_PLUGIN_EXPORT const lm_plugin_descriptor *lm_plugin_describe(void);
LM_PLUGIN_EXPORT const lm_plugin_descriptor *lm_plugin_describe(void) {
    static const lm_plugin_descriptor desc = {LM_ABI_MAJOR, LM_ABI_MINOR, sizeof(lm_plugin_descriptor), LM_KIND_LOGGER,
                                              offsetof(lm_logger_vtable, flush), "small_vtable", "1.0", "older, shorter vtable", &vtable};
    return &desc;
}

/* Built "for ABI major.(minor+1)": must be refused by newer minor. */
#include "lmcore/lmcore.h"
static lm_status c(void **s, lm_config *cfg) { (void)cfg; *s = (void *)1; return LM_OK; }
static void d(void *s) { (void)s; }
static lm_status l(void *s, const lm_event *e) { (void)s; (void)e; return LM_OK; }
static const lm_logger_vtable vtable = {c, d, l, NULL};
LM_PLUGIN_EXPORT const lm_plugin_descriptor *lm_plugin_describe(void);
LM_PLUGIN_EXPORT const lm_plugin_descriptor *lm_plugin_describe(void) {
    static const lm_plugin_descriptor desc = {LM_ABI_MAJOR, LM_ABI_MINOR + 1, sizeof(lm_plugin_descriptor), LM_KIND_LOGGER,
                                              sizeof vtable, "newer_minor", "1.0", "newer minor", &vtable};
    return &desc;
}

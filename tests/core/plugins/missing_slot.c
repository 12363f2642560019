/* No log function: must be refused naming the slot. */
#include "lmcore/lmcore.h"
static lm_status c(void **s, lm_config *cfg) { (void)cfg; *s = (void *)1; return LM_OK; }
static void d(void *s) { (void)s; }
static const lm_logger_vtable vtable = {c, d, NULL, NULL};
LM_PLUGIN_EXPORT const lm_plugin_descriptor *lm_plugin_describe(void);
LM_PLUGIN_EXPORT const lm_plugin_descriptor *lm_plugin_describe(void) {
    static const lm_plugin_descriptor desc = {LM_ABI_MAJOR, LM_ABI_MINOR, sizeof(lm_plugin_descriptor), LM_KIND_LOGGER,
                                              sizeof vtable, "missing_slot", "1.0", "no log slot", &vtable};
    return &desc;
}

/* Kind 42 does not exist: refused. */
#include "lmcore/lmcore.h"
static lm_status c(void **s, lm_config *cfg) { (void)cfg; *s = (void *)1; return LM_OK; }
static void d(void *s) { (void)s; }
static lm_status l(void *s, const lm_event *e) { (void)s; (void)e; return LM_OK; }
static const lm_logger_vtable vtable = {c, d, l, NULL};
LM_PLUGIN_EXPORT const lm_plugin_descriptor *lm_plugin_describe(void);
LM_PLUGIN_EXPORT const lm_plugin_descriptor *lm_plugin_describe(void) {
    static const lm_plugin_descriptor desc = {LM_ABI_MAJOR, LM_ABI_MINOR, sizeof(lm_plugin_descriptor), 42,
                                              sizeof vtable, "bad_kind", "1.0", "unknown kind", &vtable};
    return &desc;
}

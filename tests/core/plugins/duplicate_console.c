/* A second logger named 'console': refused as a duplicate when the shipped
 * one is already loaded. */
#include "lmcore/lmcore.h"
static lm_status c(void **s, lm_config *cfg) { (void)cfg; *s = (void *)1; return LM_OK; }
static void d(void *s) { (void)s; }
static lm_status l(void *s, const lm_event *e) { (void)s; (void)e; return LM_OK; }
static const lm_logger_vtable vtable = {c, d, l, NULL};
LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "console", "9.9.9", "an impostor", lm_logger_vtable, vtable)

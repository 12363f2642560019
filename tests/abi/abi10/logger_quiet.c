/* A logger written for plugin ABI 1.0 and compiled against the frozen 1.0
 * headers (tests/abi/include-1.0).  Its vtable (create, destroy, log,
 * flush) has the same slots in 2.0, yet the 2.0 core refuses it: a major
 * version promises nothing about what the slots are given (lm_event gained
 * a kind; the host functions it may call are those of the new major). */
#include <lmcore/lmcore.h>

#if LM_ABI_MAJOR != 1 || LM_ABI_MINOR != 0
#error "tests/abi/abi10 must be built against tests/abi/include-1.0"
#endif

static int quiet_instance;

static lm_status quiet_create(void **self, lm_config *cfg) {
    (void)cfg;
    *self = &quiet_instance;
    return LM_OK;
}

static void quiet_destroy(void *self) { (void)self; }

static lm_status quiet_log(void *self, const lm_event *event) {
    (void)self;
    (void)event;
    return LM_OK;
}

static const lm_logger_vtable quiet_vtable = {quiet_create, quiet_destroy, quiet_log, NULL};
LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "abi10_quiet", "1.0.0", "logs nothing, for ABI 1.0 (tests/abi)", lm_logger_vtable,
                 quiet_vtable)

/* Names of plugin kinds. */
#include <string.h>

#include "lmcore/plugin.h"

static const char *const kind_names[LM_KIND_COUNT + 1] = {
    NULL, "tokenizer", "dataset", "architecture", "objective", "logger", "optimizer", "communicator",
};

const char *lm_plugin_kind_name(lm_plugin_kind kind) {
    return (kind >= 1 && kind <= LM_KIND_COUNT) ? kind_names[kind] : "unknown";
}

int lm_plugin_kind_parse(const char *name, lm_plugin_kind *out) {
    for (int k = 1; k <= LM_KIND_COUNT; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (lm_plugin_kind)k;
            return 1;
        }
    }
    return 0;
}

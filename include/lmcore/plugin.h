/* lmcore — the plugin ABI.
 *
 * A plugin is a shared object that exports one function,
 *
 *     const lm_plugin_descriptor *lm_plugin_describe(void);
 *
 * returning a descriptor that lives as long as the library is loaded.  Its
 * first fields (ABI major/minor, struct size) never move, so any core can read
 * any descriptor and refuse it with a reason.  Compatibility rule (as in
 * GStreamer): same ABI major, plugin minor <= core minor.  Structures only
 * grow at the end; the core reads `vtable_size` and treats slots beyond it as
 * NULL, and refuses a plugin whose *required* slots are NULL, naming them.
 * Plugins link against liblmcore for the host services (errors, config,
 * logging, JSON, safetensors); they never see a Lua state.  See
 * docs/plugin-abi.md. */
#ifndef LMCORE_PLUGIN_H
#define LMCORE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2.0: the optimizer left the architecture (optimizer plugins, step.h,
 * device.h); datasets hand out one text source per split; objectives own
 * their batches.  docs/plugin-abi.md#migrating-from-abi-1 lists the changes.
 * 2.1: optional slots only (docs/plugin-abi.md, "ABI history"): the
 * gradients-ready notification, the non-blocking all-reduce, forward_train,
 * upload_batch and the device's graphs. */
#define LM_ABI_MAJOR 2
#define LM_ABI_MINOR 1

typedef enum lm_plugin_kind {
    LM_KIND_TOKENIZER = 1,
    LM_KIND_DATASET = 2,
    LM_KIND_ARCHITECTURE = 3,
    LM_KIND_OBJECTIVE = 4,
    LM_KIND_LOGGER = 5,
    LM_KIND_OPTIMIZER = 6,
    LM_KIND_COMMUNICATOR = 7 /* 2.0, added before its release: data-parallel runs (communicator.h) */
} lm_plugin_kind;
#define LM_KIND_COUNT 7

typedef struct lm_plugin_descriptor {
    uint16_t abi_major;      /* LM_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;      /* LM_ABI_MINOR the plugin was built with */
    uint32_t struct_size;    /* sizeof(lm_plugin_descriptor) at build time */
    int32_t kind;            /* lm_plugin_kind */
    uint32_t vtable_size;    /* sizeof the kind's vtable at build time */
    const char *name;        /* unique within its kind: 1-64 of [a-z0-9_] */
    const char *version;     /* the plugin's own version, "1.2.0" */
    const char *description; /* one line */
    const void *vtable;      /* lm_tokenizer_vtable, lm_dataset_vtable, ... lm_communicator_vtable */
} lm_plugin_descriptor;

#define LM_PLUGIN_DESCRIBE_SYMBOL "lm_plugin_describe"
typedef const lm_plugin_descriptor *(*lm_plugin_describe_fn)(void);

#if defined(__GNUC__)
#define LM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define LM_PLUGIN_EXPORT
#endif

/* Defines the descriptor function of a plugin:
 *   LM_PLUGIN_DEFINE(LM_KIND_LOGGER, "console", "1.0.0", "Leveled lines ...",
 *                    lm_logger_vtable, console_vtable)
 * where console_vtable is a static const lm_logger_vtable. */
#define LM_PLUGIN_DEFINE(kind_, name_, version_, description_, vtable_type_, vtable_)                \
    LM_PLUGIN_EXPORT const lm_plugin_descriptor *lm_plugin_describe(void);                          \
    LM_PLUGIN_EXPORT const lm_plugin_descriptor *lm_plugin_describe(void) {                         \
        static const lm_plugin_descriptor descriptor = {                                            \
            LM_ABI_MAJOR, LM_ABI_MINOR, (uint32_t)sizeof(lm_plugin_descriptor), (int32_t)(kind_),   \
            (uint32_t)sizeof(vtable_type_), (name_), (version_), (description_), &(vtable_)};       \
        return &descriptor;                                                                         \
    }

LM_API const char *lm_plugin_kind_name(lm_plugin_kind kind); /* "tokenizer" ... */
LM_API int lm_plugin_kind_parse(const char *name, lm_plugin_kind *out);

#ifdef __cplusplus
}
#endif
#endif

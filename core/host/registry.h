/* The plugin registry: finds shared objects in explicit places, checks
 * their descriptors against this core's ABI and keeps the accepted ones.
 * Core-internal (used by the CLI, the Lua runtime and tests). */
#ifndef LMCORE_REGISTRY_H
#define LMCORE_REGISTRY_H

#include <stddef.h>

#include "lmcore/lmcore.h"

/* A kind's vtable copied into a full-size, zero-padded struct, so slots a
 * plugin built against an older minor lacks read as NULL. */
typedef union lm_any_vtable {
    lm_tokenizer_vtable tokenizer;
    lm_dataset_vtable dataset;
    lm_architecture_vtable architecture;
    lm_objective_vtable objective;
    lm_logger_vtable logger;
    lm_optimizer_vtable optimizer;
    lm_communicator_vtable communicator;
} lm_any_vtable;

typedef struct lm_plugin {
    const lm_plugin_descriptor *descriptor;
    lm_plugin_kind kind;
    const char *name;
    char *path;
    void *handle;
    lm_any_vtable vtable;
} lm_plugin;

typedef struct lm_registry lm_registry;

/* A plugin instance: the plugin and what its create() made. */
typedef struct lm_handle {
    const lm_plugin *plugin;
    void *self;
} lm_handle;

LM_API lm_status lm_registry_create(lm_registry **out);
LM_API void lm_registry_destroy(lm_registry *r);

/* Loads one file.  A refusal is returned as an error (LM_ERR_ABI,
 * LM_ERR_FORMAT ...) with its one-line reason, and remembered. */
LM_API lm_status lm_registry_load_file(lm_registry *r, const char *path);
/* Loads every *.so in dir (sorted by name).  Refusals are remembered, not
 * returned; a missing directory is skipped. */
LM_API lm_status lm_registry_scan_dir(lm_registry *r, const char *dir);
/* The standard search: each entry of `plugin_path` (colon-separated, may be
 * NULL), then $LMCORE_PLUGIN_PATH, then the plugin folder next to the
 * executable `exe_path` (<bin>/../lib/lmcore/plugins in an install and in the
 * build tree; may be NULL).  Never the current directory, never a folder
 * compiled in. */
LM_API lm_status lm_registry_scan_default(lm_registry *r, const char *plugin_path, const char *exe_path);

LM_API size_t lm_registry_count(const lm_registry *r);
LM_API const lm_plugin *lm_registry_at(const lm_registry *r, size_t index);
LM_API size_t lm_registry_rejected_count(const lm_registry *r);
LM_API void lm_registry_rejected_at(const lm_registry *r, size_t index, const char **path, const char **reason);

/* LM_ERR_NOT_FOUND names the available plugins of that kind and any refused
 * file that might have been meant. */
LM_API lm_status lm_registry_find(const lm_registry *r, lm_plugin_kind kind, const char *name,
                                  const lm_plugin **out);

/* Calls the plugin's create() with cfg, then validates cfg (wrong types,
 * unknown keys); on failure destroys what was created and prefixes the
 * message with the plugin's kind and name. */
LM_API lm_status lm_plugin_instantiate(const lm_plugin *plugin, lm_config *cfg, void **self);
LM_API void lm_plugin_release(const lm_plugin *plugin, void *self);

#endif

/* Plugin discovery and ABI checks (see docs/plugin-abi.md). */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "elf_check.h"
#include "names.h"
#include "registry.h"

#ifndef LMCORE_PLUGIN_DIR_FROM_BIN /* set by the build from the install layout */
#define LMCORE_PLUGIN_DIR_FROM_BIN "../lib/lmcore/plugins"
#endif

typedef struct rejection {
    char *path;
    char *reason;
} rejection;

struct lm_registry {
    lm_plugin **plugins;
    size_t count, cap;
    rejection *rejected;
    size_t n_rejected, cap_rejected;
};

/* Required slots per kind: a plugin missing one is refused by name. */
typedef struct slot_rule {
    size_t offset;
    const char *name;
} slot_rule;

#define SLOT(type, field) {offsetof(type, field), #field}
static const slot_rule tokenizer_slots[] = {
    SLOT(lm_tokenizer_vtable, create), SLOT(lm_tokenizer_vtable, destroy), SLOT(lm_tokenizer_vtable, encode),
    SLOT(lm_tokenizer_vtable, decode), SLOT(lm_tokenizer_vtable, info),    SLOT(lm_tokenizer_vtable, save),
    SLOT(lm_tokenizer_vtable, fingerprint)};
static const slot_rule dataset_slots[] = {
    SLOT(lm_dataset_vtable, create),     SLOT(lm_dataset_vtable, destroy),   SLOT(lm_dataset_vtable, split_count),
    SLOT(lm_dataset_vtable, split_name), SLOT(lm_dataset_vtable, open_split)};
static const slot_rule architecture_slots[] = {
    SLOT(lm_architecture_vtable, create),       SLOT(lm_architecture_vtable, destroy),
    SLOT(lm_architecture_vtable, info),         SLOT(lm_architecture_vtable, parameters),
    SLOT(lm_architecture_vtable, init_weights), SLOT(lm_architecture_vtable, set_training),
    SLOT(lm_architecture_vtable, forward),      SLOT(lm_architecture_vtable, backward),
    SLOT(lm_architecture_vtable, logits),       SLOT(lm_architecture_vtable, hf_config)};
static const slot_rule objective_slots[] = {SLOT(lm_objective_vtable, create), SLOT(lm_objective_vtable, destroy),
                                            SLOT(lm_objective_vtable, bind), SLOT(lm_objective_vtable, make_batch)};
static const slot_rule logger_slots[] = {SLOT(lm_logger_vtable, create), SLOT(lm_logger_vtable, destroy),
                                         SLOT(lm_logger_vtable, log)};
static const slot_rule optimizer_slots[] = {
    SLOT(lm_optimizer_vtable, create),      SLOT(lm_optimizer_vtable, destroy),  SLOT(lm_optimizer_vtable, bind),
    SLOT(lm_optimizer_vtable, step),        SLOT(lm_optimizer_vtable, state_count), SLOT(lm_optimizer_vtable, state_at),
    SLOT(lm_optimizer_vtable, settings_json)};
static const slot_rule communicator_slots[] = {
    SLOT(lm_communicator_vtable, create),     SLOT(lm_communicator_vtable, destroy),
    SLOT(lm_communicator_vtable, rank),       SLOT(lm_communicator_vtable, size),
    SLOT(lm_communicator_vtable, memory),     SLOT(lm_communicator_vtable, all_reduce),
    SLOT(lm_communicator_vtable, broadcast),  SLOT(lm_communicator_vtable, all_gather),
    SLOT(lm_communicator_vtable, barrier),    SLOT(lm_communicator_vtable, abort)};
#undef SLOT

static const struct {
    const slot_rule *rules;
    size_t n;
    size_t full_size;
} kind_rules[LM_KIND_COUNT + 1] = {
    {NULL, 0, 0},
    {tokenizer_slots, sizeof tokenizer_slots / sizeof *tokenizer_slots, sizeof(lm_tokenizer_vtable)},
    {dataset_slots, sizeof dataset_slots / sizeof *dataset_slots, sizeof(lm_dataset_vtable)},
    {architecture_slots, sizeof architecture_slots / sizeof *architecture_slots, sizeof(lm_architecture_vtable)},
    {objective_slots, sizeof objective_slots / sizeof *objective_slots, sizeof(lm_objective_vtable)},
    {logger_slots, sizeof logger_slots / sizeof *logger_slots, sizeof(lm_logger_vtable)},
    {optimizer_slots, sizeof optimizer_slots / sizeof *optimizer_slots, sizeof(lm_optimizer_vtable)},
    {communicator_slots, sizeof communicator_slots / sizeof *communicator_slots, sizeof(lm_communicator_vtable)},
};

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

lm_status lm_registry_create(lm_registry **out) {
    *out = calloc(1, sizeof **out);
    return *out ? LM_OK : lm_error_set(LM_ERR_NOMEM, "out of memory creating the plugin registry");
}

void lm_registry_destroy(lm_registry *r) {
    if (!r) return;
    for (size_t i = 0; i < r->count; i++) {
        /* Handles stay open: objects created by plugins may still be
         * finalised later (Lua __gc at interpreter close), and unloading
         * code that is about to run is worse than a mapping kept until exit. */
        free(r->plugins[i]->path);
        free(r->plugins[i]);
    }
    for (size_t i = 0; i < r->n_rejected; i++) {
        free(r->rejected[i].path);
        free(r->rejected[i].reason);
    }
    free(r->plugins);
    free(r->rejected);
    free(r);
}

static void remember_rejection(lm_registry *r, const char *path) {
    if (r->n_rejected == r->cap_rejected) {
        size_t cap = r->cap_rejected ? r->cap_rejected * 2 : 8;
        rejection *p = realloc(r->rejected, cap * sizeof *p);
        if (!p) return;
        r->rejected = p;
        r->cap_rejected = cap;
    }
    r->rejected[r->n_rejected].path = dup_string(path);
    r->rejected[r->n_rejected].reason = dup_string(lm_error_message());
    if (r->rejected[r->n_rejected].path && r->rejected[r->n_rejected].reason) r->n_rejected++;
}

static int valid_name(const char *name) {
    if (!name || !*name || strlen(name) > 64) return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) return 0;
    return 1;
}

/* Checks a descriptor; on success fills `plugin` (vtable copied). */
static lm_status check_descriptor(const char *path, const lm_plugin_descriptor *d, lm_plugin *plugin) {
    if (!d) return lm_error_set(LM_ERR_FORMAT, "%s: lm_plugin_describe() returned NULL", path);
    if (d->abi_major == 1 && LM_ABI_MAJOR == 2)
        return lm_error_set(LM_ERR_ABI,
                            "%s: built for plugin ABI %u.%u but this lmcore speaks ABI %d.%d: rebuild it against "
                            "these headers, changing what ABI 2 changed: architectures hand out parameters() "
                            "and no longer step an optimizer (optimizers are plugins of their own), forward "
                            "writes its loss to the step state and backward takes an accumulate flag; datasets "
                            "replace row_count/row/fingerprint by open_split; objectives own the batch "
                            "make_batch returns (docs/plugin-abi.md, \"Migrating from ABI 1\")",
                            path, d->abi_major, d->abi_minor, LM_ABI_MAJOR, LM_ABI_MINOR);
    if (d->abi_major != LM_ABI_MAJOR)
        return lm_error_set(LM_ERR_ABI,
                            "%s: built for plugin ABI %u.%u but this lmcore speaks ABI %d.%d (major versions "
                            "differ): rebuild the plugin against this lmcore's headers",
                            path, d->abi_major, d->abi_minor, LM_ABI_MAJOR, LM_ABI_MINOR);
    if (d->abi_minor > LM_ABI_MINOR)
        return lm_error_set(LM_ERR_ABI,
                            "%s: built for plugin ABI %u.%u, newer than this lmcore's ABI %d.%d: upgrade lmcore "
                            "or rebuild the plugin against these headers",
                            path, d->abi_major, d->abi_minor, LM_ABI_MAJOR, LM_ABI_MINOR);
    if (d->struct_size < offsetof(lm_plugin_descriptor, vtable) + sizeof(void *))
        return lm_error_set(LM_ERR_FORMAT, "%s: plugin descriptor is truncated (%u bytes)", path, d->struct_size);
    if (d->kind < 1 || d->kind > LM_KIND_COUNT)
        return lm_error_set(LM_ERR_FORMAT,
                            "%s: unknown plugin kind %d (known: 1 tokenizer, 2 dataset, 3 architecture, "
                            "4 objective, 5 logger, 6 optimizer, 7 communicator)",
                            path, d->kind);
    const char *kind = lm_plugin_kind_name((lm_plugin_kind)d->kind);
    if (!valid_name(d->name))
        return lm_error_set(LM_ERR_FORMAT, "%s: %s plugin name '%s' is not valid (use 1-64 of a-z, 0-9, _)", path,
                            kind, d->name ? d->name : "(null)");
    if (!d->vtable)
        return lm_error_set(LM_ERR_FORMAT, "%s: %s plugin '%s' has no vtable", path, kind, d->name);
    size_t full = kind_rules[d->kind].full_size;
    size_t given = d->vtable_size < full ? d->vtable_size : full;
    memset(&plugin->vtable, 0, sizeof plugin->vtable);
    memcpy(&plugin->vtable, d->vtable, given);
    for (size_t i = 0; i < kind_rules[d->kind].n; i++) {
        const slot_rule *rule = &kind_rules[d->kind].rules[i];
        void *slot;
        memcpy(&slot, (const char *)&plugin->vtable + rule->offset, sizeof slot);
        if (rule->offset + sizeof(void *) > given || !slot)
            return lm_error_set(LM_ERR_ABI, "%s: %s plugin '%s' lacks the required function '%s' in its vtable",
                                path, kind, d->name, rule->name);
    }
    plugin->descriptor = d;
    plugin->kind = (lm_plugin_kind)d->kind;
    plugin->name = d->name;
    return LM_OK;
}

static lm_status load_file(lm_registry *r, const char *path) {
    /* dlopen() of a file cut short dies of SIGBUS: check it whole first. */
    LM_TRY(lm_elf_check_file(path));
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        return lm_error_set(LM_ERR_FORMAT, "%s: not a loadable shared object (%s)", path, why ? why : "unknown");
    }
    lm_plugin_describe_fn describe;
    void *symbol = dlsym(handle, LM_PLUGIN_DESCRIBE_SYMBOL);
    memcpy(&describe, &symbol, sizeof describe);
    if (!describe) {
        dlclose(handle);
        return lm_error_set(LM_ERR_FORMAT, "%s: not an lmcore plugin (it exports no %s function)", path,
                            LM_PLUGIN_DESCRIBE_SYMBOL);
    }
    lm_plugin candidate;
    memset(&candidate, 0, sizeof candidate);
    lm_status status = check_descriptor(path, describe(), &candidate);
    if (status != LM_OK) {
        dlclose(handle);
        return status;
    }
    for (size_t i = 0; i < r->count; i++) {
        if (r->plugins[i]->kind == candidate.kind && strcmp(r->plugins[i]->name, candidate.name) == 0) {
            if (strcmp(r->plugins[i]->path, path) == 0) {
                dlclose(handle); /* the same file twice on the path: not a conflict */
                return LM_OK;
            }
            lm_error_set(LM_ERR_INVALID, "%s: duplicate %s plugin '%s' (already loaded from %s); remove one of them",
                         path, lm_plugin_kind_name(candidate.kind), candidate.name, r->plugins[i]->path);
            dlclose(handle);
            return LM_ERR_INVALID;
        }
    }
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        lm_plugin **p = realloc(r->plugins, cap * sizeof *p);
        if (!p) {
            dlclose(handle);
            return lm_error_set(LM_ERR_NOMEM, "out of memory loading plugins");
        }
        r->plugins = p;
        r->cap = cap;
    }
    lm_plugin *plugin = malloc(sizeof *plugin);
    char *path_copy = dup_string(path);
    if (!plugin || !path_copy) {
        free(plugin);
        free(path_copy);
        dlclose(handle);
        return lm_error_set(LM_ERR_NOMEM, "out of memory loading plugins");
    }
    *plugin = candidate;
    plugin->path = path_copy;
    plugin->handle = handle;
    r->plugins[r->count++] = plugin;
    return LM_OK;
}

lm_status lm_registry_load_file(lm_registry *r, const char *given_path) {
    char path[PATH_MAX + 256];
    if (!realpath(given_path, path)) snprintf(path, sizeof path, "%s", given_path);
    lm_status status = load_file(r, path);
    if (status != LM_OK) remember_rejection(r, path);
    return status;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

lm_status lm_registry_scan_dir(lm_registry *r, const char *given_dir) {
    /* Canonical paths, so that one folder reached two ways is one folder. */
    char dir[PATH_MAX];
    if (!realpath(given_dir, dir)) return LM_OK;
    DIR *d = opendir(dir);
    if (!d) return LM_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *entry;
    lm_status status = LM_OK;
    while ((entry = readdir(d)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (len < 4 || strcmp(entry->d_name + len - 3, ".so") != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) {
                status = lm_error_set(LM_ERR_NOMEM, "out of memory listing '%s'", dir);
                break;
            }
            names = p;
        }
        names[n] = dup_string(entry->d_name);
        if (!names[n]) {
            status = lm_error_set(LM_ERR_NOMEM, "out of memory listing '%s'", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (status == LM_OK && n) qsort(names, n, sizeof *names, compare_strings);
    for (size_t i = 0; i < n; i++) {
        if (status == LM_OK) {
            char path[PATH_MAX + 256];
            if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) < sizeof path)
                lm_registry_load_file(r, path); /* refusals are remembered */
        }
        free(names[i]);
    }
    free(names);
    lm_error_clear();
    return status;
}

static void scan_path_list(lm_registry *r, const char *list) {
    if (!list) return;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && len < PATH_MAX) {
            char dir[PATH_MAX];
            memcpy(dir, p, len);
            dir[len] = '\0';
            struct stat st;
            if (stat(dir, &st) == 0 && S_ISREG(st.st_mode)) lm_registry_load_file(r, dir);
            else lm_registry_scan_dir(r, dir);
        }
        if (!end) break;
        p = end + 1;
    }
}

lm_status lm_registry_scan_default(lm_registry *r, const char *plugin_path, const char *exe_path) {
    scan_path_list(r, plugin_path);
    scan_path_list(r, getenv("LMCORE_PLUGIN_PATH"));
    if (exe_path) {
        char resolved[PATH_MAX];
        if (realpath(exe_path, resolved)) {
            char *slash = strrchr(resolved, '/');
            if (slash) {
                *slash = '\0';
                /* The install layout's plugin folder relative to bin/; the
                 * build tree always uses lib/lmcore/plugins, which is the
                 * same unless the install's libdir is multiarch. */
                char dir[PATH_MAX + 64];
                snprintf(dir, sizeof dir, "%s/%s", resolved, LMCORE_PLUGIN_DIR_FROM_BIN);
                lm_registry_scan_dir(r, dir);
                if (strcmp(LMCORE_PLUGIN_DIR_FROM_BIN, "../lib/lmcore/plugins") != 0) {
                    snprintf(dir, sizeof dir, "%s/../lib/lmcore/plugins", resolved);
                    lm_registry_scan_dir(r, dir);
                }
            }
        }
    }
    lm_error_clear();
    return LM_OK;
}

size_t lm_registry_count(const lm_registry *r) { return r->count; }
const lm_plugin *lm_registry_at(const lm_registry *r, size_t index) {
    return index < r->count ? r->plugins[index] : NULL;
}
size_t lm_registry_rejected_count(const lm_registry *r) { return r->n_rejected; }
void lm_registry_rejected_at(const lm_registry *r, size_t index, const char **path, const char **reason) {
    *path = index < r->n_rejected ? r->rejected[index].path : NULL;
    *reason = index < r->n_rejected ? r->rejected[index].reason : NULL;
}

lm_status lm_registry_find(const lm_registry *r, lm_plugin_kind kind, const char *name, const lm_plugin **out) {
    *out = NULL;
    char available[512] = "";
    size_t used = 0;
    const char *names[64]; /* for the "did you mean" hint: enough for any one kind */
    size_t n_names = 0;
    for (size_t i = 0; i < r->count; i++) {
        const lm_plugin *p = r->plugins[i];
        if (p->kind != kind) continue;
        if (strcmp(p->name, name) == 0) {
            *out = p;
            return LM_OK;
        }
        if (n_names < sizeof names / sizeof *names) names[n_names++] = p->name;
        int n = snprintf(available + used, sizeof available - used, "%s%s", used ? ", " : "", p->name);
        if (n > 0 && (size_t)n < sizeof available - used) used += (size_t)n;
    }
    const char *kind_name = lm_plugin_kind_name(kind);
    for (size_t i = 0; i < r->n_rejected; i++) {
        if (strstr(r->rejected[i].path, name))
            return lm_error_set(LM_ERR_NOT_FOUND, "unknown %s plugin '%s': a file that may be it was refused: %s",
                                kind_name, name, r->rejected[i].reason);
    }
    const char *near = lm_nearest_name(name, names, n_names);
    if (near)
        return lm_error_set(LM_ERR_NOT_FOUND, "unknown %s plugin '%s': did you mean '%s'? (available: %s)", kind_name,
                            name, near, available);
    return lm_error_set(LM_ERR_NOT_FOUND,
                        "unknown %s plugin '%s' (available: %s); see `lmcore plugins`, or add its folder with "
                        "--plugin-path or LMCORE_PLUGIN_PATH",
                        kind_name, name, used ? available : "none");
}

lm_status lm_plugin_instantiate(const lm_plugin *plugin, lm_config *cfg, void **self) {
    *self = NULL;
    /* create() is the first slot of every kind's vtable. */
    lm_status (*create)(void **, lm_config *);
    memcpy(&create, &plugin->vtable, sizeof create);
    lm_error_clear();
    lm_status status = create(self, cfg);
    if (status == LM_OK) status = lm_config_validate(cfg);
    else if (*lm_error_message() == '\0')
        lm_error_set(status, "create() failed without a message (%s)", lm_status_name(status));
    if (status != LM_OK) {
        if (*self) lm_plugin_release(plugin, *self);
        *self = NULL;
        const char *message = lm_error_message();
        /* Config messages already name the plugin ("for architecture 'gpt2'"). */
        char owner[160];
        snprintf(owner, sizeof owner, "%s '%s'", lm_plugin_kind_name(plugin->kind), plugin->name);
        if (!strstr(message, owner)) lm_error_prefix("%s: ", owner);
    }
    return status;
}

void lm_plugin_release(const lm_plugin *plugin, void *self) {
    if (!self) return;
    void (*destroy)(void *);
    memcpy(&destroy, (const char *)&plugin->vtable + sizeof(void *), sizeof destroy);
    destroy(self);
}

/* Typed key/value configuration with read tracking.
 *
 * Getters never fail: a wrong type is remembered (first problem wins) and
 * the default is returned, so plugin code stays linear; the core then calls
 * lm_config_validate() after create() and fails with the remembered problem
 * or the first key nobody asked for, listing the keys that were asked for. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmcore/config.h"
#include "names.h"

typedef union config_value {
    int boolean;
    int64_t integer;
    double number;
    char *string;
} config_value;

typedef struct config_entry {
    char *key;
    lm_config_type type;
    int read;
    config_value v;
    char **items;
    size_t n_items;
} config_entry;

struct lm_config {
    char *owner;
    config_entry *entries;
    size_t count, cap;
    char **asked; /* every key a getter asked for, present or not, for hints */
    size_t n_asked, cap_asked;
    char problem[1024];
};

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

lm_status lm_config_create(lm_config **out, const char *owner) {
    *out = calloc(1, sizeof **out);
    if (!*out) return lm_error_set(LM_ERR_NOMEM, "out of memory creating a config");
    (*out)->owner = dup_string(owner ? owner : "config");
    if (!(*out)->owner) {
        free(*out);
        *out = NULL;
        return lm_error_set(LM_ERR_NOMEM, "out of memory creating a config");
    }
    return LM_OK;
}

static void entry_clear_value(config_entry *e) {
    if (e->type == LM_CONFIG_STRING) free(e->v.string);
    for (size_t i = 0; i < e->n_items; i++) free(e->items[i]);
    free(e->items);
    e->items = NULL;
    e->n_items = 0;
    e->v.string = NULL;
}

void lm_config_destroy(lm_config *cfg) {
    if (!cfg) return;
    for (size_t i = 0; i < cfg->count; i++) {
        entry_clear_value(&cfg->entries[i]);
        free(cfg->entries[i].key);
    }
    for (size_t i = 0; i < cfg->n_asked; i++) free(cfg->asked[i]);
    free(cfg->asked);
    free(cfg->entries);
    free(cfg->owner);
    free(cfg);
}

const char *lm_config_owner(const lm_config *cfg) { return cfg->owner; }

static config_entry *find(const lm_config *cfg, const char *key) {
    for (size_t i = 0; i < cfg->count; i++)
        if (strcmp(cfg->entries[i].key, key) == 0) return &cfg->entries[i];
    return NULL;
}

/* Returns the entry for key, created empty if needed (value cleared). */
static lm_status slot(lm_config *cfg, const char *key, config_entry **out) {
    if (!key || !*key) return lm_error_set(LM_ERR_INVALID, "empty config key for %s", cfg->owner);
    config_entry *e = find(cfg, key);
    if (e) {
        entry_clear_value(e);
        *out = e;
        return LM_OK;
    }
    if (cfg->count == cfg->cap) {
        size_t cap = cfg->cap ? cfg->cap * 2 : 16;
        config_entry *p = realloc(cfg->entries, cap * sizeof *p);
        if (!p) return lm_error_set(LM_ERR_NOMEM, "out of memory growing a config");
        cfg->entries = p;
        cfg->cap = cap;
    }
    e = &cfg->entries[cfg->count];
    memset(e, 0, sizeof *e);
    e->key = dup_string(key);
    if (!e->key) return lm_error_set(LM_ERR_NOMEM, "out of memory growing a config");
    cfg->count++;
    *out = e;
    return LM_OK;
}

/* Stores a value that owns no memory (a bool, an integer, a number). */
static lm_status set_plain(lm_config *cfg, const char *key, lm_config_type type, config_value value) {
    config_entry *e;
    LM_TRY(slot(cfg, key, &e));
    e->type = type;
    e->v = value;
    return LM_OK;
}

lm_status lm_config_set_bool(lm_config *cfg, const char *key, int value) {
    return set_plain(cfg, key, LM_CONFIG_BOOL, (config_value){.boolean = value != 0});
}

lm_status lm_config_set_int(lm_config *cfg, const char *key, int64_t value) {
    return set_plain(cfg, key, LM_CONFIG_INT, (config_value){.integer = value});
}

lm_status lm_config_set_number(lm_config *cfg, const char *key, double value) {
    return set_plain(cfg, key, LM_CONFIG_NUMBER, (config_value){.number = value});
}

lm_status lm_config_set_string(lm_config *cfg, const char *key, const char *value) {
    config_entry *e;
    LM_TRY(slot(cfg, key, &e));
    e->type = LM_CONFIG_STRING;
    e->v.string = dup_string(value ? value : "");
    if (!e->v.string) return lm_error_set(LM_ERR_NOMEM, "out of memory storing config key '%s'", key);
    return LM_OK;
}

lm_status lm_config_set_list(lm_config *cfg, const char *key, const char *const *items, size_t n) {
    config_entry *e;
    LM_TRY(slot(cfg, key, &e));
    e->type = LM_CONFIG_LIST;
    e->items = calloc(n ? n : 1, sizeof *e->items);
    if (!e->items) return lm_error_set(LM_ERR_NOMEM, "out of memory storing config key '%s'", key);
    for (size_t i = 0; i < n; i++) {
        e->items[i] = dup_string(items[i]);
        if (!e->items[i]) return lm_error_set(LM_ERR_NOMEM, "out of memory storing config key '%s'", key);
        e->n_items = i + 1;
    }
    return LM_OK;
}

lm_status lm_config_set_parsed(lm_config *cfg, const char *key_equals_value) {
    const char *eq = strchr(key_equals_value, '=');
    if (!eq || eq == key_equals_value)
        return lm_error_set(LM_ERR_INVALID, "expected key=value, got '%s'", key_equals_value);
    char key[256];
    size_t klen = (size_t)(eq - key_equals_value);
    if (klen >= sizeof key) return lm_error_set(LM_ERR_INVALID, "config key too long in '%s'", key_equals_value);
    memcpy(key, key_equals_value, klen);
    key[klen] = '\0';
    const char *value = eq + 1;
    if (strcmp(value, "true") == 0) return lm_config_set_bool(cfg, key, 1);
    if (strcmp(value, "false") == 0) return lm_config_set_bool(cfg, key, 0);
    if (*value) {
        char *end;
        errno = 0;
        long long i = strtoll(value, &end, 10);
        if (*end == '\0' && errno == 0) return lm_config_set_int(cfg, key, (int64_t)i);
        errno = 0;
        double d = strtod(value, &end);
        if (*end == '\0' && errno == 0 && isfinite(d)) return lm_config_set_number(cfg, key, d);
    }
    return lm_config_set_string(cfg, key, value);
}

static void remember_asked(lm_config *cfg, const char *key) {
    for (size_t i = 0; i < cfg->n_asked; i++)
        if (strcmp(cfg->asked[i], key) == 0) return;
    if (cfg->n_asked == cfg->cap_asked) {
        size_t cap = cfg->cap_asked ? cfg->cap_asked * 2 : 16;
        char **p = realloc(cfg->asked, cap * sizeof *p);
        if (!p) return; /* hints only */
        cfg->asked = p;
        cfg->cap_asked = cap;
    }
    char *copy = dup_string(key);
    if (copy) cfg->asked[cfg->n_asked++] = copy;
}

static const char *type_name(lm_config_type t) {
    switch (t) {
    case LM_CONFIG_BOOL: return "a boolean";
    case LM_CONFIG_INT: return "an integer";
    case LM_CONFIG_NUMBER: return "a number";
    case LM_CONFIG_STRING: return "a string";
    case LM_CONFIG_LIST: return "a list";
    }
    return "?";
}

static void describe_value(const config_entry *e, char *out, size_t cap) {
    switch (e->type) {
    case LM_CONFIG_BOOL: snprintf(out, cap, "%s", e->v.boolean ? "true" : "false"); break;
    case LM_CONFIG_INT: snprintf(out, cap, "%lld", (long long)e->v.integer); break;
    case LM_CONFIG_NUMBER: snprintf(out, cap, "%g", e->v.number); break;
    case LM_CONFIG_STRING: snprintf(out, cap, "'%s'", e->v.string); break;
    case LM_CONFIG_LIST: snprintf(out, cap, "a list of %zu", e->n_items); break;
    }
}

static void note_problem(lm_config *cfg, const char *fmt, ...) LM_PRINTF(2, 3);
static void note_problem(lm_config *cfg, const char *fmt, ...) {
    if (cfg->problem[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cfg->problem, sizeof cfg->problem, fmt, ap);
    va_end(ap);
}

static config_entry *lookup(lm_config *cfg, const char *key) {
    remember_asked(cfg, key);
    config_entry *e = find(cfg, key);
    if (e) e->read = 1;
    return e;
}

static void wrong_type(lm_config *cfg, const config_entry *e, lm_config_type wanted) {
    char value[160];
    describe_value(e, value, sizeof value);
    note_problem(cfg, "config key '%s' for %s must be %s, got %s", e->key, cfg->owner, type_name(wanted), value);
}

/* Asking whether a key is there counts as reading it: a plugin that only
 * tests a flag's presence must not have it reported as unknown. */
int lm_config_has(lm_config *cfg, const char *key) { return lookup(cfg, key) != NULL; }

int lm_config_bool(lm_config *cfg, const char *key, int def) {
    config_entry *e = lookup(cfg, key);
    if (!e) return def;
    if (e->type == LM_CONFIG_BOOL) return e->v.boolean;
    wrong_type(cfg, e, LM_CONFIG_BOOL);
    return def;
}

int64_t lm_config_int(lm_config *cfg, const char *key, int64_t def) {
    config_entry *e = lookup(cfg, key);
    if (!e) return def;
    if (e->type == LM_CONFIG_INT) return e->v.integer;
    /* Lua and JSON write 1e4 or 3.0 for integers: accept integral numbers. */
    if (e->type == LM_CONFIG_NUMBER && e->v.number == floor(e->v.number) && fabs(e->v.number) < 9.0e15)
        return (int64_t)e->v.number;
    wrong_type(cfg, e, LM_CONFIG_INT);
    return def;
}

int64_t lm_config_int_range(lm_config *cfg, const char *key, int64_t def, int64_t lo, int64_t hi) {
    const config_entry *e = find(cfg, key);
    const char *before = cfg->problem[0] ? cfg->problem : NULL;
    int64_t value = lm_config_int(cfg, key, def);
    if (!e || before != NULL || cfg->problem[0] || (value >= lo && value <= hi)) return value;
    /* Out of range: named with the value as given (never a narrowed one). */
    char range[96];
    if (lo == INT64_MIN) snprintf(range, sizeof range, "at most %lld", (long long)hi);
    else if (hi == INT64_MAX) snprintf(range, sizeof range, "at least %lld", (long long)lo);
    else snprintf(range, sizeof range, "between %lld and %lld", (long long)lo, (long long)hi);
    note_problem(cfg, "config key '%s' for %s must be an integer %s, got %lld", key, cfg->owner, range,
                 (long long)value);
    return def;
}

double lm_config_number(lm_config *cfg, const char *key, double def) {
    config_entry *e = lookup(cfg, key);
    if (!e) return def;
    if (e->type == LM_CONFIG_NUMBER) return e->v.number;
    if (e->type == LM_CONFIG_INT) return (double)e->v.integer;
    wrong_type(cfg, e, LM_CONFIG_NUMBER);
    return def;
}

const char *lm_config_string(lm_config *cfg, const char *key, const char *def) {
    config_entry *e = lookup(cfg, key);
    if (!e) return def;
    if (e->type == LM_CONFIG_STRING) return e->v.string;
    wrong_type(cfg, e, LM_CONFIG_STRING);
    return def;
}

size_t lm_config_list(lm_config *cfg, const char *key, const char *const **items) {
    *items = NULL;
    config_entry *e = lookup(cfg, key);
    if (!e) return 0;
    if (e->type == LM_CONFIG_LIST) {
        *items = (const char *const *)e->items;
        return e->n_items;
    }
    /* A single string is a list of one. */
    if (e->type == LM_CONFIG_STRING) {
        *items = (const char *const *)&e->v.string;
        return 1;
    }
    wrong_type(cfg, e, LM_CONFIG_LIST);
    return 0;
}

lm_status lm_config_require_range(lm_config *cfg, const char *key, double value, double lo, double hi) {
    if (value >= lo && value <= hi) return LM_OK;
    /* An integral value is printed whole (4294967298, not 4.29497e+09). */
    char given[64];
    if (value == floor(value) && fabs(value) < 1e18) snprintf(given, sizeof given, "%.0f", value);
    else snprintf(given, sizeof given, "%g", value);
    note_problem(cfg, "config key '%s' for %s must be between %g and %g, got %s", key, cfg->owner, lo, hi, given);
    return lm_error_set(LM_ERR_INVALID, "config key '%s' for %s must be between %g and %g, got %s", key, cfg->owner,
                        lo, hi, given);
}

void lm_config_reject(lm_config *cfg, const char *key, const char *fmt, ...) {
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    note_problem(cfg, "config key '%s' for %s: %s", key, cfg->owner, reason);
}

lm_status lm_config_validate(lm_config *cfg) {
    if (cfg->problem[0]) return lm_error_set(LM_ERR_INVALID, "%s", cfg->problem);
    for (size_t i = 0; i < cfg->count; i++) {
        if (cfg->entries[i].read) continue;
        char known[600] = "";
        size_t used = 0;
        for (size_t k = 0; k < cfg->n_asked && used < sizeof known - 8; k++) {
            int n = snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "", cfg->asked[k]);
            if (n < 0 || (size_t)n >= sizeof known - used) {
                snprintf(known + used, sizeof known - used, ", ...");
                break;
            }
            used += (size_t)n;
        }
        const char *near = lm_nearest_name(cfg->entries[i].key, (const char *const *)cfg->asked, cfg->n_asked);
        if (near)
            return lm_error_set(LM_ERR_INVALID, "unknown key '%s' for %s (known: %s): did you mean '%s'?",
                                cfg->entries[i].key, cfg->owner, known, near);
        return lm_error_set(LM_ERR_INVALID, "unknown key '%s' for %s (known: %s)", cfg->entries[i].key, cfg->owner,
                            cfg->n_asked ? known : "none");
    }
    return LM_OK;
}

size_t lm_config_count(const lm_config *cfg) { return cfg->count; }
const char *lm_config_key_at(const lm_config *cfg, size_t index) {
    return index < cfg->count ? cfg->entries[index].key : NULL;
}
lm_config_type lm_config_type_at(const lm_config *cfg, size_t index) {
    return index < cfg->count ? cfg->entries[index].type : (lm_config_type)0;
}

lm_status lm_config_clone(const lm_config *cfg, const char *owner, lm_config **out) {
    LM_TRY(lm_config_create(out, owner ? owner : cfg->owner));
    lm_status status = LM_OK;
    for (size_t i = 0; i < cfg->count && status == LM_OK; i++) {
        const config_entry *e = &cfg->entries[i];
        switch (e->type) {
        case LM_CONFIG_BOOL: status = lm_config_set_bool(*out, e->key, e->v.boolean); break;
        case LM_CONFIG_INT: status = lm_config_set_int(*out, e->key, e->v.integer); break;
        case LM_CONFIG_NUMBER: status = lm_config_set_number(*out, e->key, e->v.number); break;
        case LM_CONFIG_STRING: status = lm_config_set_string(*out, e->key, e->v.string); break;
        case LM_CONFIG_LIST:
            status = lm_config_set_list(*out, e->key, (const char *const *)e->items, e->n_items);
            break;
        }
    }
    if (status != LM_OK) {
        lm_config_destroy(*out);
        *out = NULL;
    }
    return status;
}

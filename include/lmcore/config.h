/* lmcore — typed configuration handed to plugins.
 *
 * A config is a flat map from key to a typed value (bool, integer, number,
 * string, list of strings).  The core builds it from a Lua table or from
 * key=value pairs; plugins only read it through the getters below and never
 * see Lua.  Getters never fail loudly: a value of the wrong type is recorded
 * in the config (the first such problem wins) and the getter returns the
 * default.  After a plugin's create() returns, the core calls
 * lm_config_validate(), which turns the recorded problem, or any key that no
 * getter ever read, into an error that names the key and lists the known
 * ones — so a typo like `n_layers=4` fails instead of being ignored. */
#ifndef LMCORE_CONFIG_H
#define LMCORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_config lm_config;

typedef enum lm_config_type {
    LM_CONFIG_BOOL = 1,
    LM_CONFIG_INT = 2,
    LM_CONFIG_NUMBER = 3,
    LM_CONFIG_STRING = 4,
    LM_CONFIG_LIST = 5 /* list of strings */
} lm_config_type;

/* `owner` names who reads the config in error messages: "architecture 'gpt2'". */
LM_API lm_status lm_config_create(lm_config **out, const char *owner);
LM_API void lm_config_destroy(lm_config *cfg);
LM_API const char *lm_config_owner(const lm_config *cfg);

/* Setters (used by the core and by tests).  Setting an existing key replaces it. */
LM_API lm_status lm_config_set_bool(lm_config *cfg, const char *key, int value);
LM_API lm_status lm_config_set_int(lm_config *cfg, const char *key, int64_t value);
LM_API lm_status lm_config_set_number(lm_config *cfg, const char *key, double value);
LM_API lm_status lm_config_set_string(lm_config *cfg, const char *key, const char *value);
LM_API lm_status lm_config_set_list(lm_config *cfg, const char *key, const char *const *items, size_t n);
/* Parses "key=value": integers, numbers, true/false, else a string. */
LM_API lm_status lm_config_set_parsed(lm_config *cfg, const char *key_equals_value);

/* Getters.  Each marks the key as read and records a type error if present
 * with an incompatible type (an integer is accepted where a number is asked,
 * and a number with an integral value where an integer is asked). */
LM_API int lm_config_has(lm_config *cfg, const char *key);
LM_API int lm_config_bool(lm_config *cfg, const char *key, int def);
LM_API int64_t lm_config_int(lm_config *cfg, const char *key, int64_t def);
/* The same, range-checked in 64 bits before the caller narrows it: a value
 * outside [lo, hi] is recorded as the config's problem ("config key
 * 'n_layer' for architecture 'gpt2' must be an integer between 1 and 4096,
 * got 4294967298", the value as given) and def is returned.  Read every
 * integer a plugin stores in a narrower type this way. */
LM_API int64_t lm_config_int_range(lm_config *cfg, const char *key, int64_t def, int64_t lo, int64_t hi);
LM_API double lm_config_number(lm_config *cfg, const char *key, double def);
/* The returned string lives as long as the config. */
LM_API const char *lm_config_string(lm_config *cfg, const char *key, const char *def);
/* Returns the number of items (0 if absent); *items lives as long as the config. */
LM_API size_t lm_config_list(lm_config *cfg, const char *key, const char *const **items);

/* Range checks for plugins: record an error (returned by validate) if the
 * value read is out of range, and return the status directly as well. */
LM_API lm_status lm_config_require_range(lm_config *cfg, const char *key, double value, double lo, double hi);

/* Records a plugin-side problem with a key ("must be a power of two").  */
LM_API void lm_config_reject(lm_config *cfg, const char *key, const char *fmt, ...) LM_PRINTF(3, 4);

/* LM_OK, or LM_ERR_INVALID with a message naming the first wrong-typed or
 * rejected key, else the unread keys and the known ones. */
LM_API lm_status lm_config_validate(lm_config *cfg);

/* Iteration, for the core (printing, JSON dumps of training arguments). */
LM_API size_t lm_config_count(const lm_config *cfg);
LM_API const char *lm_config_key_at(const lm_config *cfg, size_t index);
LM_API lm_config_type lm_config_type_at(const lm_config *cfg, size_t index);
/* A copy of every key and value; read marks are not copied. */
LM_API lm_status lm_config_clone(const lm_config *cfg, const char *owner, lm_config **out);

#ifdef __cplusplus
}
#endif
#endif

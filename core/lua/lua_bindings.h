/* Internal pieces of the `lm` Lua module, one file per concept. */
#ifndef LMCORE_LUA_BINDINGS_H
#define LMCORE_LUA_BINDINGS_H

#include <lauxlib.h>
#include <lua.h>

#include "lmcore/lmcore.h"
#include "registry.h"

/* A plugin instance owned by a Lua userdata. */
typedef struct lm_object {
    const lm_plugin *plugin;
    void *self;
    lm_config *config; /* kept alive as long as the instance: plugins may keep its strings */
    int weights_set;   /* models: init(), load(), lm.load_model or a resumed trainer set the weights */
} lm_object;

/* Raises unless the model's weights were set (init or load): a model used
 * before would compute from zeros, and save zeros.  `use` names what the
 * script called ("model:generate", "lm.trainer"). */
void lm_lua_check_weights_set(lua_State *L, lm_object *model, const char *use);

/* Closes an object (idempotent). */
void lm_lua_object_close(lm_object *object);

#define LM_TOKENIZER_MT "lmcore.Tokenizer"
#define LM_DATASET_MT "lmcore.Dataset"
#define LM_MODEL_MT "lmcore.Model"
#define LM_OBJECTIVE_MT "lmcore.Objective"
#define LM_LOGGER_MT "lmcore.Logger"
#define LM_OPTIMIZER_MT "lmcore.Optimizer"
#define LM_BLOCKS_MT "lmcore.Blocks"
#define LM_TRAINER_MT "lmcore.Trainer"
#define LM_BATCH_MT "lmcore.Batch"

/* The registry the runtime was started with (stored in the Lua registry). */
lm_registry *lm_lua_registry(lua_State *L);

/* Raises the current lmcore error as a Lua error (the message alone, no position). */
int lm_lua_raise(lua_State *L);

/* Converts the table at `index` (or nil) to a config owned by the caller;
 * raises on a value that cannot be a config value. */
lm_config *lm_lua_to_config(lua_State *L, int index, const char *owner);

/* lm.<kind>(name [, settings]): a plugin instance of `kind` as a userdata
 * of `metatable` (arguments at 1 and 2); returns 1 (the object). */
int lm_lua_new_object(lua_State *L, lm_plugin_kind kind, const char *metatable);

/* The same, owned by a userdata pushed on the stack (freed by the
 * collector): for configs that must not leak when an error is raised
 * before the caller is done with them. */
lm_config *lm_lua_boxed_config(lua_State *L, int index, const char *owner);

/* Checks that argument `index` is an open object of the metatable. */
lm_object *lm_lua_check_object(lua_State *L, int index, const char *metatable);

/* Creates metatable `name` with __gc/__close/__tostring and the methods
 * (plus close() and name()) as __index. */
void lm_lua_define_class(lua_State *L, const char *name, const luaL_Reg *methods);
/* The same for a userdata that is not a plugin instance: `close` is its
 * __gc, __close and close(). */
void lm_lua_define_plain_class(lua_State *L, const char *name, lua_CFunction close, const luaL_Reg *methods);

/* Checks that argument `index` is open token blocks (lm.blocks). */
struct lm_blocks *lm_lua_check_blocks(lua_State *L, int index);
/* Whether the blocks userdata at `index` was closed. */
int lm_lua_blocks_closed(lua_State *L, int index);

/* Registers metatables and adds the constructors to the module table at -1. */
void lm_lua_open_objects(lua_State *L);
void lm_lua_open_model(lua_State *L);
void lm_lua_open_json(lua_State *L);
void lm_lua_open_optimizer(lua_State *L);
void lm_lua_open_blocks(lua_State *L);
void lm_lua_open_trainer(lua_State *L);
void lm_lua_open_lock(lua_State *L); /* lm.lock_dir */
void lm_lua_open_distributed(lua_State *L);
void lm_lua_set_registry(lua_State *L, lm_registry *r);
/* Wraps io.open, io.lines, io.input, io.output, loadfile and dofile so that
 * a FIFO or a device given as a path is refused instead of blocking
 * (lua_files.c). */
void lm_lua_guard_file_openers(lua_State *L);

/* ---- What a script passes (lua_options.c): the only way the bindings read
 * option tables and integers.  Each raises a message naming the function,
 * the key or argument, the accepted range and the value as given, without
 * a Lua position (a script's mistake prints no traceback hint). */

/* Raises the formatted message as it is (no "file:line:" prefix). */
int lm_lua_error(lua_State *L, const char *fmt, ...) LM_PRINTF(2, 3);
/* The value at `index` as a message shows it: 4294967298, 1.5, the string 'x', a table. */
void lm_lua_describe_value(lua_State *L, int index, char *out, size_t cap);
/* 1 and *out when the value at `index` is an integer (or an integral float)
 * within [lo, hi]; 0 otherwise (no error raised). */
int lm_lua_to_int_in(lua_State *L, int index, lua_Integer lo, lua_Integer hi, lua_Integer *out);
/* The integer at `index` in [lo, hi], else raises "<what> must be ..., got ...". */
lua_Integer lm_lua_check_int(lua_State *L, int index, const char *what, lua_Integer lo, lua_Integer hi);
/* Argument `arg` of `function` ("model:init"), called `name` in messages. */
lua_Integer lm_lua_int_arg(lua_State *L, int arg, const char *function, const char *name, lua_Integer lo,
                           lua_Integer hi);
lua_Integer lm_lua_opt_int_arg(lua_State *L, int arg, const char *function, const char *name, lua_Integer def,
                               lua_Integer lo, lua_Integer hi);
/* The option table at `index` (nil or none: no options) holds only keys of
 * `known` (NULL-terminated); else raises, suggesting the nearest key. */
void lm_lua_check_options(lua_State *L, int index, const char *function, const char *const *known);
/* Option `key` of the table at `index`: def when absent (or no table). */
lua_Integer lm_lua_int_option(lua_State *L, int index, const char *function, const char *key, lua_Integer def,
                              lua_Integer lo, lua_Integer hi);
double lm_lua_number_option(lua_State *L, int index, const char *function, const char *key, double def, double lo,
                            double hi);
int lm_lua_bool_option(lua_State *L, int index, const char *function, const char *key, int def);
const char *lm_lua_string_option(lua_State *L, int index, const char *function, const char *key, const char *def);
/* Argument `arg`, one of `choices` (NULL-terminated), or def when absent
 * (def NULL: required); returns its index. */
int lm_lua_check_choice(lua_State *L, int arg, const char *function, const char *name, const char *def,
                        const char *const *choices);

#endif
